import { defineRoute } from '../../http/define-route.ts';
import { assertThat } from '../../platform/errors.ts';
import { PageQuery, offsetOf, pageEnvelope, pageEnvelopeSchema } from '../../http/pagination.ts';
import type { Config } from '../../platform/config.ts';
import { createPersonalClient, type PersonalClientsDependencies, removePersonalClient, rotatePersonalClientSecret } from '../../services/personal-clients.service.ts';
import { actingUser, type SelfService } from '../../services/self-service.service.ts';
import { findActiveProfile, nameChanges } from '../../services/users.service.ts';
import {
  ClientIdParams, PersonalClient, PersonalClientCreateBody, PersonalClientCreated, PersonalClientSecret, ProfilePatchBody, ProfileReplaceBody,
  UserProfileResponse,
} from './me.schemas.ts';

/** What these routes use (built in src/dependencies.ts). */
export interface MeRoutesDependencies extends PersonalClientsDependencies {
  config: Pick<Config, 'issuer'>;
  selfService: SelfService;
}

export function meRoutes(deps: MeRoutesDependencies) {
  const profileOf = async (userId: string) => {
    const profile = await findActiveProfile(deps.orm, userId);
    assertThat(profile, 'resource.not_found', 'The user of this token no longer exists or is disabled');
    return profile;
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
      errors: ['auth.user_required', 'resource.not_found', 'user.email_taken', 'user.username_taken', 'request.validation_failed'],
      handler: async (input) => {
        const { auth, body } = input;
        const { email, username, full_name, first_name, last_name, ...attributes } = body;
        await deps.selfService.updateProfile(input.actor, {
          email, username, ...nameChanges({ full_name, first_name, last_name }), attributes,
        });
        return { status: 200, body: await profileOf(actingUser(auth)) };
      },
    }),

    defineRoute({
      method: 'put', path: '/me', tag: 'Me',
      summary: 'Replace your own profile: a name as at registration; profile fields left out are cleared, email and username kept',
      body: ProfileReplaceBody, responses: { 200: UserProfileResponse },
      errors: ['auth.user_required', 'resource.not_found', 'user.email_taken', 'user.username_taken', 'request.validation_failed'],
      handler: async (input) => {
        const { auth, body } = input;
        await deps.selfService.replaceProfile(input.actor, body);
        return { status: 200, body: await profileOf(actingUser(auth)) };
      },
    }),

    defineRoute({
      method: 'post', path: '/me/deactivate', tag: 'Me', summary: 'Switch your own account off; every token of it stops',
      responses: { 204: null }, errors: ['auth.user_required', 'resource.not_found', 'user.last_super_admin'],
      handler: async (input) => {
        await deps.selfService.deactivate(input.actor);
        return { status: 204 };
      },
    }),

    defineRoute({
      method: 'delete', path: '/me', tag: 'Me', summary: 'Delete your own account, its personal clients and grants',
      responses: { 204: null }, errors: ['auth.user_required', 'resource.not_found', 'user.last_super_admin'],
      handler: async (input) => {
        await deps.selfService.delete(input.actor);
        return { status: 204 };
      },
    }),

    defineRoute({
      method: 'get', path: '/me/clients', tag: 'Me', summary: 'Your personal API clients (never their secrets)',
      query: PageQuery, responses: { 200: pageEnvelopeSchema(PersonalClient) }, errors: ['auth.user_required'],
      handler: async ({ auth, query, ctx }) => {
        const { count, clients } = await deps.clientRegistry.listOwned(actingUser(auth), { limit: query.page_size, offset: offsetOf(query) });
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
      body: PersonalClientCreateBody, responses: { 201: PersonalClientCreated }, errors: ['auth.user_required', 'resource.not_found', 'request.conflict'],
      handler: async (input) => {
        const created = await createPersonalClient(deps, input.actor, input.body);
        const now = new Date().toISOString();
        return {
          status: 201,
          body: { client_id: created.clientId, client_secret: created.clientSecret, client_name: input.body.client_name, scope: created.scope, created_at: now, updated_at: now },
          headers: { 'Cache-Control': 'no-store' },
        };
      },
    }),

    defineRoute({
      method: 'delete', path: '/me/clients/:client_id', tag: 'Me', summary: 'Delete a personal client; its tokens stop at the next call',
      params: ClientIdParams, responses: { 204: null }, errors: ['auth.user_required', 'resource.not_found'],
      handler: async (input) => {
        await removePersonalClient(deps, input.actor, input.params.client_id);
        return { status: 204 };
      },
    }),

    defineRoute({
      method: 'post', path: '/me/clients/:client_id/rotate-secret', tag: 'Me',
      summary: 'Replace a personal client\'s secret; tokens minted with the old one stop at the next call',
      params: ClientIdParams, responses: { 200: PersonalClientSecret }, errors: ['auth.user_required', 'resource.not_found'],
      handler: async (input) => {
        const secret = await rotatePersonalClientSecret(deps, input.actor, input.params.client_id);
        return { status: 200, body: { client_id: input.params.client_id, client_secret: secret }, headers: { 'Cache-Control': 'no-store' } };
      },
    }),
  ];
}
