import { z } from 'zod';

import { PageQuery } from '../../http/pagination.ts';

const booleanQuery = z.enum(['true', 'false'], { error: 'expected true or false' }).transform((value) => value === 'true');
const name = z.string().trim().min(1, { error: 'must not be empty' }).max(200);
const description = z.string().trim().max(2000).nullable();
// At least one user (the organization's first admin); null means no limit.
const maxUsers = z.int({ error: 'expected a whole number' }).min(1).max(1_000_000).nullable();

const mfaRequired = z.boolean().describe('every member must have a second factor: one without enrols right after the password');

export const OrganizationIdParams = z.object({ id: z.uuid({ error: 'expected a UUID' }) });

export const OrganizationListQuery = z.object({
  ...PageQuery.shape,
  search: z.string().trim().max(100).optional(),
  is_active: booleanQuery.optional(),
});

export const OrganizationCreateBody = z.strictObject({
  slug: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { error: 'expected 1 to 63 lowercase letters, digits or "-", not starting with "-"' }),
  name,
  description: description.optional(),
  max_users: maxUsers.optional(),
  mfa_required: mfaRequired.optional(),
}).meta({ id: 'OrganizationCreate' });

// The slug is the organization's name at sign-in and in URLs, so it does not change.
export const OrganizationPatchBody = z.strictObject({
  name: name.optional(),
  description: description.optional(),
  max_users: maxUsers.optional(),
  is_active: z.boolean().optional(),
  mfa_required: mfaRequired.optional(),
}).refine((body) => Object.keys(body).length > 0, { error: 'give at least one field to change' }).meta({ id: 'OrganizationPatch' });

/**
 * PUT replaces the organization: name as on create; description and max_users left out are
 * cleared, is_active and mfa_required left out are kept. The slug never changes, so it is not part of it.
 */
export const OrganizationReplaceBody = z.strictObject({
  name,
  description: description.optional(),
  max_users: maxUsers.optional(),
  is_active: z.boolean().optional(),
  mfa_required: mfaRequired.optional(),
}).meta({ id: 'OrganizationReplace' });

export const OrganizationResponse = z.object({
  id: z.uuid(),
  slug: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  max_users: z.number().int().nullable(),
  is_active: z.boolean(),
  mfa_required: mfaRequired,
  user_count: z.number().int(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
}).meta({ id: 'Organization' });
