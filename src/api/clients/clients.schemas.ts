// OAuth clients as administrators manage them: RFC 7591 metadata names, plus Latchkey's first_party.
// Shapes and sizes here; the rules between fields (redirect URIs, grants, authentication) live in
// the service, shared with dynamic registration.
import { z } from 'zod';

import { uuidParam } from '../../http/define-route.ts';
import { PageQuery } from '../../http/pagination.ts';
import { INITIAL_ACCESS_TOKEN_TTL } from '../../services/applications.service.ts';
import {
  APPLICATION_TYPES, AUTH_METHODS, CLIENT_AUTH_SIGNING_ALGS, CLIENT_KINDS, CLIENT_LIMITS, GRANT_TYPES, ID_TOKEN_SIGNING_ALGS, SUBJECT_TYPES,
} from '../../services/client-metadata.ts';

const Uri = z.string().min(1).max(CLIENT_LIMITS.uriLength);
const UriList = z.array(Uri).max(CLIENT_LIMITS.uris);
// RFC 7517 section 5; each key's members are checked by the provider (public keys only).
const Jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1).max(CLIENT_LIMITS.jwksKeys) });
const ClientName = z.string().trim().min(1).max(CLIENT_LIMITS.clientName);
const Scope = z.string().trim().min(1).max(CLIENT_LIMITS.scopeLength);
const GrantTypes = z.array(z.enum(GRANT_TYPES)).min(1).max(GRANT_TYPES.length);
const ResponseTypes = z.array(z.enum(['code'])).max(1);
const Contacts = z.array(z.email({ error: 'expected an email address' }).max(CLIENT_LIMITS.contactLength)).min(1).max(CLIENT_LIMITS.contacts);
const SoftwareField = z.string().trim().min(1).max(CLIENT_LIMITS.softwareField);

/**
 * Optional RFC 7591 / OpenID Connect Dynamic Client Registration 1.0 metadata, as the provider is
 * configured to support it; the same on create and (nullable, to remove one) on PATCH.
 */
const OPTIONAL_METADATA = {
  jwks: Jwks,
  jwks_uri: Uri,
  backchannel_logout_uri: Uri,
  backchannel_logout_session_required: z.boolean(),
  client_uri: Uri,
  logo_uri: Uri,
  policy_uri: Uri,
  tos_uri: Uri,
  initiate_login_uri: Uri,
  contacts: Contacts,
  token_endpoint_auth_signing_alg: z.enum(CLIENT_AUTH_SIGNING_ALGS),
  id_token_signed_response_alg: z.enum(ID_TOKEN_SIGNING_ALGS),
  subject_type: z.enum(SUBJECT_TYPES),
  default_max_age: z.number().int().min(0).max(CLIENT_LIMITS.defaultMaxAge),
  require_auth_time: z.boolean(),
  software_id: SoftwareField,
  software_version: SoftwareField,
};

function optional<T extends Record<string, z.ZodType>>(shape: T) {
  return Object.fromEntries(Object.entries(shape).map(([key, schema]) => [key, schema.optional()])) as { [K in keyof T]: z.ZodOptional<T[K]> };
}

function removable<T extends Record<string, z.ZodType>>(shape: T) {
  return Object.fromEntries(Object.entries(shape).map(([key, schema]) => [key, schema.nullable().optional()])) as { [K in keyof T]: z.ZodOptional<z.ZodNullable<T[K]>> };
}

export const ApplicationCreateBody = z.strictObject({
  client_name: ClientName,
  application_type: z.enum(APPLICATION_TYPES).default('web'),
  redirect_uris: UriList.default([]),
  post_logout_redirect_uris: UriList.default([]),
  // RFC 7591 section 2 defaults.
  grant_types: GrantTypes.default(['authorization_code']),
  response_types: ResponseTypes.optional(),
  token_endpoint_auth_method: z.enum(AUTH_METHODS).default('client_secret_basic'),
  ...optional(OPTIONAL_METADATA),
  scope: Scope.optional(),
  first_party: z.boolean().default(false),
  organization_id: uuidParam.optional(),
}).meta({ id: 'ApplicationCreate' });

export const ApplicationPatchBody = z.strictObject({
  client_name: ClientName.optional(),
  application_type: z.enum(APPLICATION_TYPES).optional(),
  redirect_uris: UriList.optional(),
  post_logout_redirect_uris: UriList.optional(),
  grant_types: GrantTypes.optional(),
  response_types: ResponseTypes.optional(),
  token_endpoint_auth_method: z.enum(AUTH_METHODS).optional(),
  ...removable(OPTIONAL_METADATA),
  scope: Scope.optional(),
  first_party: z.boolean().optional(),
}).refine((body) => Object.keys(body).length > 0, { error: 'give at least one field to change' }).meta({ id: 'ApplicationPatch' });

export const Application = z.object({
  client_id: z.string(),
  client_name: z.string(),
  kind: z.enum(CLIENT_KINDS),
  organization_id: z.uuid().nullable(),
  owner_id: z.uuid().nullable(),
  first_party: z.boolean(),
  application_type: z.string(),
  redirect_uris: z.array(z.string()),
  post_logout_redirect_uris: z.array(z.string()),
  grant_types: z.array(z.string()),
  response_types: z.array(z.string()),
  token_endpoint_auth_method: z.string(),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).optional(),
  jwks_uri: z.string().optional(),
  backchannel_logout_uri: z.string().optional(),
  backchannel_logout_session_required: z.boolean(),
  client_uri: z.string().optional(),
  logo_uri: z.string().optional(),
  policy_uri: z.string().optional(),
  tos_uri: z.string().optional(),
  initiate_login_uri: z.string().optional(),
  contacts: z.array(z.string()).optional(),
  token_endpoint_auth_signing_alg: z.string().optional(),
  id_token_signed_response_alg: z.string(),
  subject_type: z.string(),
  default_max_age: z.number().int().optional(),
  require_auth_time: z.boolean(),
  software_id: z.string().optional(),
  software_version: z.string().optional(),
  scope: z.string(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
}).meta({ id: 'Application' });

/** The secret appears in this answer only (create, or a PATCH that made the client confidential). */
export const ApplicationWithSecret = Application.extend({ client_secret: z.string().optional() }).meta({ id: 'ApplicationWithSecret' });

export const ApplicationSecret = z.object({ client_id: z.string(), client_secret: z.string() }).meta({ id: 'ApplicationSecret' });

export const ApplicationListQuery = PageQuery.extend({
  kind: z.enum(CLIENT_KINDS).optional(),
  search: z.string().trim().min(1).max(100).optional(),
  organization_id: uuidParam.optional(),
});

export const ApplicationIdParams = z.object({ client_id: z.string().min(1).max(128) });

export const InitialAccessTokenBody = z.strictObject({
  expires_in: z.number().int().min(INITIAL_ACCESS_TOKEN_TTL.min).max(INITIAL_ACCESS_TOKEN_TTL.max).default(INITIAL_ACCESS_TOKEN_TTL.default),
  organization_id: uuidParam.optional(),
}).meta({ id: 'InitialAccessTokenRequest' });

export const InitialAccessTokenIssued = z.object({
  initial_access_token: z.string(),
  expires_at: z.iso.datetime(),
}).meta({ id: 'InitialAccessToken' });
