// The read side of the audit trail (API.md "Audit"): cursor-paged lists, streamed exports and
// aggregate statistics. Every statement carries the caller's organization boundary in its own
// WHERE clause, and every count is a SQL aggregate: nothing loads rows to filter or count them.
import { Readable, Transform, pipeline } from 'node:stream';

import type { MikroORM } from '@mikro-orm/postgresql';
import { stringify } from 'csv-stringify';

import { AppError } from '../platform/errors.ts';
import { queryOne, queryRows } from '../platform/database.ts';
import type { ReadReplicas } from '../platform/read-replicas.ts';
import { KeysetCursors, type KeysetPosition } from './keyset-cursor.ts';
import { assertVisible, isSuperAdmin, organizationFilter, type Actor } from './tenancy.ts';

export interface AuditFilters {
  organizationId?: string;
  /** Rows where this user is the actor or the target. */
  userId?: string;
  actorId?: string;
  action?: string;
  resource?: string;
  status?: 'success' | 'failure';
  from?: Date;
  to?: Date;
}

export interface PageRequest {
  limit: number;
  cursor?: string;
}

export interface AuditRecord {
  id: string;
  occurred_at: string;
  organization_id: string | null;
  actor_id: string | null;
  actor_email: string | null;
  actor_client_id: string | null;
  target_id: string | null;
  target_email: string | null;
  action: string;
  resource: string;
  resource_id: string | null;
  status: 'success' | 'failure';
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown> | null;
}

export type ExportFormat = 'csv' | 'ndjson';

const EXPORT_COLUMNS: (keyof AuditRecord)[] = [
  'id', 'occurred_at', 'organization_id', 'actor_id', 'actor_email', 'actor_client_id', 'target_id', 'target_email',
  'action', 'resource', 'resource_id', 'status', 'ip', 'user_agent', 'details',
];
const EXPORT_FETCH_ROWS = 500;
const TOP_ACTIONS = 10;
const DAY_MS = 86_400_000;

interface Condition {
  sql: string;
  params: unknown[];
}

const UTC_MILLIS = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
const UTC_MICROS = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;
const UUID_TEXT = `'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'`;

/**
 * Columns of an audit row as the API shows it, over `a` (audit_log) with the actor's and the
 * target's current email beside their ids. target_id is free text (a user, or a client id), so it
 * is cast to uuid only when it is one; the join then stays a primary-key lookup.
 */
const RECORD_COLUMNS = `
  a.id, to_char(a.occurred_at at time zone 'UTC', ${UTC_MILLIS}) as occurred_at, a.organization_id,
  a.actor_id, actor.email as actor_email, a.actor_client_id, a.target_id, target.email as target_email,
  a.action, a.resource, a.resource_id, a.status, a.ip, a.user_agent, a.details`;
const EMAIL_JOINS = `
  left join app_user actor on actor.id = a.actor_id
  left join app_user target on target.id = case when a.target_id ~ ${UUID_TEXT} then a.target_id::uuid end`;

interface PlatformCounts {
  organizations_total: number;
  organizations_active: number;
  users_total: number;
  users_active: number;
  day_success: number;
  day_failure: number;
  month_success: number;
  month_failure: number;
}

function whereClause(conditions: Condition[]): { sql: string; params: unknown[] } {
  if (conditions.length === 0) return { sql: '', params: [] };
  return { sql: `where ${conditions.map((condition) => condition.sql).join(' and ')}`, params: conditions.flatMap((condition) => condition.params) };
}

/** The filters as SQL, the caller's organization boundary first. Dates go in as UTC text, cast. */
function filterConditions(actor: Actor, filters: AuditFilters): Condition[] {
  const conditions: Condition[] = [];
  const scope = organizationFilter(actor);
  if (scope !== undefined) conditions.push({ sql: 'a.organization_id = ?', params: [scope] });
  if (filters.organizationId) conditions.push({ sql: 'a.organization_id = ?', params: [filters.organizationId] });
  if (filters.userId) conditions.push({ sql: '(a.actor_id = ? or a.target_id = ?)', params: [filters.userId, filters.userId] });
  if (filters.actorId) conditions.push({ sql: 'a.actor_id = ?', params: [filters.actorId] });
  if (filters.action) conditions.push({ sql: 'a.action = ?', params: [filters.action] });
  if (filters.resource) conditions.push({ sql: 'a.resource = ?', params: [filters.resource] });
  if (filters.status) conditions.push({ sql: 'a.status = ?', params: [filters.status] });
  if (filters.from) conditions.push({ sql: 'a.occurred_at >= ?::timestamptz', params: [filters.from.toISOString()] });
  if (filters.to) conditions.push({ sql: 'a.occurred_at < ?::timestamptz', params: [filters.to.toISOString()] });
  return conditions;
}

/** What a cursor is bound to: the caller's visibility and every filter of the list it came from. */
function listBinding(actor: Actor, list: string, filters: AuditFilters): string {
  return JSON.stringify([
    list, organizationFilter(actor) ?? '*', filters.organizationId ?? null, filters.userId ?? null, filters.actorId ?? null,
    filters.action ?? null, filters.resource ?? null, filters.status ?? null, filters.from?.toISOString() ?? null, filters.to?.toISOString() ?? null,
  ]);
}

function startOfUtcDay(date: Date): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
}

export class AuditQueryService {
  readonly #orm: MikroORM;
  readonly #cursors: KeysetCursors;
  readonly #reads: ReadReplicas;

  /** Every read here is a list or a report: a replica may serve it (the caller's visibility comes from its token). */
  constructor(orm: MikroORM, reads: ReadReplicas) {
    this.#orm = orm;
    this.#reads = reads;
    this.#cursors = new KeysetCursors(orm);
  }

  /** Newest first, `limit` rows after the cursor's position (keyset paging: no OFFSET scans). */
  async list(actor: Actor, filters: AuditFilters, page: PageRequest): Promise<{ results: AuditRecord[]; next: string | null }> {
    return this.#page(actor, filters, page, listBinding(actor, 'audit', filters));
  }

  /** A user's own trail (as actor or target) over the last `days`; the user must be visible. */
  async activity(actor: Actor, userId: string, days: number, page: PageRequest): Promise<{ results: AuditRecord[]; next: string | null }> {
    const user = await queryOne<{ organization_id: string }>(this.#orm.em, 'select organization_id from app_user where id = ?', [userId]);
    if (!user) throw new AppError('resource.not_found', 'No such user');
    assertVisible(actor, user.organization_id, 'user');
    const filters = { userId, from: new Date(Date.now() - days * DAY_MS) };
    // Bound to `days`, not to `from`: the window slides between pages, the list stays the same.
    return this.#page(actor, filters, page, JSON.stringify(['activity', organizationFilter(actor) ?? '*', userId, days]));
  }

  async #page(actor: Actor, filters: AuditFilters, page: PageRequest, binding: string) {
    const conditions = filterConditions(actor, filters);
    if (page.cursor) {
      const after = await this.#cursors.decode(page.cursor, binding);
      conditions.push({ sql: '(a.occurred_at, a.id) < (?::timestamptz, ?::uuid)', params: [after.at, after.id] });
    }
    const where = whereClause(conditions);
    // One row more than asked tells whether there is a next page without counting.
    const rows = await queryRows<AuditRecord & { position: string }>(
      await this.#reads.for(actor),
      `select ${RECORD_COLUMNS}, a.position
         from (select *, to_char(occurred_at at time zone 'UTC', ${UTC_MICROS}) as position
                 from audit_log a ${where.sql}
                order by a.occurred_at desc, a.id desc limit ?) a
         ${EMAIL_JOINS}
        order by a.occurred_at desc, a.id desc`,
      [...where.params, page.limit + 1],
    );
    const results = rows.slice(0, page.limit);
    const last = results.at(-1);
    const next = rows.length > page.limit && last ? await this.#cursors.encode({ at: last.position, id: last.id } satisfies KeysetPosition, binding) : null;
    return { results: results.map(({ position: _position, ...record }) => record), next };
  }

  /**
   * Every visible row matching `filters`, oldest first (an export reads like a log file), as CSV or
   * NDJSON. Rows come through a PostgreSQL cursor (pg-cursor, via MikroORM's connection stream)
   * EXPORT_FETCH_ROWS at a time, and the next batch is fetched only when the client has taken the
   * last one: memory stays flat however large the export. The first batch is read before this
   * returns, so a database failure is still an error answer rather than a cut-off download.
   */
  async export(actor: Actor, filters: AuditFilters, format: ExportFormat, onError: (error: Error) => void): Promise<Readable> {
    const where = whereClause(filterConditions(actor, filters));
    const rows = (await this.#reads.for(actor)).getConnection().stream<AuditRecord>(
      `select ${RECORD_COLUMNS} from audit_log a ${EMAIL_JOINS} ${where.sql} order by a.occurred_at, a.id`,
      where.params, undefined, undefined, EXPORT_FETCH_ROWS,
    );
    const first = await rows.next();
    async function* all() {
      if (first.done) return;
      yield first.value;
      yield* rows;
    }
    return pipeline(Readable.from(all()), format === 'csv' ? csvSerializer() : ndjsonSerializer(), (error) => {
      // Whatever ended the stream (done, client gone, failure), the cursor and its pooled
      // connection are released: return() runs the driver's cleanup if it has not run yet.
      rows.return?.(undefined)?.catch((cleanup: unknown) => onError(cleanup as Error));
      if (error) onError(error);
    });
  }

  /** Sign-ins, failures, active users, events per day and top actions of one organization. */
  async organizationStats(actor: Actor, organizationId: string, days: number) {
    assertVisible(actor, organizationId, 'organization');
    const exists = await queryOne(this.#orm.em, 'select 1 from organization where id = ?', [organizationId]);
    if (!exists) throw new AppError('resource.not_found', 'No such organization');
    const to = new Date();
    // Whole UTC days, today included, so actions_by_day adds up to `events`.
    const from = new Date(startOfUtcDay(to).getTime() - (days - 1) * DAY_MS);
    const window = [organizationId, from.toISOString()];
    const em = await this.#reads.for(actor);
    const [summary, byDay, topActions, users] = await Promise.all([
      queryOne<{ sign_ins: number; failed_sign_ins: number; active_users: number; events: number }>(em,
        `select count(*) filter (where action = 'auth.login' and status = 'success')::int as sign_ins,
                count(*) filter (where action = 'auth.login' and status = 'failure')::int as failed_sign_ins,
                count(distinct actor_id) filter (where status = 'success')::int as active_users,
                count(*)::int as events
           from audit_log where organization_id = ? and occurred_at >= ?::timestamptz`, window),
      queryRows<{ date: string; count: number }>(em,
        `select to_char(day, 'YYYY-MM-DD') as date, coalesce(counted.count, 0)::int as count
           from generate_series(?::timestamp, ?::timestamp, interval '1 day') as day
           left join (select date_trunc('day', occurred_at at time zone 'UTC') as day, count(*) as count
                        from audit_log where organization_id = ? and occurred_at >= ?::timestamptz
                       group by 1) counted using (day)
          order by day`,
        [from.toISOString().slice(0, 10), to.toISOString().slice(0, 10), ...window]),
      queryRows<{ action: string; count: number }>(em,
        `select action, count(*)::int as count from audit_log where organization_id = ? and occurred_at >= ?::timestamptz
          group by action order by count(*) desc, action limit ?`, [...window, TOP_ACTIONS]),
      queryOne<{ total: number; active: number }>(em,
        'select count(*)::int as total, (count(*) filter (where is_active))::int as active from app_user where organization_id = ?', [organizationId]),
    ]);
    return {
      organization_id: organizationId, days, from: from.toISOString(), to: to.toISOString(),
      ...summary!, actions_by_day: byDay, top_actions: topActions, users: users!,
    };
  }

  /** Platform-wide counts for the super admin. */
  async adminStats(actor: Actor) {
    if (!isSuperAdmin(actor)) throw new AppError('auth.forbidden', 'Only a super admin sees platform statistics');
    const em = await this.#reads.for(actor);
    const [counts, clients] = await Promise.all([
      queryOne<PlatformCounts>(em,
        `select o.total as organizations_total, o.active as organizations_active, u.total as users_total, u.active as users_active,
                s.day_success, s.day_failure, s.month_success, s.month_failure
           from (select count(*)::int as total, (count(*) filter (where is_active))::int as active from organization) o,
                (select count(*)::int as total, (count(*) filter (where is_active))::int as active from app_user) u,
                (select (count(*) filter (where status = 'success' and occurred_at >= now() - interval '24 hours'))::int as day_success,
                        (count(*) filter (where status = 'failure' and occurred_at >= now() - interval '24 hours'))::int as day_failure,
                        (count(*) filter (where status = 'success'))::int as month_success,
                        (count(*) filter (where status = 'failure'))::int as month_failure
                   from audit_log where action = 'auth.login' and occurred_at >= now() - interval '30 days') s`),
      queryRows<{ kind: 'application' | 'personal' | 'dynamic'; count: number }>(em, 'select kind, count(*)::int as count from oauth_client group by kind'),
    ]);
    const c = counts!;
    const byKind = { application: 0, personal: 0, dynamic: 0 };
    for (const row of clients) byKind[row.kind] = row.count;
    return {
      organizations: { total: c.organizations_total, active: c.organizations_active },
      users: { total: c.users_total, active: c.users_active },
      clients: { total: byKind.application + byKind.personal + byKind.dynamic, by_kind: byKind },
      sign_ins: {
        last_24_hours: { success: c.day_success, failure: c.day_failure },
        last_30_days: { success: c.month_success, failure: c.month_failure },
      },
    };
  }
}

/**
 * A spreadsheet runs a cell that starts with = + - @ (or a tab or carriage return) as a formula;
 * user agents and details are attacker-chosen, so such a cell gets a leading apostrophe
 * (OWASP "CSV Injection").
 */
function neutralizeFormula(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

function csvSerializer(): Transform {
  return stringify({
    header: true,
    columns: EXPORT_COLUMNS.map((key) => ({ key, header: key })),
    cast: {
      string: (value) => neutralizeFormula(value),
      object: (value) => neutralizeFormula(JSON.stringify(value)),
    },
  });
}

function ndjsonSerializer(): Transform {
  return new Transform({
    writableObjectMode: true,
    transform(record: AuditRecord, _encoding, done) {
      done(null, `${JSON.stringify(record)}\n`);
    },
  });
}
