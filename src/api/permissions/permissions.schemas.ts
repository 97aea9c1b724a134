import { z } from 'zod';

export const PermissionIdParams = z.object({ id: z.uuid({ error: 'expected a UUID' }) });

const permissionName = z.string().regex(/^[a-z][a-z_]{0,30}:[a-z][a-z_]{0,30}$/, { error: 'expected resource:action in lowercase' });

export const PermissionListQuery = z.object({
  search: z.string().max(64).optional(),
  resource: z.string().max(32).optional(),
  action: z.string().max(32).optional(),
});

export const PermissionCreateBody = z.strictObject({
  name: permissionName,
  description: z.string().max(500).nullable().optional(),
}).meta({ id: 'PermissionCreate' });

export const PermissionPatchBody = z.strictObject({
  name: permissionName.optional(),
  description: z.string().max(500).nullable().optional(),
}).refine((body) => Object.keys(body).length > 0, { error: 'give at least one field to change' }).meta({ id: 'PermissionPatch' });

export const PermissionResponse = z.object({
  id: z.uuid(), name: z.string(), resource: z.string(), action: z.string(), description: z.string().nullable(), is_builtin: z.boolean(),
}).meta({ id: 'Permission' });

export const GroupedPermissionsResponse = z.record(z.string(), z.array(PermissionResponse)).meta({ id: 'GroupedPermissions' });
