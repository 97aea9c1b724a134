import type { EntityManager } from '@mikro-orm/postgresql';

import { AuditLog } from '../db/entities/audit-log.entity.ts';
import type { Actor } from './tenancy.ts';

export interface AuditEntry {
  action: string;
  resource: string;
  resourceId?: string | null;
  status?: 'success' | 'failure';
  organizationId?: string | null;
  actorId?: string | null;
  actorClientId?: string | null;
  targetId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  details?: Record<string, unknown> | null;
}

/** What an audit row records of who acted: a sign-in attempt has a client but maybe no user yet. */
export type AuditActor = Partial<Pick<Actor, 'userId' | 'clientId' | 'ip' | 'userAgent'>>;

/** What happened, apart from who did it. */
export type AuditFacts = Omit<AuditEntry, 'actorId' | 'actorClientId' | 'ip' | 'userAgent'>;

/**
 * The one way to build an audit row: the actor's user, client, IP and user agent, then the facts.
 * `null` for work no request asked for (the bootstrap command). The organization stays explicit:
 * a global change (a permission) belongs to none, whoever made it.
 */
export function auditEntry(actor: AuditActor | null, facts: AuditFacts): AuditEntry {
  return {
    ...facts,
    actorId: actor?.userId ?? null,
    actorClientId: actor?.clientId ?? null,
    ip: actor?.ip ?? null,
    userAgent: actor?.userAgent || null,
  };
}

/**
 * Records an audit row inside the caller's unit of work, so it commits or rolls back together
 * with the change it records. Never put a secret in `details`.
 */
export function recordAudit(em: EntityManager, entry: AuditEntry): void {
  em.create(AuditLog, {
    action: entry.action,
    resource: entry.resource,
    resourceId: entry.resourceId ?? null,
    status: entry.status ?? 'success',
    organizationId: entry.organizationId ?? null,
    actorId: entry.actorId ?? null,
    actorClientId: entry.actorClientId ?? null,
    targetId: entry.targetId ?? null,
    ip: entry.ip ?? null,
    userAgent: entry.userAgent?.slice(0, 512) ?? null,
    details: entry.details ?? null,
  });
}

/** audit_log's columns in the order auditRow() gives their values. */
const AUDIT_COLUMNS = 'id, occurred_at, action, resource, resource_id, status, organization_id, actor_id, actor_client_id, target_id, ip, user_agent, details';

/**
 * An audit row as SQL, for the hot paths that make a change and record it in one statement (one
 * round trip, and the statement is its own transaction): `insert into audit_log (columns) select
 * values from <the change's CTE>` writes the row only when the change returned one. Same fields
 * and limits as recordAudit.
 */
export function auditRow(entry: AuditEntry): { columns: string; values: string; params: unknown[] } {
  return {
    columns: AUDIT_COLUMNS,
    // occurred_at is the database's clock, as the statement's own change is.
    values: '?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb',
    params: [
      crypto.randomUUID(), entry.action, entry.resource, entry.resourceId ?? null, entry.status ?? 'success',
      entry.organizationId ?? null, entry.actorId ?? null, entry.actorClientId ?? null, entry.targetId ?? null, entry.ip ?? null,
      entry.userAgent?.slice(0, 512) ?? null, entry.details ? JSON.stringify(entry.details) : null,
    ],
  };
}
