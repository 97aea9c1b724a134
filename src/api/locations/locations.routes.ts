import { defineRoute } from '../../http/define-route.ts';
import { offsetOf, pageEnvelope, pageEnvelopeSchema } from '../../http/pagination.ts';
import type { Config } from '../../platform/config.ts';
import type { LocationsService } from '../../services/locations.service.ts';
import {
  AssignedLocationResponse, AssignmentBody, AssignmentPageQuery, AssignmentResponse, LocationCreateBody, LocationIdParams,
  LocationListQuery, LocationPatchBody, LocationReplaceBody, LocationResponse, LocationUserResponse, UserIdParams, UserLocationParams,
} from './locations.schemas.ts';

const READ = { scope: 'users:read', permission: 'locations:read' } as const;
const WRITE = { scope: 'users:write', permission: 'locations:write' } as const;

/** What these routes use (built in src/dependencies.ts). */
export interface LocationsRoutesDependencies {
  config: Pick<Config, 'issuer'>;
  locations: LocationsService;
}

export function locationsRoutes(deps: LocationsRoutesDependencies) {
  const locations = deps.locations;
  return [
    defineRoute({
      method: 'get', path: '/locations', tag: 'Locations', ...READ,
      summary: 'Locations of your organization (of any, or the one named, for a super admin)',
      query: LocationListQuery, responses: { 200: pageEnvelopeSchema(LocationResponse) },
      handler: async (input) => {
        const { query, ctx } = input;
        const { count, results } = await locations.list(input.actor, query, { limit: query.page_size, offset: offsetOf(query) });
        return { status: 200, body: pageEnvelope(ctx, deps.config.issuer, query, count, results) };
      },
    }),
    defineRoute({
      method: 'post', path: '/locations', tag: 'Locations', ...WRITE, summary: 'Create a location',
      body: LocationCreateBody, responses: { 201: LocationResponse }, errors: ['location.code_taken', 'resource.not_found'],
      handler: async (input) => ({ status: 201, body: await locations.create(input.actor, input.body) }),
    }),
    defineRoute({
      method: 'post', path: '/locations/assign', tag: 'Locations', ...WRITE,
      summary: 'Replace a user\'s locations with the given ones, one of them primary',
      body: AssignmentBody, responses: { 200: AssignmentResponse }, errors: ['resource.not_found'],
      handler: async (input) => ({ status: 200, body: await locations.assign(input.actor, input.body) }),
    }),
    defineRoute({
      method: 'get', path: '/locations/:id', tag: 'Locations', ...READ, summary: 'One location',
      params: LocationIdParams, responses: { 200: LocationResponse }, errors: ['resource.not_found'],
      handler: async (input) => ({ status: 200, body: await locations.get(input.actor, input.params.id) }),
    }),
    defineRoute({
      method: 'put', path: '/locations/:id', tag: 'Locations', ...WRITE,
      summary: 'Replace a location (optional texts left out are cleared; the code and is_active are kept)',
      params: LocationIdParams, body: LocationReplaceBody, responses: { 200: LocationResponse },
      errors: ['resource.not_found', 'location.code_taken'],
      handler: async (input) => ({ status: 200, body: await locations.replace(input.actor, input.params.id, input.body) }),
    }),
    defineRoute({
      method: 'patch', path: '/locations/:id', tag: 'Locations', ...WRITE, summary: 'Change a location',
      params: LocationIdParams, body: LocationPatchBody, responses: { 200: LocationResponse },
      errors: ['resource.not_found', 'location.code_taken'],
      handler: async (input) => ({ status: 200, body: await locations.update(input.actor, input.params.id, input.body) }),
    }),
    defineRoute({
      method: 'delete', path: '/locations/:id', tag: 'Locations', ...WRITE, summary: 'Delete a location and its assignments',
      params: LocationIdParams, responses: { 204: null }, errors: ['resource.not_found'],
      handler: async (input) => {
        await locations.delete(input.actor, input.params.id);
        return { status: 204 };
      },
    }),
    defineRoute({
      method: 'get', path: '/locations/:id/users', tag: 'Locations', ...READ, summary: 'Users assigned to a location',
      params: LocationIdParams, query: AssignmentPageQuery, responses: { 200: pageEnvelopeSchema(LocationUserResponse) },
      errors: ['resource.not_found'],
      handler: async (input) => {
        const { query, ctx } = input;
        const { count, results } = await locations.usersOf(input.actor, input.params.id, { limit: query.page_size, offset: offsetOf(query) });
        return { status: 200, body: pageEnvelope(ctx, deps.config.issuer, query, count, results) };
      },
    }),
    // Under /users by path, but assignments are this domain's rows.
    defineRoute({
      method: 'get', path: '/users/:id/locations', tag: 'Locations', ...READ, summary: 'A user\'s locations, the primary one first',
      params: UserIdParams, query: AssignmentPageQuery, responses: { 200: pageEnvelopeSchema(AssignedLocationResponse) },
      errors: ['resource.not_found'],
      handler: async (input) => {
        const { query, ctx } = input;
        const { count, results } = await locations.locationsOf(input.actor, input.params.id, { limit: query.page_size, offset: offsetOf(query) });
        return { status: 200, body: pageEnvelope(ctx, deps.config.issuer, query, count, results) };
      },
    }),
    defineRoute({
      method: 'delete', path: '/users/:uid/locations/:lid', tag: 'Locations', ...WRITE, summary: 'Take one location away from a user',
      params: UserLocationParams, responses: { 204: null }, errors: ['resource.not_found'],
      handler: async (input) => {
        await locations.unassign(input.actor, input.params.uid, input.params.lid);
        return { status: 204 };
      },
    }),
  ];
}
