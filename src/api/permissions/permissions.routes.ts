import { defineRoute } from '../../http/define-route.ts';
import { PageQuery, offsetOf, pageEnvelope, pageEnvelopeSchema } from '../../http/pagination.ts';
import type { Config } from '../../platform/config.ts';
import type { PermissionsService } from '../../services/permissions.service.ts';
import {
  GroupedPermissionsResponse, PermissionCreateBody, PermissionIdParams, PermissionListQuery, PermissionPatchBody, PermissionReplaceBody,
  PermissionResponse,
} from './permissions.schemas.ts';

// Everyone reads permissions; only super admins hold permissions:write among the built-in roles.
// Reading carries no scope on purpose: every role holds permissions:read and the catalogue is
// global and public knowledge (the names a role screen shows), so any API token may read it, not
// only one that asked for rbac:read.
const READ = { scope: null, permission: 'permissions:read' } as const;
const WRITE = { scope: 'rbac:write', permission: 'permissions:write' } as const;

/** What these routes use (built in src/dependencies.ts). */
export interface PermissionsRoutesDependencies {
  config: Pick<Config, 'issuer'>;
  permissions: PermissionsService;
}

export function permissionsRoutes(deps: PermissionsRoutesDependencies) {
  const permissions = deps.permissions;
  return [
    defineRoute({
      method: 'get', path: '/permissions', tag: 'Permissions', ...READ, summary: 'Every permission',
      query: PageQuery.extend(PermissionListQuery.shape), responses: { 200: pageEnvelopeSchema(PermissionResponse) },
      handler: async ({ query, ctx }) => {
        const { count, results } = await permissions.list(query, { limit: query.page_size, offset: offsetOf(query) });
        return { status: 200, body: pageEnvelope(ctx, deps.config.issuer, query, count, results) };
      },
    }),
    defineRoute({
      method: 'get', path: '/permissions/grouped', tag: 'Permissions', ...READ, summary: 'Every permission, grouped by resource',
      query: PermissionListQuery, responses: { 200: GroupedPermissionsResponse },
      handler: async ({ query }) => ({ status: 200, body: await permissions.grouped(query) }),
    }),
    defineRoute({
      method: 'post', path: '/permissions', tag: 'Permissions', ...WRITE, summary: 'Create a permission',
      body: PermissionCreateBody, responses: { 201: PermissionResponse }, errors: ['permission.name_taken'],
      handler: async (input) => ({ status: 201, body: await permissions.create(input.actor, input.body) }),
    }),
    defineRoute({
      method: 'get', path: '/permissions/:id', tag: 'Permissions', ...READ, summary: 'One permission',
      params: PermissionIdParams, responses: { 200: PermissionResponse }, errors: ['resource.not_found'],
      handler: async ({ params }) => ({ status: 200, body: await permissions.get(params.id) }),
    }),
    defineRoute({
      method: 'put', path: '/permissions/:id', tag: 'Permissions', ...WRITE, summary: 'Replace a permission (a description left out is cleared)',
      params: PermissionIdParams, body: PermissionReplaceBody, responses: { 200: PermissionResponse },
      errors: ['resource.not_found', 'permission.builtin', 'permission.name_taken'],
      handler: async (input) => ({ status: 200, body: await permissions.replace(input.actor, input.params.id, input.body) }),
    }),
    defineRoute({
      method: 'patch', path: '/permissions/:id', tag: 'Permissions', ...WRITE, summary: 'Rename or describe a permission',
      params: PermissionIdParams, body: PermissionPatchBody, responses: { 200: PermissionResponse }, errors: ['resource.not_found', 'permission.builtin', 'permission.name_taken'],
      handler: async (input) => ({ status: 200, body: await permissions.update(input.actor, input.params.id, input.body) }),
    }),
    defineRoute({
      method: 'delete', path: '/permissions/:id', tag: 'Permissions', ...WRITE, summary: 'Delete a custom permission',
      params: PermissionIdParams, responses: { 204: null }, errors: ['resource.not_found', 'permission.builtin'],
      handler: async (input) => {
        await permissions.delete(input.actor, input.params.id);
        return { status: 204 };
      },
    }),
  ];
}
