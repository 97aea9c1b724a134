import type { Dependencies } from '../../dependencies.ts';
import { actorOf, defineRoute } from '../../http/define-route.ts';
import { AppError, assertThat, fieldError } from '../../platform/errors.ts';
import { PageQuery, offsetOf, pageEnvelope, pageEnvelopeSchema } from '../../http/pagination.ts';
import type { AccessTokenPrincipal } from '../../oidc/access-tokens.ts';
import { auditEntry, recordAudit, type AuditActor, type AuditEntry } from '../../services/audit.service.ts';
import { personalClientMetadata } from '../../services/bootstrap.service.ts';

import { actingUser } from '../../services/self-service.service.ts';
import { findActiveProfile, nameChanges } from '../../services/users.service.ts';
import {
  ClientIdParams, PersonalClient, PersonalClientCreateBody, PersonalClientCreated, PersonalClientSecret, ProfilePatchBody, ProfileReplaceBody,
  UserProfileResponse,
} from './me.schemas.ts';

const MAX_PERSONAL_CLIENTS = 25;

function clientAudit(action: string, clientId: string, actor: AuditActor & { organizationId?: string }): AuditEntry {
  return auditEntry(actor, { action, resource: 'client', resourceId: clientId, organizationId: actor.organizationId, details: { kind: 'personal' } });
}

export function meRoutes(deps: Dependencies) {
  const profileOf = async (userId: string) => {
    const profile = await findActiveProfile(deps.orm, userId);
    assertThat(profile, 'resource.not_found', 'The user of this token no longer exists or is disabled');
    return profile;
  };
  /** A personal client of the caller, or 404 (another user's client is as invisible as a missing one). */
  const ownedClient = async (auth: AccessTokenPrincipal, clientId: string) => {
    const record = await deps.clients.find(clientId);
    assertThat(record && record.kind === 'personal' && record.owner?.id === actingUser(auth), 'resource.not_found', 'No such personal client');
    return record;
  };

  return [
    defineRoute({
      method: 'get', path: '/me', tag: 'Me', summary: 'The user the access token acts for',
      responses: { 200: UserProfileResponse }, errors: ['auth.user_required', 'resource.not_found'],
      handler: async ({ auth }) => ({ status: 200, body: await profileOf(actingUser(auth)) }),
    }),

    defineRoute({
      method: 'patch', path: '/me', tag: 'Me', summary: 'Change your own profile (not your roles or status)',
      body: ProfilePatchBody, responses: { 200: UserProfileResponse },
      errors: ['user.email_taken', 'user.username_taken', 'request.validation_failed'],
      handler: async (input) => {
        const { auth, body } = input;
        const { email, username, full_name, first_name, last_name, ...attributes } = body;
        await deps.selfService.updateProfile(actorOf(input), {
          email, username, ...nameChanges({ full_name, first_name, last_name }), attributes,
        });
        return { status: 200, body: await profileOf(actingUser(auth)) };
      },
    }),

    defineRoute({
      method: 'put', path: '/me', tag: 'Me',
      summary: 'Replace your own profile: a name as at registration; profile fields left out are cleared, email and username kept',
      body: ProfileReplaceBody, responses: { 200: UserProfileResponse },
      errors: ['user.email_taken', 'user.username_taken', 'request.validation_failed'],
      handler: async (input) => {
        const { auth, body } = input;
        await deps.selfService.replaceProfile(actorOf(input), body);
        return { status: 200, body: await profileOf(actingUser(auth)) };
      },
    }),

    defineRoute({
      method: 'post', path: '/me/deactivate', tag: 'Me', summary: 'Switch your own account off; every token of it stops',
      responses: { 204: null }, errors: ['user.last_super_admin'],
      handler: async (input) => {
        await deps.selfService.deactivate(actorOf(input));
        return { status: 204 };
      },
    }),

    defineRoute({
      method: 'delete', path: '/me', tag: 'Me', summary: 'Delete your own account, its personal clients and grants',
      responses: { 204: null }, errors: ['user.last_super_admin'],
      handler: async (input) => {
        await deps.selfService.delete(actorOf(input));
        return { status: 204 };
      },
    }),

    defineRoute({
      method: 'get', path: '/me/clients', tag: 'Me', summary: 'Your personal API clients (never their secrets)',
      query: PageQuery, responses: { 200: pageEnvelopeSchema(PersonalClient) },
      handler: async ({ auth, query, ctx }) => {
        const { count, clients } = await deps.clients.listOwned(actingUser(auth), { limit: query.page_size, offset: offsetOf(query) });
        return {
          status: 200,
          body: pageEnvelope(ctx, deps.config.issuer, query, count, clients.map((client) => ({
            client_id: client.clientId, client_name: client.clientName, scope: client.scope,
            created_at: new Date(client.createdAt).toISOString(), updated_at: new Date(client.updatedAt).toISOString(),
          }))),
        };
      },
    }),

    defineRoute({
      method: 'post', path: '/me/clients', tag: 'Me', summary: 'Create a personal API client; its secret is shown once',
      body: PersonalClientCreateBody, responses: { 201: PersonalClientCreated }, errors: ['request.conflict'],
      handler: async (input) => {
        const { auth, body } = input;
        const userId = actingUser(auth);
        const profile = await profileOf(userId);
        const allowed = [...await deps.permissions.apiScopesOf(profile.organization.id, profile.roles)];
        const scope = body.scope ? body.scope.split(/\s+/) : allowed;
        const beyond = scope.filter((value) => !allowed.includes(value));
        if (beyond.length > 0) throw fieldError(['body', 'scope'], `includes scopes your roles do not allow: ${beyond.join(' ')}`, 'invalid_scope');
        const { count } = await deps.clients.listOwned(userId, { limit: 1, offset: 0 });
        if (count >= MAX_PERSONAL_CLIENTS) throw new AppError('request.conflict', `You have the maximum of ${MAX_PERSONAL_CLIENTS} personal clients`);
        const em = deps.orm.em.fork();
        const created = await em.transactional(async (tx) => {
          const client = await deps.clients.create({
            kind: 'personal', ownerId: userId, organizationId: profile.organization.id,
            metadata: { ...personalClientMetadata(body.client_name), scope: scope.join(' ') },
          }, tx);
          recordAudit(tx, clientAudit('client.create', client.clientId, actorOf(input)));
          return client;
        });
        const now = new Date().toISOString();
        return {
          status: 201,
          body: { client_id: created.clientId, client_secret: created.clientSecret!, client_name: body.client_name, scope: scope.join(' '), created_at: now, updated_at: now },
          headers: { 'Cache-Control': 'no-store' },
        };
      },
    }),

    defineRoute({
      method: 'delete', path: '/me/clients/:client_id', tag: 'Me', summary: 'Delete a personal client; its tokens stop at the next call',
      params: ClientIdParams, responses: { 204: null }, errors: ['resource.not_found'],
      handler: async (input) => {
        const { auth, params } = input;
        await ownedClient(auth, params.client_id);
        await deps.clients.remove(params.client_id, clientAudit('client.delete', params.client_id, actorOf(input)));
        return { status: 204 };
      },
    }),

    defineRoute({
      method: 'post', path: '/me/clients/:client_id/rotate-secret', tag: 'Me',
      summary: 'Replace a personal client\'s secret; tokens minted with the old one stop at the next call',
      params: ClientIdParams, responses: { 200: PersonalClientSecret }, errors: ['resource.not_found'],
      handler: async (input) => {
        const { auth, params } = input;
        await ownedClient(auth, params.client_id);
        const secret = await deps.clients.rotateSecret(params.client_id, clientAudit('client.rotate_secret', params.client_id, actorOf(input)));
        return { status: 200, body: { client_id: params.client_id, client_secret: secret }, headers: { 'Cache-Control': 'no-store' } };
      },
    }),
  ];
}
