// Roles and permissions (API.md "RBAC"): roles live in an organization (super_admin is global);
// permissions are global `resource:action`. Nobody grants a role or a permission they do not hold.
//
// A role has a name people write ("Sales Manager") and a key that machines use ("sales_manager"):
// tokens carry keys in their `roles` claim and permission checks resolve keys, so renaming a role
// changes no token. Names and keys share one namespace per organization, compared without case:
// a name may not be another role's name or key, so "the role called X" always means one role.
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';

import { Permission } from '../db/entities/permission.entity.ts';
import { BUILTIN_ROLES, Role } from '../db/entities/role.entity.ts';
import { AppError, assertThat } from '../platform/errors.ts';
import { containsPattern, executeStatement, queryOne, queryRows } from '../platform/database.ts';
import { auditEntry, recordAudit } from './audit.service.ts';
import { SUPER_ADMIN, type PermissionResolver } from './rbac.service.ts';
import { isSuperAdmin, organizationFilter, type Actor } from './tenancy.ts';

export interface RoleView {
  id: string;
  key: string;
  name: string;
  description: string | null;
  organization_id: string | null;
  is_builtin: boolean;
  is_active: boolean;
  permissions: string[];
  created_at: string;
}

export interface PermissionView {
  id: string;
  name: string;
  resource: string;
  action: string;
  description: string | null;
  is_builtin: boolean;
}

/** A role as PostgreSQL answers it: the view's fields with a real date. */
type RoleRow = Omit<RoleView, 'created_at'> & { created_at: Date };

const ROLE_COLUMNS = `r.id, r.key, r.name, r.description, r.organization_id, r.is_builtin, r.is_active, r.created_at,
  coalesce(array_agg(p.name order by p.name) filter (where p.name is not null), '{}') as permissions`;

export interface RoleInput {
  name: string;
  key?: string;
  description?: string | null;
  organization_id?: string;
  permission_ids?: string[];
  is_active?: boolean;
}

export interface RoleChanges {
  name?: string;
  description?: string | null;
  is_active?: boolean;
}

/** Built-in keys stay with the built-in roles, in every organization. */
const RESERVED_KEYS: ReadonlySet<string> = new Set(BUILTIN_ROLES);
const KEY_LENGTH = 64;

// Serializes role name and key changes inside one organization: the name/key namespace spans two
// columns, which no unique index can hold. (Two-key advisory locks do not meet one-key ones.)
const ROLE_NAMES_LOCK = 0x526f6c65;

/** A key from a display name: "Sales Manager" -> "sales_manager", "2nd Line" -> "role_2nd_line". */
export function keyFromName(name: string): string {
  const base = name.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
  const key = /^[a-z]/.test(base) ? base : `role${base ? `_${base}` : ''}`;
  // Room for a "_<n>" suffix should the key be taken.
  return key.slice(0, KEY_LENGTH - 8).replace(/_+$/, '');
}

function roleView(row: RoleRow): RoleView {
  return { ...row, created_at: new Date(row.created_at).toISOString() };
}

export function permissionView(permission: Permission): PermissionView {
  return {
    id: permission.id, name: permission.name, resource: permission.resource, action: permission.action,
    description: permission.description ?? null, is_builtin: permission.isBuiltin,
  };
}

export class RolesService {
  readonly #orm: MikroORM;
  readonly #permissions: PermissionResolver;

  constructor(orm: MikroORM, permissions: PermissionResolver) {
    this.#orm = orm;
    this.#permissions = permissions;
  }

  /** Roles the actor can see: their organization's, plus the global super_admin role for a super admin. */
  async list(actor: Actor, filters: { search?: string; is_active?: boolean; organization_id?: string }, page: { limit: number; offset: number }) {
    const scope = organizationFilter(actor) ?? filters.organization_id;
    const conditions = ['true'];
    const params: unknown[] = [];
    if (scope) { conditions.push('r.organization_id = ?'); params.push(scope); }
    if (filters.search) { conditions.push('(r.name ilike ? or r.key ilike ?)'); params.push(containsPattern(filters.search), containsPattern(filters.search)); }
    if (filters.is_active !== undefined) { conditions.push('r.is_active = ?'); params.push(filters.is_active); }
    const where = conditions.join(' and ');
    const [rows, total] = await Promise.all([
      queryRows<RoleRow>(this.#orm.em,
        `select ${ROLE_COLUMNS} from role r left join role_permission rp on rp.role_id = r.id left join permission p on p.id = rp.permission_id
          where ${where} group by r.id order by r.organization_id nulls first, r.is_builtin desc, r.name limit ? offset ?`,
        [...params, page.limit, page.offset]),
      queryRows<{ count: number }>(this.#orm.em, `select count(*)::int as count from role r where ${where}`, params),
    ]);
    return { count: total[0]?.count ?? 0, results: rows.map(roleView) };
  }

  async get(actor: Actor, roleId: string): Promise<RoleView> {
    const scope = organizationFilter(actor);
    const [row] = await queryRows<RoleRow>(this.#orm.em,
      `select ${ROLE_COLUMNS} from role r left join role_permission rp on rp.role_id = r.id left join permission p on p.id = rp.permission_id
        where r.id = ? and (?::uuid is null or r.organization_id = ?) group by r.id`,
      [roleId, scope ?? null, scope ?? null]);
    assertThat(row, 'resource.not_found', 'No such role');
    return roleView(row);
  }

  /** The role, loaded for a change, or 404 when the actor cannot see it. */
  async #editable(em: EntityManager, actor: Actor, roleId: string): Promise<Role> {
    const scope = organizationFilter(actor);
    const role = await em.findOne(Role, { id: roleId, ...(scope ? { organization: scope } : {}) }, { populate: ['permissions'] });
    assertThat(role, 'resource.not_found', 'No such role');
    return role;
  }

  /** Permission names the actor holds; a super admin holds all. */
  async heldBy(actor: Actor): Promise<Set<string> | 'all'> {
    if (isSuperAdmin(actor)) return 'all';
    return this.#permissions.permissionsOf(actor.organizationId, actor.roles);
  }

  /** Refuses a grant of anything the actor does not hold themselves. */
  async assertMayGrant(actor: Actor, permissionNames: Iterable<string>, what: string): Promise<void> {
    const held = await this.heldBy(actor);
    if (held === 'all') return;
    const beyond = [...permissionNames].filter((name) => !held.has(name));
    if (beyond.length > 0) throw new AppError('auth.forbidden', `You cannot grant ${what} beyond your own permissions (${beyond.join(', ')})`);
  }

  /** A role may be given to a user only by someone who holds everything the role holds. */
  async assertMayAssign(actor: Actor, role: { key: string; name: string; permissions: string[] }): Promise<void> {
    if (role.key === SUPER_ADMIN && !isSuperAdmin(actor)) throw new AppError('auth.forbidden', 'Only a super admin can make a super admin');
    await this.assertMayGrant(actor, role.permissions, `the role "${role.name}"`);
  }

  static async #lockNames(em: EntityManager, organizationId: string): Promise<void> {
    await executeStatement(em, 'select pg_advisory_xact_lock(?, hashtext(?))', [ROLE_NAMES_LOCK, organizationId]);
  }

  /** 409 when the name is, whatever its case, another role's name or key in the organization (or a global role's). */
  static async #assertNameFree(em: EntityManager, organizationId: string, name: string, exceptId?: string): Promise<void> {
    const taken = await queryOne<{ name: string }>(em,
      `select name from role where (organization_id = ? or organization_id is null) and (?::uuid is null or id <> ?)
          and (lower(name) = lower(?) or key = lower(?)) limit 1`,
      [organizationId, exceptId ?? null, exceptId ?? null, name, name]);
    if (taken) throw new AppError('role.name_taken', `"${name}" names the role "${taken.name}" already`);
  }

  /** The key asked for, or 409 when it is built-in or names another role. */
  static async #claimKey(em: EntityManager, organizationId: string, key: string): Promise<string> {
    if (RESERVED_KEYS.has(key) || await RolesService.#keyTaken(em, organizationId, key)) {
      throw new AppError('role.key_taken', `The key "${key}" is taken by another role`);
    }
    return key;
  }

  /** The key made from the name, with a number after it when that one is taken. */
  static async #freeKey(em: EntityManager, organizationId: string, name: string): Promise<string> {
    const base = keyFromName(name);
    for (let n = 1; ; n += 1) {
      const key = n === 1 ? base : `${base}_${n}`;
      if (!RESERVED_KEYS.has(key) && !await RolesService.#keyTaken(em, organizationId, key)) return key;
    }
  }

  static async #keyTaken(em: EntityManager, organizationId: string, key: string): Promise<boolean> {
    return Boolean(await queryOne(em,
      'select 1 from role where (organization_id = ? or organization_id is null) and (key = ? or lower(name) = ?) limit 1', [organizationId, key, key]));
  }

  async #permissionsById(em: EntityManager, ids: string[]): Promise<Permission[]> {
    const found = await em.find(Permission, { id: { $in: ids } });
    if (found.length !== new Set(ids).size) throw new AppError('resource.not_found', 'One or more permissions do not exist');
    return found;
  }

  async create(actor: Actor, input: RoleInput): Promise<RoleView> {
    const organizationId = isSuperAdmin(actor) ? input.organization_id ?? actor.organizationId : organizationFilter(actor);
    if (!organizationId) throw new AppError('request.validation_failed', 'organization_id is required');
    const id = await this.#orm.em.fork().transactional(async (em) => {
      await RolesService.#lockNames(em, organizationId);
      await RolesService.#assertNameFree(em, organizationId, input.name);
      const key = input.key ? await RolesService.#claimKey(em, organizationId, input.key) : await RolesService.#freeKey(em, organizationId, input.name);
      const permissions = await this.#permissionsById(em, input.permission_ids ?? []);
      await this.assertMayGrant(actor, permissions.map((permission) => permission.name), 'permissions');
      const role = em.create(Role, { key, name: input.name, description: input.description ?? null, organization: organizationId, isActive: input.is_active ?? true });
      for (const permission of permissions) role.permissions.add(permission);
      await em.flush();
      recordAudit(em, auditEntry(actor, { action: 'role.create', resource: 'role', resourceId: role.id, organizationId, details: { key, name: role.name, permissions: permissions.map((p) => p.name) } }));
      return role.id;
    });
    await this.#permissions.invalidate();
    return this.get(actor, id);
  }

  /** PUT: every field replaced; a description left out is cleared, is_active left out is kept. */
  async replace(actor: Actor, roleId: string, fields: RoleChanges & { name: string }): Promise<RoleView> {
    return this.update(actor, roleId, { description: null, ...fields });
  }

  async update(actor: Actor, roleId: string, changes: RoleChanges): Promise<RoleView> {
    await this.#orm.em.fork().transactional(async (em) => {
      const role = await this.#editable(em, actor, roleId);
      const renamed = changes.name !== undefined && changes.name !== role.name;
      if (role.isBuiltin && (renamed || changes.is_active === false)) {
        throw new AppError('role.builtin', 'Built-in roles keep their name and stay active');
      }
      if (renamed && role.organization) {
        await RolesService.#lockNames(em, role.organization.id);
        await RolesService.#assertNameFree(em, role.organization.id, changes.name!, role.id);
      }
      if (changes.name !== undefined) role.name = changes.name;
      if (changes.description !== undefined) role.description = changes.description;
      if (changes.is_active !== undefined) role.isActive = changes.is_active;
      recordAudit(em, auditEntry(actor, { action: 'role.update', resource: 'role', resourceId: role.id, organizationId: role.organization?.id, details: { fields: Object.keys(changes) } }));
    });
    await this.#permissions.invalidate();
    return this.get(actor, roleId);
  }

  async delete(actor: Actor, roleId: string): Promise<void> {
    await this.#orm.em.fork().transactional(async (em) => {
      const role = await this.#editable(em, actor, roleId);
      if (role.isBuiltin) throw new AppError('role.builtin', 'Built-in roles cannot be deleted');
      const [holders] = await queryRows<{ count: number }>(em, 'select count(*)::int as count from user_role where role_id = ?', [role.id]);
      if ((holders?.count ?? 0) > 0) throw new AppError('role.in_use', `The role is held by ${holders!.count} user(s); take it away first`);
      recordAudit(em, auditEntry(actor, { action: 'role.delete', resource: 'role', resourceId: role.id, organizationId: role.organization?.id, details: { key: role.key, name: role.name } }));
      em.remove(role);
    });
    await this.#permissions.invalidate();
  }

  async changePermissions(actor: Actor, roleId: string, permissionIds: string[], change: 'add' | 'remove'): Promise<RoleView> {
    await this.#orm.em.fork().transactional(async (em) => {
      const role = await this.#editable(em, actor, roleId);
      if (role.key === SUPER_ADMIN) throw new AppError('role.builtin', 'super_admin holds every permission');
      const permissions = await this.#permissionsById(em, permissionIds);
      // Adding or taking away, the actor must hold what they touch, and may not change a role they hold.
      await this.assertMayGrant(actor, permissions.map((permission) => permission.name), 'permissions');
      if (actor.roles.includes(role.key) && !isSuperAdmin(actor)) throw new AppError('auth.forbidden', 'You cannot change the permissions of a role you hold');
      for (const permission of permissions) {
        if (change === 'add') role.permissions.add(permission);
        else role.permissions.remove(permission);
      }
      recordAudit(em, auditEntry(actor, {
        action: change === 'add' ? 'role.permissions_add' : 'role.permissions_remove', resource: 'role', resourceId: role.id,
        organizationId: role.organization?.id, details: { permissions: permissions.map((p) => p.name) },
      }));
    });
    await this.#permissions.invalidate();
    return this.get(actor, roleId);
  }
}
