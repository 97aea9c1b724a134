import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

import { Organization } from './organization.entity.ts';
import { User } from './user.entity.ts';

/** A site of an organization (seed 004 "Location Management"); its code is unique within the organization. */
export const Location = defineEntity({
  name: 'Location',
  tableName: 'location',
  uniques: [{ properties: ['organization', 'code'] }],
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    organization: () => p.manyToOne(Organization).deleteRule('cascade'),
    name: p.string().length(200),
    code: p.string().length(32),
    description: p.text().nullable(),
    address: p.string().length(500).nullable(),
    city: p.string().length(100).nullable(),
    state: p.string().length(100).nullable(),
    country: p.string().length(100).nullable(),
    postalCode: p.string().length(20).nullable(),
    isActive: p.boolean().default(true),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});
export type Location = InferEntity<typeof Location>;

/**
 * A user's assignment to a location. Both rows belong to the same organization (the service
 * checks it); at most one assignment per user is primary, which the partial unique index holds
 * even against concurrent writers.
 */
export const UserLocation = defineEntity({
  name: 'UserLocation',
  tableName: 'user_location',
  indexes: [{ properties: ['location'] }],
  uniques: [{ name: 'user_location_one_primary_per_user', properties: ['user'], where: 'is_primary' }],
  properties: {
    user: () => p.manyToOne(User).primary().deleteRule('cascade'),
    location: () => p.manyToOne(Location).primary().deleteRule('cascade'),
    isPrimary: p.boolean().default(false),
    assignedAt: p.datetime().onCreate(() => new Date()),
  },
});
export type UserLocation = InferEntity<typeof UserLocation>;
