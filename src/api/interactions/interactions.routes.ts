import { defineRoute } from '../../http/define-route.ts';
import { offsetOf, pageEnvelope, pageEnvelopeSchema } from '../../http/pagination.ts';
import type { Config } from '../../platform/config.ts';
import type { InteractionsService } from '../../services/crm-interactions.service.ts';
import {
  InteractionCreateBody, InteractionIdParams, InteractionListQuery, InteractionPatchBody, InteractionReplaceBody, InteractionResponse,
} from './interactions.schemas.ts';

// An interaction is visible exactly when its customer is (src/services/crm-access.ts).
const READ = { scope: 'crm:read', permission: 'interactions:read' } as const;
const CREATE = { scope: 'crm:write', permission: 'interactions:create' } as const;
const UPDATE = { scope: 'crm:write', permission: 'interactions:update' } as const;
const DELETE = { scope: 'crm:write', permission: 'interactions:delete' } as const;

/** What these routes use (built in src/dependencies.ts). */
export interface InteractionsRoutesDependencies {
  config: Pick<Config, 'issuer'>;
  crmInteractions: InteractionsService;
}

export function interactionsRoutes(deps: InteractionsRoutesDependencies) {
  const interactions = deps.crmInteractions;
  return [
    defineRoute({
      method: 'get', path: '/interactions', tag: 'Interactions', ...READ,
      summary: 'Interactions with the customers you see, newest first; filters customer, interaction_type',
      query: InteractionListQuery, responses: { 200: pageEnvelopeSchema(InteractionResponse) },
      handler: async (input) => {
        const { query, ctx } = input;
        const { count, results } = await interactions.list(input.actor, query, { limit: query.page_size, offset: offsetOf(query) });
        return { status: 200, body: pageEnvelope(ctx, deps.config.issuer, query, count, results) };
      },
    }),
    defineRoute({
      method: 'post', path: '/interactions', tag: 'Interactions', ...CREATE, summary: 'Record an interaction with a customer you see',
      body: InteractionCreateBody, responses: { 201: InteractionResponse }, errors: ['resource.not_found'],
      handler: async (input) => ({ status: 201, body: await interactions.create(input.actor, input.body) }),
    }),
    defineRoute({
      method: 'get', path: '/interactions/:id', tag: 'Interactions', ...READ, summary: 'One interaction',
      params: InteractionIdParams, responses: { 200: InteractionResponse }, errors: ['resource.not_found'],
      handler: async (input) => ({ status: 200, body: await interactions.get(input.actor, input.params.id) }),
    }),
    defineRoute({
      method: 'put', path: '/interactions/:id', tag: 'Interactions', ...UPDATE, summary: 'Replace an interaction',
      params: InteractionIdParams, body: InteractionReplaceBody, responses: { 200: InteractionResponse }, errors: ['resource.not_found'],
      handler: async (input) => ({ status: 200, body: await interactions.replace(input.actor, input.params.id, input.body) }),
    }),
    defineRoute({
      method: 'patch', path: '/interactions/:id', tag: 'Interactions', ...UPDATE, summary: 'Change some fields of an interaction',
      params: InteractionIdParams, body: InteractionPatchBody, responses: { 200: InteractionResponse }, errors: ['resource.not_found'],
      handler: async (input) => ({ status: 200, body: await interactions.update(input.actor, input.params.id, input.body) }),
    }),
    defineRoute({
      method: 'delete', path: '/interactions/:id', tag: 'Interactions', ...DELETE, summary: 'Delete an interaction',
      params: InteractionIdParams, responses: { 204: null }, errors: ['resource.not_found'],
      handler: async (input) => {
        await interactions.delete(input.actor, input.params.id);
        return { status: 204 };
      },
    }),
  ];
}
