import { z } from 'zod';

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
  last_login_at: z.iso.datetime().nullable(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
}).meta({ id: 'UserProfile' });

export const ProfilePatchBody = z.strictObject({
  email: z.email({ error: 'expected an email address' }).max(254).optional(),
  username: z.string().regex(/^[\w.-]{3,64}$/, { error: 'expected 3 to 64 letters, digits, ".", "_" or "-"' }).nullable().optional(),
  first_name: z.string().trim().min(1).max(100).optional(),
  last_name: z.string().trim().min(1).max(100).optional(),
}).refine((body) => Object.keys(body).length > 0, { error: 'give at least one field to change' }).meta({ id: 'ProfilePatch' });

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
