import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

import { Organization } from './organization.entity.ts';
import { User } from './user.entity.ts';

export const CUSTOMER_STAGES = ['LEAD', 'IN_PROGRESS', 'ACTIVE'] as const;
export type CustomerStage = (typeof CUSTOMER_STAGES)[number];

/**
 * A customer of an organization's CRM (seed 003 "Client"). The email keeps the case it was given
 * and is unique per organization regardless of case, hence the expression index. `created_by` and
 * `assigned_to` decide who of the restricted roles sees the row; a deleted user leaves the
 * customer in place, unowned.
 */
export const Customer = defineEntity({
  name: 'Customer',
  tableName: 'customer',
  // Lists page newest first inside an organization; statistics count per stage and per assignee;
  // restricted callers match created_by OR assigned_to (a BitmapOr of the last two).
  indexes: [
    { properties: ['organization', 'createdAt'] },
    { properties: ['organization', 'stage'] },
    { properties: ['organization', 'assignedTo'] },
    { properties: ['organization', 'createdBy'] },
  ],
  uniques: [{
    name: 'customer_organization_id_lower_email_unique',
    expression: 'create unique index "customer_organization_id_lower_email_unique" on "customer" ("organization_id", lower("email"))',
  }],
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    organization: () => p.manyToOne(Organization).deleteRule('cascade'),
    firstName: p.string().length(100),
    lastName: p.string().length(100),
    email: p.string().length(254),
    phone: p.string().length(20).nullable(),
    company: p.string().length(200).nullable(),
    address: p.string().length(2000).nullable(),
    notes: p.string().length(2000).nullable(),
    stage: p.enum(CUSTOMER_STAGES).default('LEAD'),
    createdBy: () => p.manyToOne(User).fieldName('created_by').nullable().deleteRule('set null'),
    assignedTo: () => p.manyToOne(User).fieldName('assigned_to').nullable().deleteRule('set null'),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});
export type Customer = InferEntity<typeof Customer>;
