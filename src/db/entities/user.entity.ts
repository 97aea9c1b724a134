import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

import { Organization } from './organization.entity.ts';
import { Role } from './role.entity.ts';

export const User = defineEntity({
  name: 'User',
  tableName: 'app_user',
  uniques: [{ properties: ['organization', 'email'] }, { properties: ['organization', 'username'] }],
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    organization: () => p.manyToOne(Organization).deleteRule('cascade'),
    email: p.string().length(254),
    username: p.string().length(64).nullable(),
    firstName: p.string().length(100).default(''),
    lastName: p.string().length(100).default(''),
    passwordHash: p.string().length(255).hidden(),
    isActive: p.boolean().default(true),
    isVerified: p.boolean().default(false),
    lastLoginAt: p.datetime().nullable(),
    roles: () => p.manyToMany(Role).pivotTable('user_role').owner(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});
export type User = InferEntity<typeof User>;
