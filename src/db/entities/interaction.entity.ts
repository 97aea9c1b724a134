import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

import { Customer } from './customer.entity.ts';
import { Organization } from './organization.entity.ts';
import { User } from './user.entity.ts';

export const INTERACTION_TYPES = ['CALL', 'EMAIL', 'MEETING', 'NOTE'] as const;
export type InteractionType = (typeof INTERACTION_TYPES)[number];

/**
 * A call, email, meeting or note about a customer (seed 003 "ClientInteraction"). Named apart
 * from node-oidc-provider's login "interactions". `organization` repeats the customer's, so that
 * organization-wide counts and lists need no join; the service keeps the two equal.
 */
export const CustomerInteraction = defineEntity({
  name: 'CustomerInteraction',
  tableName: 'customer_interaction',
  // A customer's history newest first; organization-wide lists and 30-day counts; and the
  // foreign key to the author, which deleting a user walks.
  indexes: [
    { properties: ['customer', 'createdAt'] },
    { properties: ['organization', 'createdAt'] },
    { properties: ['createdBy'] },
  ],
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    organization: () => p.manyToOne(Organization).deleteRule('cascade'),
    customer: () => p.manyToOne(Customer).deleteRule('cascade'),
    interactionType: p.enum(INTERACTION_TYPES),
    subject: p.string().length(200),
    description: p.string().length(5000).default(''),
    createdBy: () => p.manyToOne(User).fieldName('created_by').nullable().deleteRule('set null'),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});
export type CustomerInteraction = InferEntity<typeof CustomerInteraction>;
