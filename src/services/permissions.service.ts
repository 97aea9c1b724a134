// Global permissions (API.md "RBAC"): everyone reads them, super admins write them. Built-in
// ones are what the product checks and cannot be renamed or deleted.
import type { MikroORM } from '@mikro-orm/postgresql';

import { Permission } from '../db/entities/permission.entity.ts';
import { AppError, assertThat, fieldError } from '../platform/errors.ts';
import { containsPattern } from '../platform/database.ts';
import { auditEntry, recordAudit } from './audit.service.ts';
import type { PermissionResolver } from './rbac.service.ts';
import { permissionView, type PermissionView } from './roles.service.ts';
import { type Actor } from './tenancy.ts';

/** What clients send: the name, its halves, or both (the schema checks that they agree). */
export interface PermissionInput { name?: string; resource?: string; action?: string; description?: string | null }

/**
 * The `resource:action` name the input asks for: the name given, else one built from the halves
 * given, a missing half taken from the permission being changed. Undefined when it names none.
 */
function nameOf(input: PermissionInput, current?: { resource: string; action: string }): string | undefined {
  if (input.name !== undefined) return input.name;
  const resource = input.resource ?? current?.resource;
  const action = input.action ?? current?.action;
  if ((input.resource === undefined && input.action === undefined) || !resource || !action) return undefined;
  return `${resource}:${action}`;
}

export interface PermissionFilters { search?: string; resource?: string; action?: string }

function whereOf(filters: PermissionFilters) {
  const pattern = filters.search ? containsPattern(filters.search) : undefined;
  return {
    ...(pattern ? { $or: [{ name: { $ilike: pattern } }, { description: { $ilike: pattern } }] } : {}),
    ...(filters.resource ? { resource: filters.resource } : {}),
    ...(filters.action ? { action: filters.action } : {}),
  };
}

export class PermissionsService {
  readonly #orm: MikroORM;
  readonly #resolver: PermissionResolver;

  constructor(orm: MikroORM, resolver: PermissionResolver) {
    this.#orm = orm;
    this.#resolver = resolver;
  }

  async list(filters: PermissionFilters, page: { limit: number; offset: number }) {
    const [rows, count] = await this.#orm.em.fork().findAndCount(Permission, whereOf(filters), { orderBy: { resource: 'asc', action: 'asc' }, limit: page.limit, offset: page.offset });
    return { count, results: rows.map(permissionView) };
  }

  async grouped(filters: PermissionFilters = {}): Promise<Record<string, PermissionView[]>> {
    const rows = await this.#orm.em.fork().find(Permission, whereOf(filters), { orderBy: { resource: 'asc', action: 'asc' } });
    const groups: Record<string, PermissionView[]> = {};
    for (const row of rows) (groups[row.resource] ??= []).push(permissionView(row));
    return groups;
  }

  async get(permissionId: string): Promise<PermissionView> {
    const permission = await this.#orm.em.fork().findOne(Permission, { id: permissionId });
    assertThat(permission, 'resource.not_found', 'No such permission');
    return permissionView(permission);
  }

  async create(actor: Actor, input: PermissionInput): Promise<PermissionView> {
    const name = nameOf(input);
    if (!name) throw fieldError(['body', 'name'], 'give name, or resource and action', 'required');
    const [resource, action] = name.split(':') as [string, string];
    const created = await this.#orm.em.fork().transactional(async (em) => {
      if (await em.findOne(Permission, { name })) throw new AppError('permission.name_taken', `The permission "${name}" exists already`);
      const permission = em.create(Permission, { name, resource, action, description: input.description ?? null });
      await em.flush();
      recordAudit(em, auditEntry(actor, { action: 'permission.create', resource: 'permission', resourceId: permission.id, details: { name } }));
      return permission;
    });
    return permissionView(created);
  }

  /** PUT: the name (or its halves) as on create; a description left out is cleared. */
  async replace(actor: Actor, permissionId: string, fields: PermissionInput): Promise<PermissionView> {
    if (!nameOf(fields)) throw fieldError(['body', 'name'], 'give name, or resource and action', 'required');
    return this.update(actor, permissionId, { description: null, ...fields });
  }

  async update(actor: Actor, permissionId: string, changes: PermissionInput): Promise<PermissionView> {
    const updated = await this.#orm.em.fork().transactional(async (em) => {
      const permission = await em.findOne(Permission, { id: permissionId });
      assertThat(permission, 'resource.not_found', 'No such permission');
      const name = nameOf(changes, permission);
      if (name !== undefined && name !== permission.name) {
        if (permission.isBuiltin) throw new AppError('permission.builtin', 'Built-in permissions keep their names');
        if (await em.findOne(Permission, { name })) throw new AppError('permission.name_taken', `The permission "${name}" exists already`);
        const [resource, action] = name.split(':') as [string, string];
        Object.assign(permission, { name, resource, action });
      }
      if (changes.description !== undefined) permission.description = changes.description;
      recordAudit(em, auditEntry(actor, { action: 'permission.update', resource: 'permission', resourceId: permission.id, details: { fields: Object.keys(changes) } }));
      return permission;
    });
    await this.#resolver.invalidate();
    return permissionView(updated);
  }

  async delete(actor: Actor, permissionId: string): Promise<void> {
    await this.#orm.em.fork().transactional(async (em) => {
      const permission = await em.findOne(Permission, { id: permissionId });
      assertThat(permission, 'resource.not_found', 'No such permission');
      if (permission.isBuiltin) throw new AppError('permission.builtin', 'Built-in permissions cannot be deleted');
      recordAudit(em, auditEntry(actor, { action: 'permission.delete', resource: 'permission', resourceId: permission.id, details: { name: permission.name } }));
      em.remove(permission);
    });
    await this.#resolver.invalidate();
  }
}
