import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

import { Organization } from './organization.entity.ts';
import { Permission } from './permission.entity.ts';

export const Role = defineEntity({
  name: 'Role',
  tableName: 'role',
  uniques: [{ properties: ['organization', 'name'] }],
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    // Null for the global super_admin role.
    organization: () => p.manyToOne(Organization).nullable().deleteRule('cascade'),
    name: p.string().length(64),
    description: p.text().nullable(),
    isBuiltin: p.boolean().default(false),
    isActive: p.boolean().default(true),
    permissions: () => p.manyToMany(Permission).pivotTable('role_permission').owner(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type Role = InferEntity<typeof Role>;

export const BUILTIN_ROLES = ['super_admin', 'admin', 'backoffice', 'agent', 'premium_user', 'basic_user', 'guest'] as const;
export type BuiltinRoleName = (typeof BUILTIN_ROLES)[number];
