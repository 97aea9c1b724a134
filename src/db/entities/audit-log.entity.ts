import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

export const AuditLog = defineEntity({
  name: 'AuditLog',
  tableName: 'audit_log',
  // (organization_id, occurred_at, id) and (occurred_at, id) serve keyset paging newest first.
  indexes: [
    { properties: ['organizationId', 'occurredAt', 'id'] },
    { properties: ['occurredAt', 'id'] },
    { properties: ['actorId', 'occurredAt'] },
    { properties: ['targetId', 'occurredAt'] },
  ],
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    occurredAt: p.datetime().onCreate(() => new Date()),
    organizationId: p.uuid().nullable(),
    actorId: p.uuid().nullable(),
    actorClientId: p.string().length(128).nullable(),
    targetId: p.string().length(128).nullable(),
    action: p.string().length(64),
    resource: p.string().length(64),
    resourceId: p.string().length(128).nullable(),
    status: p.enum(['success', 'failure'] as const),
    ip: p.string().length(64).nullable(),
    userAgent: p.string().length(512).nullable(),
    details: p.json<Record<string, unknown>>().nullable(),
  },
});
export type AuditLog = InferEntity<typeof AuditLog>;
