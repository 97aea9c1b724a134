import { z } from 'zod';

import { CursorPageQuery } from '../../http/pagination.ts';

// `from` is inclusive and `to` exclusive, so consecutive windows (from=A&to=B, then from=B&to=C)
// never count a row twice. A bare date means midnight UTC.
const instant = z.union([z.iso.datetime({ offset: true }), z.iso.date()], { error: 'expected an ISO 8601 date or date-time' })
  .transform((value) => new Date(value))
  .refine((date) => !Number.isNaN(date.getTime()), { error: 'expected an ISO 8601 date or date-time' });

const uuid = z.uuid({ error: 'expected a UUID' });

const filterShape = {
  organization_id: uuid.optional().describe('super admin only; everyone else sees their own organization'),
  user_id: uuid.optional().describe('rows where this user is the actor or the target'),
  actor_id: uuid.optional(),
  action: z.string().min(1).max(64).optional(),
  resource: z.string().min(1).max(64).optional(),
  status: z.enum(['success', 'failure']).optional(),
  from: instant.optional(),
  to: instant.optional(),
};

function windowInOrder(query: { from?: Date; to?: Date }): boolean {
  return !query.from || !query.to || query.from < query.to;
}
const windowError = { error: '"to" must be later than "from"', path: ['to'] };

export const AuditLogQuery = z.object({ ...filterShape, ...CursorPageQuery.shape }).refine(windowInOrder, windowError);
export type AuditLogQuery = z.infer<typeof AuditLogQuery>;

export const AuditExportQuery = z.object({
  ...filterShape,
  format: z.enum(['csv', 'ndjson'], { error: 'expected "csv" or "ndjson"' }).default('csv'),
}).refine(windowInOrder, windowError);

const days = z.coerce.number({ error: 'expected a whole number' }).int().min(1).max(365).default(30);

export const ActivityQuery = z.object({ days, ...CursorPageQuery.shape });
export const StatsQuery = z.object({ days });
export const IdParams = z.object({ id: uuid });

export const AuditEntry = z.object({
  id: z.uuid(),
  occurred_at: z.iso.datetime(),
  organization_id: z.uuid().nullable(),
  actor_id: z.uuid().nullable(),
  actor_email: z.string().nullable(),
  actor_client_id: z.string().nullable(),
  target_id: z.string().nullable(),
  target_email: z.string().nullable(),
  action: z.string(),
  resource: z.string(),
  resource_id: z.string().nullable(),
  status: z.enum(['success', 'failure']),
  ip: z.string().nullable(),
  user_agent: z.string().nullable(),
  details: z.record(z.string(), z.unknown()).nullable(),
}).meta({ id: 'AuditEntry' });

export const AuditPage = z.object({
  results: z.array(AuditEntry),
  next: z.string().nullable(),
}).meta({ id: 'AuditPage' });

const count = z.number().int().min(0);

export const OrganizationStats = z.object({
  organization_id: z.uuid(),
  days: z.number().int(),
  from: z.iso.datetime(),
  to: z.iso.datetime(),
  sign_ins: count,
  failed_sign_ins: count,
  active_users: count,
  events: count,
  actions_by_day: z.array(z.object({ date: z.iso.date(), count })),
  top_actions: z.array(z.object({ action: z.string(), count })),
  users: z.object({ total: count, active: count }),
}).meta({ id: 'OrganizationStats' });

const signIns = z.object({ success: count, failure: count });

export const AdminStats = z.object({
  organizations: z.object({ total: count, active: count }),
  users: z.object({ total: count, active: count }),
  clients: z.object({ total: count, by_kind: z.object({ application: count, personal: count, dynamic: count }) }),
  sign_ins: z.object({ last_24_hours: signIns, last_30_days: signIns }),
}).meta({ id: 'AdminStats' });
