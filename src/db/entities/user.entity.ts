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
    // Profile attributes (seed 002). `organisation` is the company the user names, free text; the
    // organization the user belongs to is `organization`.
    organisation: p.string().length(200).nullable(),
    contactName: p.string().length(200).nullable(),
    contactPhone: p.string().length(32).nullable(),
    contactEmail: p.string().length(254).nullable(),
    address: p.string().length(500).nullable(),
    industry: p.string().length(100).nullable(),
    useCase: p.text().nullable(),
    roles: () => p.manyToMany(Role).pivotTable('user_role').owner(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});
export type User = InferEntity<typeof User>;
