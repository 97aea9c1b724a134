import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

import { Organization } from './organization.entity.ts';
import { Permission } from './permission.entity.ts';

export const Role = defineEntity({
  name: 'Role',
  tableName: 'role',
  // The key is what tokens and permission checks name; the name is what people read and write,
  // unique whatever its case.
  uniques: [
    { properties: ['organization', 'key'] },
    {
      name: 'role_organization_id_lower_name_unique',
      expression: 'create unique index "role_organization_id_lower_name_unique" on "role" ("organization_id", lower("name"))',
    },
  ],
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    // Null for the global super_admin role.
    organization: () => p.manyToOne(Organization).nullable().deleteRule('cascade'),
    // Stable once made: lowercase letters, digits and "_"; built-in roles' keys are their names.
    key: p.string().length(64),
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
