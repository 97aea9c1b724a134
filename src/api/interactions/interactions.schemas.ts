import { z } from 'zod';

import { PageQuery } from '../../http/pagination.ts';
import { INTERACTION_TYPES } from '../../services/crm-interactions.service.ts';

const uuid = z.uuid({ error: 'expected a UUID' });
const interactionType = z.enum(INTERACTION_TYPES, { error: 'expected CALL, EMAIL, MEETING or NOTE' });

export const InteractionIdParams = z.object({ id: uuid });

export const InteractionListQuery = z.object({
  ...PageQuery.shape,
  customer: uuid.optional(),
  interaction_type: interactionType.optional(),
});

const fields = {
  customer: uuid,
  interaction_type: interactionType,
  subject: z.string().trim().min(1, { error: 'must not be empty' }).max(200),
  description: z.string().trim().max(5000).optional(),
};

export const InteractionCreateBody = z.strictObject(fields).meta({ id: 'InteractionCreate' });

/** PUT replaces every field; a description left out becomes empty. */
export const InteractionReplaceBody = z.strictObject(fields).meta({ id: 'InteractionReplace' });

export const InteractionPatchBody = z.strictObject({
  customer: fields.customer.optional(),
  interaction_type: fields.interaction_type.optional(),
  subject: fields.subject.optional(),
  description: fields.description,
}).refine((body) => Object.keys(body).length > 0, { error: 'give at least one field to change' }).meta({ id: 'InteractionPatch' });

export const InteractionResponse = z.object({
  id: z.uuid(),
  organization_id: z.uuid(),
  customer: z.uuid(),
  customer_name: z.string(),
  interaction_type: z.enum(INTERACTION_TYPES),
  subject: z.string(),
  description: z.string(),
  created_by: z.uuid().nullable(),
  created_by_name: z.string().nullable(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
}).meta({ id: 'Interaction' });
