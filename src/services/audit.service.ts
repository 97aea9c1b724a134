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
