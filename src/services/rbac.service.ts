// Role-based access (API.md "Organizations, users, RBAC"): permissions are global `resource:action`
// names; roles are per organization (super_admin is global) and hold permissions. The resolver
// answers "may this caller do X" from the roles in the token, cached per process and dropped on
// every process when any role or permission changes.
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';

import { Permission } from '../db/entities/permission.entity.ts';
import type { BuiltinRoleName } from '../db/entities/role.entity.ts';
import { boundedLruCache } from '../platform/lru-cache.ts';
import { queryRows } from '../platform/database.ts';
import type { KeyValueStore } from '../platform/store.ts';
import { API_SCOPES, apiScopesForPermissions } from './scopes.ts';

export const SUPER_ADMIN = 'super_admin';

export const BUILTIN_PERMISSIONS = {
  'organizations:read': 'Read organizations',
  'organizations:write': 'Create, change and delete organizations',
  'users:read': 'Read users of the organization',
  'users:write': 'Create, change, enable, disable and delete users',
  'roles:read': 'Read roles',
  'roles:write': 'Create, change and delete custom roles; assign roles',
  'permissions:read': 'Read permissions',
  'permissions:write': 'Create, change and delete permissions',
  'locations:read': 'Read locations',
  'locations:write': 'Create, change and delete locations; assign users',
  'clients:read': 'Read OAuth clients of the organization',
  'clients:write': 'Register, change and delete OAuth clients',
  'customers:read': 'Read customers',
  'customers:create': 'Create customers',
  'customers:update': 'Change customers',
  'customers:delete': 'Delete customers',
  'interactions:read': 'Read customer interactions',
  'interactions:create': 'Record customer interactions',
  'interactions:update': 'Change customer interactions',
  'interactions:delete': 'Delete customer interactions',
  'statistics:read': 'Read CRM statistics',
  'audit:read': 'Read the audit trail',
} as const;
export type PermissionName = keyof typeof BUILTIN_PERMISSIONS;

const CRM_WORK: PermissionName[] = ['customers:read', 'customers:create', 'customers:update', 'interactions:read', 'interactions:create', 'interactions:update', 'statistics:read'];
const EVERY_PERMISSION = Object.keys(BUILTIN_PERMISSIONS) as PermissionName[];

/** What each built-in role holds when an organization is created. */
export const BUILTIN_ROLE_PERMISSIONS: Record<BuiltinRoleName, PermissionName[]> = {
  super_admin: EVERY_PERMISSION,
  admin: EVERY_PERMISSION.filter((name) => name !== 'organizations:write' && name !== 'permissions:write'),
  backoffice: [...CRM_WORK, 'customers:delete', 'interactions:delete', 'users:read', 'locations:read', 'roles:read', 'permissions:read', 'audit:read'],
  agent: [...CRM_WORK, 'roles:read', 'permissions:read'],
  premium_user: [...CRM_WORK, 'roles:read', 'permissions:read'],
  basic_user: ['customers:read', 'interactions:read', 'statistics:read', 'roles:read', 'permissions:read'],
  guest: ['permissions:read'],
};

export async function ensureBuiltinPermissions(em: EntityManager): Promise<void> {
  const existing = new Set((await em.find(Permission, {})).map((permission) => permission.name));
  for (const [name, description] of Object.entries(BUILTIN_PERMISSIONS)) {
    if (existing.has(name)) continue;
    const [resource, action] = name.split(':') as [string, string];
    em.create(Permission, { name, resource, action, description, isBuiltin: true });
  }
  await em.flush();
}

const CHANNEL = 'rbac';

export class PermissionResolver {
  readonly #orm: MikroORM;
  readonly #store: KeyValueStore;
  readonly #cache = boundedLruCache<string, Set<string>>({ maxEntries: 10_000, ttlMs: 60_000 });

  constructor(orm: MikroORM, store: KeyValueStore) {
    this.#orm = orm;
    this.#store = store;
  }

  async start(): Promise<void> {
    await this.#store.subscribe(CHANNEL, () => this.#cache.clear(), () => this.#cache.clear());
  }

  /** After any change to roles, permissions or their links. */
  async invalidate(): Promise<void> {
    this.#cache.clear();
    await this.#store.publish(CHANNEL, 'changed');
  }

  async permissionsOf(organizationId: string | undefined, roles: readonly string[]): Promise<Set<string>> {
    const key = `${organizationId ?? '-'}|${[...roles].sort().join(',')}`;
    const cached = this.#cache.get(key);
    if (cached) return cached;
    if (roles.length === 0) return new Set();
    const rows = await queryRows<{ name: string }>(
      this.#orm.em,
      `select distinct p.name from role r
         join role_permission rp on rp.role_id = r.id
         join permission p on p.id = rp.permission_id
        where r.is_active and r.key in (?) and (r.organization_id is null or r.organization_id = ?)`,
      [[...roles], organizationId ?? null],
    );
    const permissions = new Set(rows.map((row) => row.name));
    this.#cache.set(key, permissions);
    return permissions;
  }

  /** The API scopes a token of someone with these roles may carry. */
  async apiScopesOf(organizationId: string | undefined, roles: readonly string[]): Promise<Set<string>> {
    if (roles.includes(SUPER_ADMIN)) return new Set(API_SCOPES);
    return apiScopesForPermissions(await this.permissionsOf(organizationId, roles));
  }

  /** Super admins hold every permission, including ones created after their role was seeded. */
  async allows(caller: { organizationId?: string; roles: readonly string[] }, permission: string): Promise<boolean> {
    if (caller.roles.includes(SUPER_ADMIN)) return true;
    return (await this.permissionsOf(caller.organizationId, caller.roles)).has(permission);
  }
}
