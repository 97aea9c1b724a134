import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

export const Organization = defineEntity({
  name: 'Organization',
  tableName: 'organization',
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    slug: p.string().length(64).unique(),
    name: p.string().length(200),
    description: p.text().nullable(),
    maxUsers: p.integer().nullable(),
    isActive: p.boolean().default(true),
    /** Every member must have a second factor (API.md "Multi-factor authentication"). */
    mfaRequired: p.boolean().default(false),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});
export type Organization = InferEntity<typeof Organization>;

/** Self-registration and the bootstrap super admin land here. */
export const DEFAULT_ORGANIZATION_SLUG = 'default';
