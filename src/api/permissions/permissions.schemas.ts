import { z } from 'zod';

export const PermissionIdParams = z.object({ id: z.uuid({ error: 'expected a UUID' }) });

// A permission is `resource:action`; clients may send the name, its two halves (seed 004 sends all
// three), or both as long as they agree.
const SEGMENT = '[a-z][a-z0-9_]{0,30}';
const segment = (what: string) => z.string().regex(new RegExp(`^${SEGMENT}$`), { error: `expected the ${what}: a lowercase letter, then lowercase letters, digits or "_" (up to 31)` });
const permissionName = z.string().regex(new RegExp(`^${SEGMENT}:${SEGMENT}$`), { error: 'expected resource:action in lowercase (letters, digits and "_", each starting with a letter)' });
const description = z.string().max(500).nullable();

export const PermissionListQuery = z.object({
  search: z.string().max(64).optional(),
  resource: z.string().max(32).optional(),
  action: z.string().max(32).optional(),
});

const fields = {
  name: permissionName.optional(),
  resource: segment('resource').optional(),
  action: segment('action').optional(),
  description: description.optional(),
};

/** The halves given must be the halves of the name given. */
function agreeWithName(body: { name?: string; resource?: string; action?: string }, ctx: z.RefinementCtx): void {
  if (body.name === undefined) return;
  const [resource, action] = body.name.split(':') as [string, string];
  if (body.resource !== undefined && body.resource !== resource) ctx.addIssue({ code: 'custom', path: ['resource'], message: `must be "${resource}", the resource of name` });
  if (body.action !== undefined && body.action !== action) ctx.addIssue({ code: 'custom', path: ['action'], message: `must be "${action}", the action of name` });
}

function nameOrHalves(body: { name?: string; resource?: string; action?: string }, ctx: z.RefinementCtx): void {
  if (body.name !== undefined) return;
  if (body.resource === undefined) ctx.addIssue({ code: 'custom', path: ['resource'], message: 'give name, or resource and action' });
  if (body.action === undefined) ctx.addIssue({ code: 'custom', path: ['action'], message: 'give name, or resource and action' });
}

function namedPermission() {
  return z.strictObject(fields).superRefine((body, ctx) => {
    agreeWithName(body, ctx);
    nameOrHalves(body, ctx);
  });
}

export const PermissionCreateBody = namedPermission().meta({ id: 'PermissionCreate' });

/** PUT replaces the permission: named as on create; a description left out is cleared. */
export const PermissionReplaceBody = namedPermission().meta({ id: 'PermissionReplace' });

export const PermissionPatchBody = z.strictObject(fields).superRefine(agreeWithName)
  .refine((body) => Object.keys(body).length > 0, { error: 'give at least one field to change' }).meta({ id: 'PermissionPatch' });

export const PermissionResponse = z.object({
  id: z.uuid(), name: z.string(), resource: z.string(), action: z.string(), description: z.string().nullable(), is_builtin: z.boolean(),
}).meta({ id: 'Permission' });

export const GroupedPermissionsResponse = z.record(z.string(), z.array(PermissionResponse)).meta({ id: 'GroupedPermissions' });
