import { z } from 'zod';

import { splitFullName } from '../../services/users.service.ts';

// Pieces of the user bodies shared by registration, the admin API and /me.

const NAME_LENGTH = 100;
const personName = z.string().trim().min(1, { error: 'must not be empty' }).max(NAME_LENGTH);

/** True when a whole name splits into a first and a last name that each fit. */
export function fitsAsName(value: string): boolean {
  const { firstName, lastName } = splitFullName(value);
  return firstName.length <= NAME_LENGTH && lastName.length <= NAME_LENGTH;
}

const fullName = z.string().trim().min(1, { error: 'must not be empty' }).max(2 * NAME_LENGTH + 1)
  .refine(fitsAsName, { error: `expected a first word and a rest of at most ${NAME_LENGTH} characters each` })
  .describe('the whole name; its first word becomes first_name, the rest last_name');

export const nameFields = {
  full_name: fullName.optional(),
  first_name: personName.optional(),
  last_name: personName.optional(),
};

/** A whole name, or its parts: not both, which could disagree. */
export function oneWayToName(body: { full_name?: string; first_name?: string; last_name?: string }, ctx: z.RefinementCtx): void {
  if (body.full_name !== undefined && (body.first_name !== undefined || body.last_name !== undefined)) {
    ctx.addIssue({ code: 'custom', path: ['full_name'], message: 'give full_name, or first_name and last_name, not both' });
  }
}

/** Registration and PUT /me name the person: full_name, or first_name and last_name. */
export const NAME_REQUIRED = {
  check: (body: { full_name?: string; first_name?: string; last_name?: string }) => body.full_name !== undefined || (body.first_name !== undefined && body.last_name !== undefined),
  error: { error: 'give full_name, or first_name and last_name', path: ['full_name'] },
};

/** With no name given, a create or a PUT names the user from contact_name, which must then fit as one. */
export function contactNameFitsAsName(body: { full_name?: string; first_name?: string; last_name?: string; contact_name?: string | null }, ctx: z.RefinementCtx): void {
  const named = body.full_name !== undefined || body.first_name !== undefined || body.last_name !== undefined;
  if (!named && body.contact_name && !fitsAsName(body.contact_name)) {
    ctx.addIssue({ code: 'custom', path: ['contact_name'], message: 'names the user here, so its first word and the rest must be at most 100 characters each' });
  }
}

const attribute = (max: number) => z.string().trim().max(max).nullable().optional();

/** Profile attributes (seed 002); null or an empty string clears one. */
export const profileAttributeFields = {
  organisation: attribute(200).describe('the company the user names (free text), not the organization the user belongs to'),
  contact_name: attribute(200),
  contact_phone: z.string().trim().regex(/^(|\+?[0-9][0-9 ()./-]{1,30})$/, { error: 'expected a phone number: digits, spaces and + ( ) . / -' }).nullable().optional(),
  contact_email: z.union([z.literal(''), z.email({ error: 'expected an email address' }).max(254)]).nullable().optional(),
  address: attribute(500),
  industry: attribute(100),
  use_case: attribute(2000),
};

const nullableText = z.string().nullable();

export const UserProfileResponse = z.object({
  id: z.uuid(),
  email: z.string(),
  username: z.string().nullable(),
  first_name: z.string(),
  last_name: z.string(),
  full_name: z.string(),
  is_active: z.boolean(),
  is_verified: z.boolean(),
  roles: z.array(z.string()),
  organization: z.object({ id: z.uuid(), slug: z.string(), name: z.string() }),
  organisation: nullableText.describe('the company the user names (free text), not the organization above'),
  contact_name: nullableText,
  contact_phone: nullableText,
  contact_email: nullableText,
  address: nullableText,
  industry: nullableText,
  use_case: nullableText,
  last_login_at: z.iso.datetime().nullable(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
}).meta({ id: 'UserProfile' });

/** Your own profile: names, contact details; never roles or status. */
const profileFields = {
  email: z.email({ error: 'expected an email address' }).max(254).optional(),
  username: z.string().regex(/^[\w.-]{3,64}$/, { error: 'expected 3 to 64 letters, digits, ".", "_" or "-"' }).nullable().optional(),
  ...nameFields,
  ...profileAttributeFields,
};

export const ProfilePatchBody = z.strictObject(profileFields)
  .superRefine(oneWayToName).refine((body) => Object.keys(body).length > 0, { error: 'give at least one field to change' }).meta({ id: 'ProfilePatch' });

/**
 * PUT /me: your profile as the body describes it. A name is required, as at registration, and
 * profile attributes left out are cleared; email and username, which you sign in with, are kept
 * when left out.
 */
export const ProfileReplaceBody = z.strictObject(profileFields)
  .superRefine(oneWayToName).refine(NAME_REQUIRED.check, NAME_REQUIRED.error).meta({ id: 'ProfileReplace' });

export const PersonalClientCreateBody = z.strictObject({
  client_name: z.string().trim().min(1).max(100),
  scope: z.string().trim().max(500).optional(),
}).meta({ id: 'PersonalClientCreate' });

export const PersonalClient = z.object({
  client_id: z.string(),
  client_name: z.string(),
  scope: z.string(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
}).meta({ id: 'PersonalClient' });

export const PersonalClientSecret = z.object({
  client_id: z.string(),
  client_secret: z.string(),
}).meta({ id: 'PersonalClientSecret' });

export const PersonalClientCreated = PersonalClient.extend({ client_secret: z.string() }).meta({ id: 'PersonalClientCreated' });

export const ClientIdParams = z.object({ client_id: z.string().min(1).max(128) });
