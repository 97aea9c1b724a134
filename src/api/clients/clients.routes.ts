import { defineRoute } from '../../http/define-route.ts';
import { offsetOf, pageEnvelope, pageEnvelopeSchema } from '../../http/pagination.ts';
import type { Config } from '../../platform/config.ts';
import type { ApplicationsService } from '../../services/applications.service.ts';
import type { ApplicationMetadata } from '../../services/client-metadata.ts';
import type { ApplicationRow } from '../../services/client-registry.service.ts';
import {
  Application, ApplicationCreateBody, ApplicationIdParams, ApplicationListQuery, ApplicationPatchBody, ApplicationSecret,
  ApplicationWithSecret, InitialAccessTokenBody, InitialAccessTokenIssued,
} from './clients.schemas.ts';

const TAG = 'Applications';
// Secrets and initial access tokens must not stay in any cache (RFC 6749 section 5.1).
const NO_STORE = { 'Cache-Control': 'no-store' };

/** Optional metadata answered only when the client has it. */
const OPTIONAL_PRESENTED = [
  'jwks', 'jwks_uri', 'backchannel_logout_uri', 'client_uri', 'logo_uri', 'policy_uri', 'tos_uri', 'initiate_login_uri', 'contacts',
  'token_endpoint_auth_signing_alg', 'default_max_age', 'software_id', 'software_version',
] as const;

/** RFC 7591 metadata as stored, never the secret's hash; provider defaults filled in. */
function presentApplication(row: ApplicationRow) {
  const metadata = row.metadata as Partial<ApplicationMetadata> & { response_types?: string[] };
  return {
    client_id: row.clientId,
    client_name: metadata.client_name ?? '',
    kind: row.kind,
    organization_id: row.organizationId,
    owner_id: row.ownerId,
    first_party: row.firstParty,
    application_type: metadata.application_type ?? 'web',
    redirect_uris: metadata.redirect_uris ?? [],
    post_logout_redirect_uris: metadata.post_logout_redirect_uris ?? [],
    grant_types: metadata.grant_types ?? ['authorization_code'],
    response_types: metadata.response_types ?? ['code'],
    token_endpoint_auth_method: metadata.token_endpoint_auth_method ?? 'client_secret_basic',
    ...Object.fromEntries(OPTIONAL_PRESENTED.filter((field) => metadata[field] !== undefined).map((field) => [field, metadata[field]])),
    // node-oidc-provider's defaults (RFC 7591 section 2, OpenID Connect Dynamic Client Registration 1.0 section 2).
    backchannel_logout_session_required: metadata.backchannel_logout_session_required ?? false,
    id_token_signed_response_alg: metadata.id_token_signed_response_alg ?? 'RS256',
    subject_type: metadata.subject_type ?? 'public',
    require_auth_time: metadata.require_auth_time ?? false,
    scope: metadata.scope ?? '',
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

/** What these routes use (built in src/dependencies.ts). */
export interface ClientsRoutesDependencies {
  config: Pick<Config, 'issuer'>;
  applications: ApplicationsService;
}

export function clientsRoutes(deps: ClientsRoutesDependencies) {
  const applications = deps.applications;

  return [
    defineRoute({
      method: 'get', path: '/clients', tag: TAG, permission: 'clients:read',
      summary: 'OAuth clients of the caller\'s organization (a super admin: all, or one organization\'s); never their secrets',
      query: ApplicationListQuery, responses: { 200: pageEnvelopeSchema(Application) },
      handler: async ({ actor, query, ctx }) => {
        const { count, rows } = await applications.list(actor, {
          kind: query.kind, search: query.search, organizationId: query.organization_id, limit: query.page_size, offset: offsetOf(query),
        });
        return { status: 200, body: pageEnvelope(ctx, deps.config.issuer, query, count, rows.map(presentApplication)) };
      },
    }),

    defineRoute({
      method: 'post', path: '/clients', tag: TAG, permission: 'clients:write',
      summary: 'Register an OAuth client (RFC 7591 metadata); its secret is shown once',
      body: ApplicationCreateBody, responses: { 201: ApplicationWithSecret },
      errors: ['request.validation_failed', 'auth.forbidden'],
      handler: async ({ actor, body }) => {
        const { row, clientSecret } = await applications.create(actor, body);
        return { status: 201, body: { ...presentApplication(row), ...(clientSecret ? { client_secret: clientSecret } : {}) }, headers: NO_STORE };
      },
    }),

    defineRoute({
      method: 'post', path: '/clients/initial-access-tokens', tag: TAG, permission: 'clients:write',
      summary: 'Issue a single-use initial access token for dynamic registration at /oauth/reg (RFC 7591 section 3); shown once',
      body: InitialAccessTokenBody, responses: { 201: InitialAccessTokenIssued },
      errors: ['request.validation_failed', 'auth.forbidden'],
      handler: async ({ actor, body }) => {
        const token = await applications.issueInitialAccessToken(actor, { expiresIn: body.expires_in, organizationId: body.organization_id });
        return { status: 201, body: { initial_access_token: token.value, expires_at: token.expiresAt.toISOString() }, headers: NO_STORE };
      },
    }),

    defineRoute({
      method: 'get', path: '/clients/:client_id', tag: TAG, permission: 'clients:read',
      summary: 'One OAuth client (never its secret)',
      params: ApplicationIdParams, responses: { 200: Application }, errors: ['resource.not_found'],
      handler: async ({ actor, params }) => ({ status: 200, body: presentApplication(await applications.get(actor, params.client_id)) }),
    }),

    defineRoute({
      method: 'patch', path: '/clients/:client_id', tag: TAG, permission: 'clients:write',
      summary: 'Change a client\'s metadata (not its secret); narrowing what it may get ends its tokens',
      params: ApplicationIdParams, body: ApplicationPatchBody, responses: { 200: ApplicationWithSecret },
      errors: ['resource.not_found', 'request.validation_failed', 'auth.forbidden', 'client.builtin', 'request.conflict'],
      handler: async ({ actor, params, body }) => {
        const { row, clientSecret } = await applications.update(actor, params.client_id, body);
        return { status: 200, body: { ...presentApplication(row), ...(clientSecret ? { client_secret: clientSecret } : {}) }, headers: NO_STORE };
      },
    }),

    defineRoute({
      method: 'delete', path: '/clients/:client_id', tag: TAG, permission: 'clients:write',
      summary: 'Delete a client; its grants and tokens stop at the next call',
      params: ApplicationIdParams, responses: { 204: null }, errors: ['resource.not_found', 'client.builtin'],
      handler: async ({ actor, params }) => {
        await applications.remove(actor, params.client_id);
        return { status: 204 };
      },
    }),

    defineRoute({
      method: 'post', path: '/clients/:client_id/rotate-secret', tag: TAG, permission: 'clients:write',
      summary: 'Replace a client\'s secret; tokens minted under the old one stop at the next call',
      params: ApplicationIdParams, responses: { 200: ApplicationSecret }, errors: ['resource.not_found', 'client.no_secret', 'client.builtin'],
      handler: async ({ actor, params }) => {
        const secret = await applications.rotateSecret(actor, params.client_id);
        return { status: 200, body: { client_id: params.client_id, client_secret: secret }, headers: NO_STORE };
      },
    }),
  ];
}
