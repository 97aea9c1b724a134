// Locations of an organization and the users assigned to them (seed 004 "Location Management").
// Everything stays inside one organization: a user is only ever assigned to locations of their
// own organization, and rows of another organization answer 404 like missing ones.
import { LockMode, UniqueConstraintViolationException, type EntityManager, type MikroORM } from '@mikro-orm/postgresql';

import { Location } from '../db/entities/location.entity.ts';
import { Organization } from '../db/entities/organization.entity.ts';
import { User } from '../db/entities/user.entity.ts';
import { AppError, assertThat, fieldError } from '../platform/errors.ts';
import { containsPattern, executeStatement, queryOne, queryRows } from '../platform/database.ts';
import type { ReadReplicas } from '../platform/read-replicas.ts';
import { auditEntry, recordAudit } from './audit.service.ts';
import { organizationFilter, type Actor } from './tenancy.ts';
import type { UserProfile } from './users.service.ts';

export interface LocationView {
  id: string;
  organization_id: string;
  name: string;
  code: string;
  description: string | null;
  address: string | null;
  city: string | null;
  state: string | null;
  country: string | null;
  postal_code: string | null;
  is_active: boolean;
  created_at: string;
  updated_at: string;
}

export interface AssignedLocationView extends LocationView {
  is_primary: boolean;
  assigned_at: string;
}

export interface LocationUserView extends Pick<UserProfile, 'id' | 'email' | 'username' | 'first_name' | 'last_name' | 'full_name' | 'is_active'> {
  is_primary: boolean;
  assigned_at: string;
}

export interface LocationFields {
  name: string;
  code: string;
  description?: string | null;
  address?: string | null;
  city?: string | null;
  state?: string | null;
  country?: string | null;
  postal_code?: string | null;
  is_active?: boolean;
}

export type LocationChanges = Partial<LocationFields>;

export interface LocationFilters {
  search?: string;
  is_active?: boolean;
  organization_id?: string;
}

export interface Assignment {
  user_id: string;
  location_ids: string[];
  primary_location_id?: string | null;
}

type Page = { limit: number; offset: number };

/** A location as PostgreSQL answers it: the view's fields with real dates. */
type LocationRow = Omit<LocationView, 'created_at' | 'updated_at'> & { created_at: Date; updated_at: Date };

const COLUMNS = `l.id, l.organization_id, l.name, l.code, l.description, l.address, l.city, l.state, l.country,
  l.postal_code, l.is_active, l.created_at, l.updated_at`;

const iso = (value: Date) => new Date(value).toISOString();

function view(row: LocationRow): LocationView {
  return {
    id: row.id, organization_id: row.organization_id, name: row.name, code: row.code, description: row.description,
    address: row.address, city: row.city, state: row.state, country: row.country, postal_code: row.postal_code,
    is_active: row.is_active, created_at: iso(row.created_at), updated_at: iso(row.updated_at),
  };
}

/** A PostgreSQL array literal, bound as one parameter (the driver would spread a JS array into a list). */
function uuidArray(ids: readonly string[]): string {
  return `{${ids.join(',')}}`;
}

function codeTaken(code: string): AppError {
  return new AppError('location.code_taken', `A location with code "${code}" exists already in this organization`);
}

/** Maps the (organization, code) unique constraint to its 409, for writers that raced past the lookup. */
function rethrowCodeTaken(code: string | undefined) {
  return (error: unknown): never => {
    if (code !== undefined && error instanceof UniqueConstraintViolationException) throw codeTaken(code);
    throw error;
  };
}

export class LocationsService {
  readonly #orm: MikroORM;
  readonly #reads: ReadReplicas;

  constructor(orm: MikroORM, reads: ReadReplicas) {
    this.#orm = orm;
    this.#reads = reads;
  }

  /** The actor's organization's locations (any organization's, or the one asked for, for a super admin). */
  async list(actor: Actor, filters: LocationFilters, page: Page): Promise<{ count: number; results: LocationView[] }> {
    const conditions = ['true'];
    const params: unknown[] = [];
    const scope = organizationFilter(actor);
    if (scope) { conditions.push('l.organization_id = ?'); params.push(scope); }
    if (filters.organization_id) { conditions.push('l.organization_id = ?'); params.push(filters.organization_id); }
    if (filters.is_active !== undefined) { conditions.push('l.is_active = ?'); params.push(filters.is_active); }
    if (filters.search) {
      conditions.push('(l.name ilike ? or l.code ilike ? or l.city ilike ?)');
      const pattern = containsPattern(filters.search);
      params.push(pattern, pattern, pattern);
    }
    const where = conditions.join(' and ');
    const reads = await this.#reads.for(actor);
    const [rows, total] = await Promise.all([
      queryRows<LocationRow>(reads, `select ${COLUMNS} from location l where ${where} order by l.name, l.code, l.id limit ? offset ?`, [...params, page.limit, page.offset]),
      queryOne<{ count: number }>(reads, `select count(*)::int as count from location l where ${where}`, params),
    ]);
    return { count: total?.count ?? 0, results: rows.map(view) };
  }

  async get(actor: Actor, locationId: string): Promise<LocationView> {
    const scope = organizationFilter(actor);
    const row = await queryOne<LocationRow>(
      this.#orm.em,
      `select ${COLUMNS} from location l where l.id = ? and (?::uuid is null or l.organization_id = ?)`,
      [locationId, scope ?? null, scope ?? null],
    );
    assertThat(row, 'resource.not_found', 'No such location');
    return view(row);
  }

  /** In the actor's organization; a super admin may name another one with `organization_id`. */
  async create(actor: Actor, input: LocationFields & { organization_id?: string }): Promise<LocationView> {
    const id = await this.#orm.em.fork().transactional(async (em) => {
      const organizationId = await this.#targetOrganization(em, actor, input.organization_id);
      if (await em.findOne(Location, { organization: organizationId, code: input.code })) throw codeTaken(input.code);
      const location = em.create(Location, {
        organization: organizationId, name: input.name, code: input.code, description: input.description ?? null,
        address: input.address ?? null, city: input.city ?? null, state: input.state ?? null, country: input.country ?? null,
        postalCode: input.postal_code ?? null, isActive: input.is_active ?? true,
      });
      await em.flush();
      recordAudit(em, auditEntry(actor, {
        action: 'location.create', resource: 'location', resourceId: location.id, organizationId,
        details: { name: location.name, code: location.code },
      }));
      return location.id;
    }).catch(rethrowCodeTaken(input.code));
    return this.get(actor, id);
  }

  /**
   * PUT: every field replaced; the optional texts left out are cleared. The code (the location's
   * identifier, which seed 004 leaves out of its PUT) and is_active are kept when left out.
   */
  async replace(actor: Actor, locationId: string, fields: LocationChanges & { name: string }): Promise<LocationView> {
    return this.update(actor, locationId, {
      description: null, address: null, city: null, state: null, country: null, postal_code: null, ...fields,
    });
  }

  async update(actor: Actor, locationId: string, changes: LocationChanges): Promise<LocationView> {
    await this.#orm.em.fork().transactional(async (em) => {
      const location = await this.#visibleLocation(em, actor, locationId);
      if (changes.code !== undefined && changes.code !== location.code
        && await em.findOne(Location, { organization: location.organization, code: changes.code })) {
        throw codeTaken(changes.code);
      }
      if (changes.name !== undefined) location.name = changes.name;
      if (changes.code !== undefined) location.code = changes.code;
      if (changes.description !== undefined) location.description = changes.description;
      if (changes.address !== undefined) location.address = changes.address;
      if (changes.city !== undefined) location.city = changes.city;
      if (changes.state !== undefined) location.state = changes.state;
      if (changes.country !== undefined) location.country = changes.country;
      if (changes.postal_code !== undefined) location.postalCode = changes.postal_code;
      if (changes.is_active !== undefined) location.isActive = changes.is_active;
      recordAudit(em, auditEntry(actor, {
        action: 'location.update', resource: 'location', resourceId: location.id, organizationId: location.organization.id,
        details: { fields: Object.keys(changes) },
      }));
    }).catch(rethrowCodeTaken(changes.code));
    return this.get(actor, locationId);
  }

  /** Deleting a location drops its assignments with it (foreign key cascade). */
  async delete(actor: Actor, locationId: string): Promise<void> {
    await this.#orm.em.fork().transactional(async (em) => {
      const location = await this.#visibleLocation(em, actor, locationId);
      recordAudit(em, auditEntry(actor, {
        action: 'location.delete', resource: 'location', resourceId: location.id, organizationId: location.organization.id,
        details: { name: location.name, code: location.code },
      }));
      await em.nativeDelete(Location, { id: location.id });
    });
  }

  /**
   * Replaces the user's assignments with exactly `location_ids`. Assignments kept keep their
   * date; the primary flag moves in two steps because the one-primary index is checked per row.
   */
  async assign(actor: Actor, assignment: Assignment): Promise<{ user_id: string; primary_location_id: string | null; locations: AssignedLocationView[] }> {
    const primary = assignment.primary_location_id ?? null;
    await this.#orm.em.fork().transactional(async (em) => {
      // Locked, so two concurrent assignments of one user apply one after the other.
      const user = await this.#visibleUser(em, actor, assignment.user_id, true);
      const { organizationId } = user;
      const rows = await queryRows<{ id: string; is_active: boolean }>(
        em, 'select id, is_active from location where id = any(?::uuid[]) and organization_id = ?', [uuidArray(assignment.location_ids), organizationId],
      );
      const found = new Map(rows.map((row) => [row.id, row.is_active]));
      assignment.location_ids.forEach((id, index) => {
        if (!found.has(id)) throw new AppError('resource.not_found', `No such location: ${id}`);
        if (!found.get(id)) throw fieldError(['body', 'location_ids', index], 'names a disabled location', 'inactive');
      });
      await executeStatement(em, 'delete from user_location where user_id = ? and location_id <> all(?::uuid[])', [user.id, uuidArray(assignment.location_ids)]);
      await executeStatement(em, 'update user_location set is_primary = false where user_id = ? and is_primary', [user.id]);
      await executeStatement(
        em,
        `insert into user_location (user_id, location_id, is_primary, assigned_at)
         select ?, location_id, false, now() from unnest(?::uuid[]) as location_id
         on conflict (user_id, location_id) do nothing`,
        [user.id, uuidArray(assignment.location_ids)],
      );
      if (primary) await executeStatement(em, 'update user_location set is_primary = true where user_id = ? and location_id = ?', [user.id, primary]);
      recordAudit(em, auditEntry(actor, {
        action: 'location.assign', resource: 'user', resourceId: user.id, targetId: user.id, organizationId,
        details: { location_ids: assignment.location_ids, primary_location_id: primary },
      }));
    });
    const { results } = await this.#assignedTo(assignment.user_id, { limit: assignment.location_ids.length || 1, offset: 0 });
    return { user_id: assignment.user_id, primary_location_id: primary, locations: results };
  }

  /** Users assigned to a location, primary ones first. */
  async usersOf(actor: Actor, locationId: string, page: Page): Promise<{ count: number; results: LocationUserView[] }> {
    await this.get(actor, locationId);
    const reads = await this.#reads.for(actor);
    const [rows, total] = await Promise.all([
      queryRows<Omit<LocationUserView, 'full_name' | 'assigned_at'> & { assigned_at: Date }>(
        reads,
        `select u.id, u.email, u.username, u.first_name, u.last_name, u.is_active, ul.is_primary, ul.assigned_at
           from user_location ul join app_user u on u.id = ul.user_id
          where ul.location_id = ? order by ul.is_primary desc, u.email, u.id limit ? offset ?`,
        [locationId, page.limit, page.offset],
      ),
      queryOne<{ count: number }>(reads, 'select count(*)::int as count from user_location where location_id = ?', [locationId]),
    ]);
    return {
      count: total?.count ?? 0,
      results: rows.map((row) => ({
        ...row, full_name: [row.first_name, row.last_name].filter(Boolean).join(' '), assigned_at: iso(row.assigned_at),
      })),
    };
  }

  /** A user's locations, the primary one first. */
  async locationsOf(actor: Actor, userId: string, page: Page): Promise<{ count: number; results: AssignedLocationView[] }> {
    await this.#visibleUser(this.#orm.em.fork(), actor, userId, false);
    return this.#assignedTo(userId, page);
  }

  async unassign(actor: Actor, userId: string, locationId: string): Promise<void> {
    await this.#orm.em.fork().transactional(async (em) => {
      const user = await this.#visibleUser(em, actor, userId, true);
      const removed = await executeStatement(em, 'delete from user_location where user_id = ? and location_id = ?', [user.id, locationId]);
      assertThat(removed > 0, 'resource.not_found', 'The user is not assigned to this location');
      recordAudit(em, auditEntry(actor, {
        action: 'location.unassign', resource: 'user', resourceId: user.id, targetId: user.id, organizationId: user.organizationId,
        details: { location_id: locationId },
      }));
    });
  }

  async #assignedTo(userId: string, page: Page): Promise<{ count: number; results: AssignedLocationView[] }> {
    const [rows, total] = await Promise.all([
      queryRows<LocationRow & { is_primary: boolean; assigned_at: Date }>(
        this.#orm.em,
        `select ${COLUMNS}, ul.is_primary, ul.assigned_at
           from user_location ul join location l on l.id = ul.location_id
          where ul.user_id = ? order by ul.is_primary desc, l.name, l.id limit ? offset ?`,
        [userId, page.limit, page.offset],
      ),
      queryOne<{ count: number }>(this.#orm.em, 'select count(*)::int as count from user_location where user_id = ?', [userId]),
    ]);
    return {
      count: total?.count ?? 0,
      results: rows.map((row) => ({ ...view(row), is_primary: row.is_primary, assigned_at: iso(row.assigned_at) })),
    };
  }

  /** Where a new location goes: the actor's organization, or for a super admin the one named. */
  async #targetOrganization(em: EntityManager, actor: Actor, requested: string | undefined): Promise<string> {
    const scope = organizationFilter(actor);
    const organizationId = requested ?? actor.organizationId;
    if (!organizationId) throw fieldError(['body', 'organization_id'], 'is required for a token of no organization', 'required');
    if (scope && organizationId !== scope) throw new AppError('resource.not_found', 'No such organization');
    const organization = await em.findOne(Organization, { id: organizationId }, { fields: ['id'] });
    assertThat(organization, 'resource.not_found', 'No such organization');
    return organization.id;
  }

  async #visibleLocation(em: EntityManager, actor: Actor, locationId: string): Promise<Location> {
    const scope = organizationFilter(actor);
    const location = await em.findOne(Location, { id: locationId, ...(scope ? { organization: scope } : {}) });
    assertThat(location, 'resource.not_found', 'No such location');
    return location;
  }

  async #visibleUser(em: EntityManager, actor: Actor, userId: string, lock: boolean): Promise<{ id: string; organizationId: string }> {
    const scope = organizationFilter(actor);
    const user = await em.findOne(
      User,
      { id: userId, ...(scope ? { organization: scope } : {}) },
      { fields: ['id', 'organization'], ...(lock ? { lockMode: LockMode.PESSIMISTIC_WRITE } : {}) },
    );
    assertThat(user, 'resource.not_found', 'No such user');
    return { id: user.id, organizationId: user.organization.id };
  }
}
