import { z } from 'zod';

import { contactNameFitsAsName, nameFields, oneWayToName, profileAttributeFields, UserProfileResponse } from '../me/me.schemas.ts';

const username = z.string().regex(/^[\w.-]{3,64}$/, { error: 'expected 3 to 64 letters, digits, ".", "_" or "-"' });
/** A role as people write it: its key, or its name in any case ("Guest" is the built-in guest). */
const roleName = z.string().trim().min(1).max(64).describe('the role\'s key or its name, whatever the case');
const booleanQuery = z.enum(['true', 'false'], { error: 'expected true or false' }).transform((value) => value === 'true');

export const UserIdParams = z.object({ id: z.uuid({ error: 'expected a UUID' }) });

export const UserListQuery = z.object({
  search: z.string().max(100).optional(),
  role: roleName.optional(),
  is_active: booleanQuery.optional(),
  organization_id: z.uuid().optional(),
  location_id: z.uuid({ error: 'expected a UUID' }).optional(),
});

/**
 * A name is optional: full_name, or first_name and last_name, or else the contact_name of the
 * profile (seed 002 names the person only there).
 */
export const UserCreateBody = z.strictObject({
  email: z.email({ error: 'expected an email address' }).max(254),
  username: username.optional(),
  ...nameFields,
  password: z.string().min(1).max(128).optional(),
  role: roleName.optional(),
  organization_id: z.uuid().optional(),
  create_client: z.boolean().optional(),
  is_verified: z.boolean().optional()
    .describe('true: the admin vouches for the address and no mail is sent; otherwise the user starts unverified and is mailed a verification link'),
  ...profileAttributeFields,
}).superRefine(oneWayToName).superRefine(contactNameFitsAsName).meta({ id: 'UserCreate' });

export const UserCreatedResponse = z.object({
  user: UserProfileResponse,
  temporary_password: z.string().optional(),
  client: z.object({ client_id: z.string(), client_secret: z.string() }).optional(),
}).meta({ id: 'UserCreated' });

const changeableFields = {
  email: z.email({ error: 'expected an email address' }).max(254).optional(),
  username: username.nullable().optional(),
  ...nameFields,
  is_active: z.boolean().optional().describe('as POST /enable or /disable: nobody disables themselves'),
  is_verified: z.boolean().optional(),
  ...profileAttributeFields,
};

export const UserPatchBody = z.strictObject(changeableFields)
  .superRefine(oneWayToName).refine((body) => Object.keys(body).length > 0, { error: 'give at least one field to change' }).meta({ id: 'UserPatch' });

/**
 * PUT replaces the user: the name as on create (the contact name when no name is given), profile
 * attributes left out are cleared. Email, username, is_active and is_verified left out are kept.
 */
export const UserReplaceBody = z.strictObject(changeableFields)
  .superRefine(oneWayToName).superRefine(contactNameFitsAsName).meta({ id: 'UserReplace' });

export const PromoteBody = z.strictObject({ role: roleName }).meta({ id: 'PromoteRequest' });

export const ResetPasswordBody = z.strictObject({
  new_password: z.string().min(1).max(128).optional(),
}).meta({ id: 'ResetPasswordRequest' });

export const ResetPasswordResponse = z.object({ temporary_password: z.string().optional() }).meta({ id: 'ResetPasswordResult' });

export const RoleIdsBody = z.strictObject({
  role_ids: z.array(z.uuid({ error: 'expected a UUID' })).min(1).max(50),
}).meta({ id: 'RoleIds' });

export const UserClient = z.object({
  client_id: z.string(), client_name: z.string(), kind: z.string(), created_at: z.iso.datetime(), updated_at: z.iso.datetime(),
}).meta({ id: 'UserClient' });
