import type { EntityManager } from '@mikro-orm/postgresql';

import { AuditLog } from '../db/entities/audit-log.entity.ts';

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
