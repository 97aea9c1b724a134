import { z } from 'zod';

import { PageQuery } from '../../http/pagination.ts';
import { CUSTOMER_STAGES } from '../../services/customers.service.ts';
import { InteractionResponse } from '../interactions/interactions.schemas.ts';

const uuid = z.uuid({ error: 'expected a UUID' });
const stage = z.enum(CUSTOMER_STAGES, { error: 'expected LEAD, IN_PROGRESS or ACTIVE' });
const name = z.string().trim().min(1, { error: 'must not be empty' }).max(100);
/** Optional text: null clears it (the service stores an empty string as null too). */
const text = (max: number) => z.string().trim().max(max).nullable();

export const CustomerIdParams = z.object({ id: uuid });

export const CustomerListQuery = z.object({
  ...PageQuery.shape,
  stage: stage.optional(),
  assigned_to: uuid.optional(),
  search: z.string().trim().max(100).optional(),
});

// Field limits of seed 003; address and notes are free text with a bound.
const fields = {
  first_name: name,
  last_name: name,
  email: z.email({ error: 'expected an email address' }).max(254),
  phone: text(20).optional(),
  company: text(200).optional(),
  address: text(2000).optional(),
  notes: text(2000).optional(),
  stage: stage.optional(),
  assigned_to: uuid.nullable().optional(),
};

export const CustomerCreateBody = z.strictObject(fields).meta({ id: 'CustomerCreate' });

/** PUT replaces every field: optional ones left out are cleared, except stage, which is kept. */
export const CustomerReplaceBody = z.strictObject(fields).meta({ id: 'CustomerReplace' });

export const CustomerPatchBody = z.strictObject({
  ...fields,
  first_name: name.optional(),
  last_name: name.optional(),
  email: fields.email.optional(),
}).refine((body) => Object.keys(body).length > 0, { error: 'give at least one field to change' }).meta({ id: 'CustomerPatch' });

export const CustomerStageBody = z.strictObject({ stage }).meta({ id: 'CustomerStageChange' });

export const CustomerResponse = z.object({
  id: z.uuid(),
  organization_id: z.uuid(),
  first_name: z.string(),
  last_name: z.string(),
  email: z.string(),
  phone: z.string().nullable(),
  company: z.string().nullable(),
  address: z.string().nullable(),
  notes: z.string().nullable(),
  stage: z.enum(CUSTOMER_STAGES),
  created_by: z.uuid().nullable(),
  created_by_name: z.string().nullable(),
  assigned_to: z.uuid().nullable(),
  assigned_to_name: z.string().nullable(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
}).meta({ id: 'Customer' });

export const CustomerDetailResponse = CustomerResponse.extend({
  // Newest first, at most 100; interaction_count is the full number (GET /interactions?customer= pages them all).
  interactions: z.array(InteractionResponse),
  interaction_count: z.number().int(),
}).meta({ id: 'CustomerDetail' });
