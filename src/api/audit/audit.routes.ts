import { defineRoute } from '../../http/define-route.ts';
import { cursorOf } from '../../http/pagination.ts';
import type { AuditQueryService, AuditFilters } from '../../services/audit-query.service.ts';
import {
  ActivityQuery, AdminStats, AuditExportQuery, AuditLogQuery, AuditPage, IdParams, OrganizationStats, StatsQuery,
} from './audit.schemas.ts';

const EXPORT_TYPES = { csv: 'text/csv; charset=utf-8', ndjson: 'application/x-ndjson' } as const;

function filtersOf(query: Omit<AuditLogQuery, 'page_size' | 'limit' | 'size' | 'cursor' | 'page'>): AuditFilters {
  return {
    organizationId: query.organization_id, userId: query.user_id, actorId: query.actor_id,
    action: query.action, resource: query.resource, status: query.status, from: query.from, to: query.to,
  };
}

/** What these routes use (built in src/dependencies.ts). */
export interface AuditRoutesDependencies {
  auditQuery: AuditQueryService;
}

export function auditRoutes(deps: AuditRoutesDependencies) {
  const audit = deps.auditQuery;

  return [
    defineRoute({
      method: 'get', path: '/audit/logs', tag: 'Audit', summary: 'The audit trail of your organization (super admin: all), newest first, by cursor',
      scope: 'audit:read', permission: 'audit:read',
      query: AuditLogQuery, responses: { 200: AuditPage }, errors: ['request.bad_cursor', 'request.validation_failed'],
      handler: async (input) => ({
        status: 200,
        body: await audit.list(input.actor, filtersOf(input.query), { limit: input.query.page_size, cursor: cursorOf(input.query) }),
        headers: { 'Cache-Control': 'no-store' },
      }),
    }),

    defineRoute({
      method: 'get', path: '/audit/logs/export', tag: 'Audit', summary: 'The audit trail as a streamed CSV or NDJSON download, oldest first',
      scope: 'audit:read', permission: 'audit:read',
      query: AuditExportQuery, responses: { 200: null }, produces: ['text/csv', 'application/x-ndjson'], errors: ['request.validation_failed'],
      handler: async (input) => {
        const { format } = input.query;
        const log = input.ctx.state.log;
        const body = await audit.export(input.actor, filtersOf(input.query), format, (error) => {
          // A client that stops reading is routine; anything else cut a download short.
          if ((error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') log.info('audit export abandoned by the client');
          else log.error({ err: error }, 'audit export failed midway');
        });
        return {
          status: 200,
          body,
          headers: {
            'Content-Type': EXPORT_TYPES[format],
            'Content-Disposition': `attachment; filename=audit-${new Date().toISOString().slice(0, 10)}.${format}`,
            'Cache-Control': 'no-store',
          },
        };
      },
    }),

    defineRoute({
      method: 'get', path: '/users/:id/activity', tag: 'Users', summary: 'A user\'s audit trail, as actor or target, over the last `days`',
      scope: 'users:read', permission: 'users:read',
      params: IdParams, query: ActivityQuery, responses: { 200: AuditPage }, errors: ['resource.not_found', 'request.bad_cursor'],
      handler: async (input) => ({
        status: 200,
        body: await audit.activity(input.actor, input.params.id, input.query.days, { limit: input.query.page_size, cursor: cursorOf(input.query) }),
        headers: { 'Cache-Control': 'no-store' },
      }),
    }),

    defineRoute({
      method: 'get', path: '/organizations/:id/stats', tag: 'Audit', summary: 'Sign-ins, activity and users of one organization over the last `days`',
      scope: 'audit:read', permission: 'audit:read',
      params: IdParams, query: StatsQuery, responses: { 200: OrganizationStats }, errors: ['resource.not_found'],
      handler: async (input) => ({ status: 200, body: await audit.organizationStats(input.actor, input.params.id, input.query.days) }),
    }),

    defineRoute({
      method: 'get', path: '/admin/stats', tag: 'Audit', summary: 'Platform-wide counts (super admin only)',
      scope: 'audit:read',
      responses: { 200: AdminStats }, errors: ['auth.forbidden'],
      handler: async (input) => ({ status: 200, body: await audit.adminStats(input.actor) }),
    }),
  ];
}
