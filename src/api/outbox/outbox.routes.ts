// The outbox for operators (super admins only): what is waiting, sent or failed, and a retry.
import { defineRoute } from '../../http/define-route.ts';
import { offsetOf, pageEnvelope, pageEnvelopeSchema } from '../../http/pagination.ts';
import type { Config } from '../../platform/config.ts';
import type { OutboxAdminService } from '../../services/outbox-admin.service.ts';
import { OutboxIdParams, OutboxListQuery, OutboxMessageResponse } from './outbox.schemas.ts';

/** What these routes use (built in src/dependencies.ts). */
export interface OutboxRoutesDependencies {
  config: Pick<Config, 'issuer'>;
  outboxAdmin: OutboxAdminService;
}

export function outboxRoutes(deps: OutboxRoutesDependencies) {
  const outbox = deps.outboxAdmin;

  return [
    defineRoute({
      method: 'get', path: '/admin/outbox', tag: 'Operations',
      summary: 'Mails (and later webhooks) waiting, sent or failed, newest first: kind, recipient, subject, attempts, last error (super admin only)',
      // Operational reading, as GET /admin/stats.
      scope: 'audit:read',
      query: OutboxListQuery, responses: { 200: pageEnvelopeSchema(OutboxMessageResponse) }, errors: ['auth.forbidden'],
      handler: async (input) => {
        const { query, ctx } = input;
        const { count, results } = await outbox.list(input.actor, { status: query.status, kind: query.kind }, { limit: query.page_size, offset: offsetOf(query) });
        return { status: 200, body: pageEnvelope(ctx, deps.config.issuer, query, count, results), headers: { 'Cache-Control': 'no-store' } };
      },
    }),

    defineRoute({
      method: 'post', path: '/admin/outbox/:id/retry', tag: 'Operations',
      summary: 'Send a failed (or pending) message again now, with a fresh set of attempts (super admin only)',
      // It sends mail to users again.
      scope: 'users:write',
      params: OutboxIdParams, responses: { 200: OutboxMessageResponse }, errors: ['auth.forbidden', 'outbox.not_retryable'],
      handler: async (input) => ({ status: 200, body: await outbox.retry(input.actor, input.params.id) }),
    }),
  ];
}
