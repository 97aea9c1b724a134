import { defineRoute } from '../../http/define-route.ts';
import { offsetOf, pageEnvelope, pageEnvelopeSchema } from '../../http/pagination.ts';
import type { Config } from '../../platform/config.ts';
import type { OrganizationsService } from '../../services/organizations.service.ts';
import {
  OrganizationCreateBody, OrganizationIdParams, OrganizationListQuery, OrganizationPatchBody, OrganizationReplaceBody, OrganizationResponse,
} from './organizations.schemas.ts';

// Among the built-in roles only super admins hold organizations:write; org admins hold
// organizations:read and see their own organization alone.
const READ = { scope: 'users:read', permission: 'organizations:read' } as const;
const WRITE = { scope: 'users:write', permission: 'organizations:write' } as const;

/** What these routes use (built in src/dependencies.ts). */
export interface OrganizationsRoutesDependencies {
  config: Pick<Config, 'issuer'>;
  organizations: OrganizationsService;
}

export function organizationsRoutes(deps: OrganizationsRoutesDependencies) {
  const organizations = deps.organizations;
  return [
    // Before '/organizations/:id', which would otherwise take "current" for an id.
    defineRoute({
      method: 'get', path: '/organizations/current', tag: 'Organizations', summary: 'The caller\'s own organization',
      responses: { 200: OrganizationResponse }, errors: ['resource.not_found'],
      handler: async (input) => ({ status: 200, body: await organizations.current(input.actor) }),
    }),
    defineRoute({
      method: 'get', path: '/organizations', tag: 'Organizations', ...READ,
      summary: 'Organizations: all of them for a super admin, your own for anyone else',
      query: OrganizationListQuery, responses: { 200: pageEnvelopeSchema(OrganizationResponse) },
      handler: async (input) => {
        const { query, ctx } = input;
        const { count, results } = await organizations.list(input.actor, query, { limit: query.page_size, offset: offsetOf(query) });
        return { status: 200, body: pageEnvelope(ctx, deps.config.issuer, query, count, results) };
      },
    }),
    defineRoute({
      method: 'post', path: '/organizations', tag: 'Organizations', ...WRITE,
      summary: 'Create an organization with its built-in roles',
      body: OrganizationCreateBody, responses: { 201: OrganizationResponse }, errors: ['organization.slug_taken'],
      handler: async (input) => ({ status: 201, body: await organizations.create(input.actor, input.body) }),
    }),
    defineRoute({
      method: 'get', path: '/organizations/:id', tag: 'Organizations', ...READ, summary: 'One organization',
      params: OrganizationIdParams, responses: { 200: OrganizationResponse }, errors: ['resource.not_found'],
      handler: async (input) => ({ status: 200, body: await organizations.get(input.actor, input.params.id) }),
    }),
    defineRoute({
      method: 'put', path: '/organizations/:id', tag: 'Organizations', ...WRITE,
      summary: 'Replace an organization (description and max_users left out are cleared; is_active and the slug are kept)',
      params: OrganizationIdParams, body: OrganizationReplaceBody, responses: { 200: OrganizationResponse },
      errors: ['resource.not_found', 'auth.forbidden', 'user.last_super_admin'],
      handler: async (input) => ({ status: 200, body: await organizations.replace(input.actor, input.params.id, input.body) }),
    }),
    defineRoute({
      method: 'patch', path: '/organizations/:id', tag: 'Organizations', ...WRITE,
      summary: 'Change an organization; is_active=false ends every session of its users at their next call',
      params: OrganizationIdParams, body: OrganizationPatchBody, responses: { 200: OrganizationResponse },
      errors: ['resource.not_found', 'auth.forbidden', 'user.last_super_admin'],
      handler: async (input) => ({ status: 200, body: await organizations.update(input.actor, input.params.id, input.body) }),
    }),
    defineRoute({
      method: 'delete', path: '/organizations/:id', tag: 'Organizations', ...WRITE,
      summary: 'Delete an organization with its users, roles, clients and locations; their tokens stop at the next call',
      params: OrganizationIdParams, responses: { 204: null },
      errors: ['resource.not_found', 'organization.default', 'auth.forbidden', 'user.last_super_admin'],
      handler: async (input) => {
        await organizations.delete(input.actor, input.params.id);
        return { status: 204 };
      },
    }),
  ];
}
