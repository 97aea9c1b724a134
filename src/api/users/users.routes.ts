import { defineRoute } from '../../http/define-route.ts';
import { PageQuery, offsetOf, pageEnvelope, pageEnvelopeSchema } from '../../http/pagination.ts';
import type { Config } from '../../platform/config.ts';
import type { UsersAdminService } from '../../services/users-admin.service.ts';
import { UserProfileResponse } from '../me/me.schemas.ts';
import {
  PromoteBody, ResetPasswordBody, ResetPasswordResponse, RoleIdsBody, UserClient, UserCreateBody, UserCreatedResponse,
  UserIdParams, UserListQuery, UserPatchBody, UserReplaceBody,
} from './users.schemas.ts';

const READ = { scope: 'users:read', permission: 'users:read' } as const;
const WRITE = { scope: 'users:write', permission: 'users:write' } as const;

/** What these routes use (built in src/dependencies.ts). */
export interface UsersRoutesDependencies {
  config: Pick<Config, 'issuer'>;
  usersAdmin: UsersAdminService;
}

export function usersRoutes(deps: UsersRoutesDependencies) {
  const users = deps.usersAdmin;
  return [
    defineRoute({
      method: 'get', path: '/users', tag: 'Users', ...READ,
      summary: 'Users of your organization (every organization for a super admin)',
      query: PageQuery.extend(UserListQuery.shape), responses: { 200: pageEnvelopeSchema(UserProfileResponse) },
      handler: async (input) => {
        const { query, ctx } = input;
        const { count, results } = await users.list(input.actor, query, { limit: query.page_size, offset: offsetOf(query) });
        return { status: 200, body: pageEnvelope(ctx, deps.config.issuer, query, count, results) };
      },
    }),
    defineRoute({
      method: 'post', path: '/users', tag: 'Users', ...WRITE,
      summary: 'Create a user with a given or temporary password and one role (by key or name); optionally a personal client',
      body: UserCreateBody, responses: { 201: UserCreatedResponse },
      errors: ['user.email_taken', 'user.username_taken', 'organization.max_users_reached', 'auth.forbidden'],
      handler: async (input) => ({ status: 201, body: await users.create(input.actor, input.body), headers: { 'Cache-Control': 'no-store' } }),
    }),
    defineRoute({
      method: 'get', path: '/users/:id', tag: 'Users', ...READ, summary: 'One user',
      params: UserIdParams, responses: { 200: UserProfileResponse }, errors: ['resource.not_found'],
      handler: async (input) => ({ status: 200, body: await users.get(input.actor, input.params.id) }),
    }),
    defineRoute({
      method: 'put', path: '/users/:id', tag: 'Users', ...WRITE,
      summary: 'Replace a user\'s name and profile (profile fields left out are cleared; email, username, is_active and is_verified are kept)',
      params: UserIdParams, body: UserReplaceBody, responses: { 200: UserProfileResponse },
      errors: ['resource.not_found', 'user.email_taken', 'user.username_taken', 'auth.forbidden', 'user.last_super_admin'],
      handler: async (input) => ({ status: 200, body: await users.replace(input.actor, input.params.id, input.body) }),
    }),
    defineRoute({
      method: 'patch', path: '/users/:id', tag: 'Users', ...WRITE,
      summary: 'Change a user\'s name, profile, verification or status (is_active as POST /enable and /disable)',
      params: UserIdParams, body: UserPatchBody, responses: { 200: UserProfileResponse },
      errors: ['resource.not_found', 'user.email_taken', 'user.username_taken', 'auth.forbidden', 'user.last_super_admin'],
      handler: async (input) => ({ status: 200, body: await users.update(input.actor, input.params.id, input.body) }),
    }),
    defineRoute({
      method: 'delete', path: '/users/:id', tag: 'Users', ...WRITE, summary: 'Delete a user; their tokens stop at the next call',
      params: UserIdParams, responses: { 204: null }, errors: ['resource.not_found', 'user.last_super_admin', 'auth.forbidden'],
      handler: async (input) => {
        await users.delete(input.actor, input.params.id);
        return { status: 204 };
      },
    }),
    defineRoute({
      method: 'post', path: '/users/:id/promote', tag: 'Users', ...WRITE, summary: 'Give a user exactly one role (never above your own)',
      params: UserIdParams, body: PromoteBody, responses: { 200: UserProfileResponse }, errors: ['resource.not_found', 'auth.forbidden', 'user.last_super_admin'],
      handler: async (input) => ({ status: 200, body: await users.promote(input.actor, input.params.id, input.body.role) }),
    }),
    defineRoute({
      method: 'post', path: '/users/:id/enable', tag: 'Users', ...WRITE, summary: 'Enable a user',
      params: UserIdParams, responses: { 200: UserProfileResponse }, errors: ['resource.not_found', 'auth.forbidden'],
      handler: async (input) => ({ status: 200, body: await users.setActive(input.actor, input.params.id, true) }),
    }),
    defineRoute({
      method: 'post', path: '/users/:id/disable', tag: 'Users', ...WRITE, summary: 'Disable a user; their tokens and sessions end at once',
      params: UserIdParams, responses: { 200: UserProfileResponse }, errors: ['resource.not_found', 'auth.forbidden', 'user.last_super_admin'],
      handler: async (input) => ({ status: 200, body: await users.setActive(input.actor, input.params.id, false) }),
    }),
    defineRoute({
      method: 'post', path: '/users/:id/reset-password', tag: 'Users', ...WRITE,
      summary: 'Set a new or temporary password (answered once); every session of the user ends',
      params: UserIdParams, body: ResetPasswordBody, responses: { 200: ResetPasswordResponse }, errors: ['resource.not_found', 'auth.forbidden'],
      handler: async (input) => ({ status: 200, body: await users.resetPassword(input.actor, input.params.id, input.body.new_password), headers: { 'Cache-Control': 'no-store' } }),
    }),
    defineRoute({
      method: 'delete', path: '/users/:id/mfa', tag: 'Users', ...WRITE,
      summary: 'Reset a user\'s second factors (authenticator app, recovery codes); every session of the user ends',
      params: UserIdParams, responses: { 204: null }, errors: ['resource.not_found', 'auth.forbidden'],
      handler: async (input) => {
        await users.resetMfa(input.actor, input.params.id);
        return { status: 204 };
      },
    }),
    defineRoute({
      method: 'get', path: '/users/:id/clients', tag: 'Users', ...READ, summary: 'A user\'s OAuth clients: ids and dates, never secrets',
      params: UserIdParams, responses: { 200: UserClient.array() }, errors: ['resource.not_found'],
      handler: async (input) => ({ status: 200, body: await users.clientsOf(input.actor, input.params.id) }),
    }),
    defineRoute({
      method: 'post', path: '/users/:id/roles', tag: 'Users', ...WRITE, summary: 'Add roles to a user (never above your own)',
      params: UserIdParams, body: RoleIdsBody, responses: { 200: UserProfileResponse }, errors: ['resource.not_found', 'auth.forbidden'],
      handler: async (input) => ({ status: 200, body: await users.changeRoles(input.actor, input.params.id, input.body.role_ids, 'add') }),
    }),
    defineRoute({
      method: 'delete', path: '/users/:id/roles', tag: 'Users', ...WRITE, summary: 'Take roles away from a user',
      params: UserIdParams, body: RoleIdsBody, responses: { 200: UserProfileResponse }, errors: ['resource.not_found', 'auth.forbidden', 'user.last_super_admin'],
      handler: async (input) => ({ status: 200, body: await users.changeRoles(input.actor, input.params.id, input.body.role_ids, 'remove') }),
    }),
  ];
}
