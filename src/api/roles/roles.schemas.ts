import { z } from 'zod';

const booleanQuery = z.enum(['true', 'false'], { error: 'expected true or false' }).transform((value) => value === 'true');

export const RoleIdParams = z.object({ id: z.uuid({ error: 'expected a UUID' }) });

export const RoleListQuery = z.object({
  search: z.string().max(64).optional(),
  is_active: booleanQuery.optional(),
  organization_id: z.uuid().optional(),
});

const roleName = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, { error: 'expected lowercase letters, digits and "_" (up to 64)' });

export const RoleCreateBody = z.strictObject({
  name: roleName,
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

export const PermissionIdsBody = z.strictObject({
  permission_ids: z.array(z.uuid({ error: 'expected a UUID' })).min(1).max(200),
}).meta({ id: 'PermissionIds' });

export const RoleResponse = z.object({
  id: z.uuid(), name: z.string(), description: z.string().nullable(), organization_id: z.uuid().nullable(),
  is_builtin: z.boolean(), is_active: z.boolean(), permissions: z.array(z.string()), created_at: z.iso.datetime(),
}).meta({ id: 'Role' });
