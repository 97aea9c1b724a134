// Global permissions (API.md "RBAC"): everyone reads them, super admins write them. Built-in
// ones are what the product checks and cannot be renamed or deleted.
import type { MikroORM } from '@mikro-orm/postgresql';

import { Permission } from '../db/entities/permission.entity.ts';
import { AppError, assertThat } from '../platform/errors.ts';
import { containsPattern } from '../platform/database.ts';
import { recordAudit } from './audit.service.ts';
import type { PermissionResolver } from './rbac.service.ts';
import { permissionView, type PermissionView } from './roles.service.ts';
import { auditActor, type Actor } from './tenancy.ts';

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

  async create(actor: Actor, input: { name: string; description?: string | null }): Promise<PermissionView> {
    const [resource, action] = input.name.split(':') as [string, string];
    const created = await this.#orm.em.fork().transactional(async (em) => {
      if (await em.findOne(Permission, { name: input.name })) throw new AppError('permission.name_taken', `The permission "${input.name}" exists already`);
      const permission = em.create(Permission, { name: input.name, resource, action, description: input.description ?? null });
      await em.flush();
      recordAudit(em, { action: 'permission.create', resource: 'permission', resourceId: permission.id, ...auditActor(actor), details: { name: input.name } });
      return permission;
    });
    return permissionView(created);
  }

  async update(actor: Actor, permissionId: string, changes: { name?: string; description?: string | null }): Promise<PermissionView> {
    const updated = await this.#orm.em.fork().transactional(async (em) => {
      const permission = await em.findOne(Permission, { id: permissionId });
      assertThat(permission, 'resource.not_found', 'No such permission');
      if (changes.name !== undefined && changes.name !== permission.name) {
        if (permission.isBuiltin) throw new AppError('permission.builtin', 'Built-in permissions keep their names');
        if (await em.findOne(Permission, { name: changes.name })) throw new AppError('permission.name_taken', `The permission "${changes.name}" exists already`);
        const [resource, action] = changes.name.split(':') as [string, string];
        Object.assign(permission, { name: changes.name, resource, action });
      }
      if (changes.description !== undefined) permission.description = changes.description;
      recordAudit(em, { action: 'permission.update', resource: 'permission', resourceId: permission.id, ...auditActor(actor), details: { fields: Object.keys(changes) } });
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
      recordAudit(em, { action: 'permission.delete', resource: 'permission', resourceId: permission.id, ...auditActor(actor), details: { name: permission.name } });
      em.remove(permission);
    });
    await this.#resolver.invalidate();
  }
}
