import { defineRoute } from '../../http/define-route.ts';
import { PageQuery, offsetOf, pageEnvelope, pageEnvelopeSchema } from '../../http/pagination.ts';
import type { Config } from '../../platform/config.ts';
import type { RolesService } from '../../services/roles.service.ts';
import {
  PermissionIdsBody, RoleCreateBody, RoleIdParams, RoleListQuery, RolePatchBody, RoleReplaceBody, RoleResponse,
} from './roles.schemas.ts';

const READ = { scope: 'rbac:read', permission: 'roles:read' } as const;
const WRITE = { scope: 'rbac:write', permission: 'roles:write' } as const;

/** What these routes use (built in src/dependencies.ts). */
export interface RolesRoutesDependencies {
  config: Pick<Config, 'issuer'>;
  roles: RolesService;
}

export function rolesRoutes(deps: RolesRoutesDependencies) {
  const roles = deps.roles;
  return [
    defineRoute({
      method: 'get', path: '/roles', tag: 'Roles', ...READ, summary: 'Roles of your organization',
      query: PageQuery.extend(RoleListQuery.shape), responses: { 200: pageEnvelopeSchema(RoleResponse) },
      handler: async (input) => {
        const { query, ctx } = input;
        const { count, results } = await roles.list(input.actor, query, { limit: query.page_size, offset: offsetOf(query) });
        return { status: 200, body: pageEnvelope(ctx, deps.config.issuer, query, count, results) };
      },
    }),
    defineRoute({
      method: 'post', path: '/roles', tag: 'Roles', ...WRITE, summary: 'Create a custom role (with permissions you hold)',
      body: RoleCreateBody, responses: { 201: RoleResponse }, errors: ['role.name_taken', 'role.key_taken', 'auth.forbidden', 'resource.not_found'],
      handler: async (input) => ({ status: 201, body: await roles.create(input.actor, input.body) }),
    }),
    defineRoute({
      method: 'get', path: '/roles/:id', tag: 'Roles', ...READ, summary: 'One role with its permissions',
      params: RoleIdParams, responses: { 200: RoleResponse }, errors: ['resource.not_found'],
      handler: async (input) => ({ status: 200, body: await roles.get(input.actor, input.params.id) }),
    }),
    defineRoute({
      method: 'put', path: '/roles/:id', tag: 'Roles', ...WRITE,
      summary: 'Replace a role\'s name, description and status (a description left out is cleared; is_active is kept)',
      params: RoleIdParams, body: RoleReplaceBody, responses: { 200: RoleResponse }, errors: ['resource.not_found', 'role.builtin', 'role.name_taken'],
      handler: async (input) => ({ status: 200, body: await roles.replace(input.actor, input.params.id, input.body) }),
    }),
    defineRoute({
      method: 'patch', path: '/roles/:id', tag: 'Roles', ...WRITE, summary: 'Rename, describe, enable or disable a custom role',
      params: RoleIdParams, body: RolePatchBody, responses: { 200: RoleResponse }, errors: ['resource.not_found', 'role.builtin', 'role.name_taken'],
      handler: async (input) => ({ status: 200, body: await roles.update(input.actor, input.params.id, input.body) }),
    }),
    defineRoute({
      method: 'delete', path: '/roles/:id', tag: 'Roles', ...WRITE, summary: 'Delete a custom role nobody holds',
      params: RoleIdParams, responses: { 204: null }, errors: ['resource.not_found', 'role.builtin', 'role.in_use'],
      handler: async (input) => {
        await roles.delete(input.actor, input.params.id);
        return { status: 204 };
      },
    }),
    defineRoute({
      method: 'post', path: '/roles/:id/permissions', tag: 'Roles', ...WRITE, summary: 'Attach permissions you hold to a role',
      params: RoleIdParams, body: PermissionIdsBody, responses: { 200: RoleResponse }, errors: ['resource.not_found', 'auth.forbidden'],
      handler: async (input) => ({ status: 200, body: await roles.changePermissions(input.actor, input.params.id, input.body.permission_ids, 'add') }),
    }),
    defineRoute({
      method: 'delete', path: '/roles/:id/permissions', tag: 'Roles', ...WRITE, summary: 'Detach permissions from a role',
      params: RoleIdParams, body: PermissionIdsBody, responses: { 200: RoleResponse }, errors: ['resource.not_found', 'auth.forbidden'],
      handler: async (input) => ({ status: 200, body: await roles.changePermissions(input.actor, input.params.id, input.body.permission_ids, 'remove') }),
    }),
  ];
}
