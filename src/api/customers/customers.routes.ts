import { defineRoute } from '../../http/define-route.ts';
import { offsetOf, pageEnvelope, pageEnvelopeSchema } from '../../http/pagination.ts';
import type { Config } from '../../platform/config.ts';
import type { CustomersService } from '../../services/customers.service.ts';
import {
  CustomerCreateBody, CustomerDetailResponse, CustomerIdParams, CustomerListQuery, CustomerPatchBody, CustomerReplaceBody, CustomerResponse,
  CustomerStageBody,
} from './customers.schemas.ts';

// The permission gates the action; which rows the caller reaches is the service's visibility rule
// (src/services/crm-access.ts), so a customer out of sight answers 404 like a missing one.
const READ = { scope: 'crm:read', permission: 'customers:read' } as const;
const CREATE = { scope: 'crm:write', permission: 'customers:create' } as const;
const UPDATE = { scope: 'crm:write', permission: 'customers:update' } as const;
const DELETE = { scope: 'crm:write', permission: 'customers:delete' } as const;

/** What these routes use (built in src/dependencies.ts). */
export interface CustomersRoutesDependencies {
  config: Pick<Config, 'issuer'>;
  customers: CustomersService;
}

export function customersRoutes(deps: CustomersRoutesDependencies) {
  const customers = deps.customers;
  return [
    defineRoute({
      method: 'get', path: '/customers', tag: 'Customers', ...READ,
      summary: 'Customers you see, newest first; filters stage, assigned_to, search (names, email, company)',
      query: CustomerListQuery, responses: { 200: pageEnvelopeSchema(CustomerResponse) },
      handler: async (input) => {
        const { query, ctx } = input;
        const { count, results } = await customers.list(input.actor, query, { limit: query.page_size, offset: offsetOf(query) });
        return { status: 200, body: pageEnvelope(ctx, deps.config.issuer, query, count, results) };
      },
    }),
    defineRoute({
      method: 'post', path: '/customers', tag: 'Customers', ...CREATE,
      summary: 'Create a customer in your organization',
      body: CustomerCreateBody, responses: { 201: CustomerDetailResponse }, errors: ['customer.email_taken'],
      handler: async (input) => ({ status: 201, body: await customers.create(input.actor, input.body) }),
    }),
    defineRoute({
      method: 'get', path: '/customers/:id', tag: 'Customers', ...READ, summary: 'One customer with its interactions, newest first',
      params: CustomerIdParams, responses: { 200: CustomerDetailResponse }, errors: ['resource.not_found'],
      handler: async (input) => ({ status: 200, body: await customers.get(input.actor, input.params.id) }),
    }),
    defineRoute({
      method: 'put', path: '/customers/:id', tag: 'Customers', ...UPDATE,
      summary: 'Replace a customer (optional fields left out are cleared; the stage is kept)',
      params: CustomerIdParams, body: CustomerReplaceBody, responses: { 200: CustomerDetailResponse }, errors: ['resource.not_found', 'customer.email_taken'],
      handler: async (input) => ({ status: 200, body: await customers.replace(input.actor, input.params.id, input.body) }),
    }),
    defineRoute({
      method: 'patch', path: '/customers/:id', tag: 'Customers', ...UPDATE, summary: 'Change some fields of a customer',
      params: CustomerIdParams, body: CustomerPatchBody, responses: { 200: CustomerDetailResponse }, errors: ['resource.not_found', 'customer.email_taken'],
      handler: async (input) => ({ status: 200, body: await customers.update(input.actor, input.params.id, input.body) }),
    }),
    defineRoute({
      method: 'patch', path: '/customers/:id/stage', tag: 'Customers', ...UPDATE,
      summary: 'Move a customer to another stage; the move is logged as a NOTE interaction',
      params: CustomerIdParams, body: CustomerStageBody, responses: { 200: CustomerDetailResponse }, errors: ['resource.not_found'],
      handler: async (input) => ({ status: 200, body: await customers.changeStage(input.actor, input.params.id, input.body.stage) }),
    }),
    defineRoute({
      method: 'delete', path: '/customers/:id', tag: 'Customers', ...DELETE, summary: 'Delete a customer and its interactions',
      params: CustomerIdParams, responses: { 204: null }, errors: ['resource.not_found'],
      handler: async (input) => {
        await customers.delete(input.actor, input.params.id);
        return { status: 204 };
      },
    }),
  ];
}
