import { z } from 'zod';

import { UserProfileResponse } from '../me/me.schemas.ts';

import { PageQuery } from '../../http/pagination.ts';

const booleanQuery = z.enum(['true', 'false'], { error: 'expected true or false' }).transform((value) => value === 'true');
const uuid = z.uuid({ error: 'expected a UUID' });
const text = (max: number) => z.string().trim().max(max).nullable();

export const LocationIdParams = z.object({ id: uuid });
export const UserIdParams = z.object({ id: uuid });
export const UserLocationParams = z.object({ uid: uuid, lid: uuid });

export const LocationListQuery = z.object({
  ...PageQuery.shape,
  search: z.string().trim().max(100).optional(),
  is_active: booleanQuery.optional(),
  organization_id: uuid.optional(),
});

export const AssignmentPageQuery = PageQuery;

const fields = {
  name: z.string().trim().min(1, { error: 'must not be empty' }).max(200),
  code: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/, { error: 'expected 1 to 32 letters, digits, "-", "_" or ".", starting with a letter or digit' }),
  description: text(2000).optional(),
  address: text(500).optional(),
  city: text(100).optional(),
  state: text(100).optional(),
  country: text(100).optional(),
  postal_code: text(20).optional(),
  is_active: z.boolean().optional(),
};

export const LocationCreateBody = z.strictObject({
  ...fields,
  // Super admins only: anyone else creates in their own organization.
  organization_id: uuid.optional(),
}).meta({ id: 'LocationCreate' });

export const LocationPatchBody = z.strictObject({
  ...fields,
  name: fields.name.optional(),
  code: fields.code.optional(),
}).refine((body) => Object.keys(body).length > 0, { error: 'give at least one field to change' }).meta({ id: 'LocationPatch' });

/**
 * PUT replaces the location: name as on create; optional texts left out are cleared. The code
 * (its identifier, absent from seed 004's PUT) and is_active are kept when left out.
 */
export const LocationReplaceBody = z.strictObject({
  ...fields,
  code: fields.code.optional(),
}).meta({ id: 'LocationReplace' });

export const AssignmentBody = z.strictObject({
  user_id: uuid,
  // An empty list takes every location away from the user.
  location_ids: z.array(uuid).max(100),
  primary_location_id: uuid.nullable().optional(),
}).superRefine((body, ctx) => {
  if (new Set(body.location_ids).size !== body.location_ids.length) {
    ctx.addIssue({ code: 'custom', path: ['location_ids'], message: 'must not repeat a location' });
  }
  if (body.primary_location_id && !body.location_ids.includes(body.primary_location_id)) {
    ctx.addIssue({ code: 'custom', path: ['primary_location_id'], message: 'must be one of location_ids' });
  }
}).meta({ id: 'LocationAssignment' });

export const LocationResponse = z.object({
  id: z.uuid(),
  organization_id: z.uuid(),
  name: z.string(),
  code: z.string(),
  description: z.string().nullable(),
  address: z.string().nullable(),
  city: z.string().nullable(),
  state: z.string().nullable(),
  country: z.string().nullable(),
  postal_code: z.string().nullable(),
  is_active: z.boolean(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
}).meta({ id: 'Location' });

export const AssignedLocationResponse = LocationResponse.extend({
  is_primary: z.boolean(),
  assigned_at: z.iso.datetime(),
}).meta({ id: 'AssignedLocation' });

export const AssignmentResponse = z.object({
  user_id: z.uuid(),
  primary_location_id: z.uuid().nullable(),
  locations: z.array(AssignedLocationResponse),
}).meta({ id: 'LocationAssignmentResult' });

export const LocationUserResponse = UserProfileResponse.pick({
  id: true, email: true, username: true, first_name: true, last_name: true, full_name: true, is_active: true,
}).extend({
  is_primary: z.boolean(),
  assigned_at: z.iso.datetime(),
}).meta({ id: 'LocationUser' });
