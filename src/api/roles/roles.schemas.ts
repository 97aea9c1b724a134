import { z } from 'zod';

const booleanQuery = z.enum(['true', 'false'], { error: 'expected true or false' }).transform((value) => value === 'true');

export const RoleIdParams = z.object({ id: z.uuid({ error: 'expected a UUID' }) });

export const RoleListQuery = z.object({
  search: z.string().max(64).optional(),
  is_active: booleanQuery.optional(),
  organization_id: z.uuid().optional(),
});

/** What people call the role ("Sales Manager"): unique in the organization whatever its case. */
const roleName = z.string().trim().min(1, { error: 'must not be empty' }).max(64)
  .regex(/^[^\p{Cc}\p{Cf}]*$/u, { error: 'must not contain control characters' });
/** What tokens and permission checks call it; made from the name when not given, and never changed. */
const roleKey = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, { error: 'expected a lowercase letter, then lowercase letters, digits or "_" (up to 64)' });

export const RoleCreateBody = z.strictObject({
  name: roleName,
  key: roleKey.optional(),
  description: z.string().max(500).nullable().optional(),
  is_active: z.boolean().optional(),
  organization_id: z.uuid().optional(),
  permission_ids: z.array(z.uuid()).max(200).optional(),
}).meta({ id: 'RoleCreate' });

export const RolePatchBody = z.strictObject({
  name: roleName.optional(),
  description: z.string().max(500).nullable().optional(),
  is_active: z.boolean().optional(),
}).refine((body) => Object.keys(body).length > 0, { error: 'give at least one field to change' }).meta({ id: 'RolePatch' });

/** PUT replaces the role: name as on create; a description left out is cleared, is_active left out kept. The key never changes. */
export const RoleReplaceBody = z.strictObject({
  name: roleName,
  description: z.string().max(500).nullable().optional(),
  is_active: z.boolean().optional(),
}).meta({ id: 'RoleReplace' });

export const PermissionIdsBody = z.strictObject({
  permission_ids: z.array(z.uuid({ error: 'expected a UUID' })).min(1).max(200),
}).meta({ id: 'PermissionIds' });

export const RoleResponse = z.object({
  id: z.uuid(), key: z.string().describe('the role as tokens (`roles` claim) and user views name it; fixed at creation'), name: z.string(), description: z.string().nullable(), organization_id: z.uuid().nullable(),
  is_builtin: z.boolean(), is_active: z.boolean(), permissions: z.array(z.string()), created_at: z.iso.datetime(),
}).meta({ id: 'Role' });
