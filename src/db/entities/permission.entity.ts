import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

/** A global `resource:action` permission (API.md "RBAC"); super admins write them, everyone reads. */
export const Permission = defineEntity({
  name: 'Permission',
  tableName: 'permission',
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    name: p.string().length(64).unique(),
    resource: p.string().length(32),
    action: p.string().length(32),
    description: p.text().nullable(),
    isBuiltin: p.boolean().default(false),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type Permission = InferEntity<typeof Permission>;
