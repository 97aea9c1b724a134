// Organizations (API.md "Organizations, users, RBAC"): super admins manage them; everyone else
// sees only their own. Switching an organization off or deleting it ends every session of its
// users at their next call, on every process.
import { LockMode, UniqueConstraintViolationException, type EntityManager, type MikroORM } from '@mikro-orm/postgresql';

import { DEFAULT_ORGANIZATION_SLUG, Organization } from '../db/entities/organization.entity.ts';
import { AppError, assertThat } from '../platform/errors.ts';
import { containsPattern, queryOne, queryRows } from '../platform/database.ts';
import { auditEntry, recordAudit } from './audit.service.ts';
import { ensureBuiltinRoles } from './bootstrap.service.ts';
import type { ClientRegistry } from './client-registry.service.ts';
import type { PermissionResolver } from './rbac.service.ts';
import type { RevocationService } from './revocation.service.ts';
import { organizationFilter, ownOrganization, type Actor } from './tenancy.ts';

export interface OrganizationView {
  id: string;
  slug: string;
  name: string;
  description: string | null;
  max_users: number | null;
  is_active: boolean;
  /** Every member must have a second factor (API.md "Multi-factor authentication"). */
  mfa_required: boolean;
  user_count: number;
  created_at: string;
  updated_at: string;
}

export interface OrganizationFilters {
  search?: string;
  is_active?: boolean;
}

export interface NewOrganization {
  slug: string;
  name: string;
  description?: string | null;
  max_users?: number | null;
  mfa_required?: boolean;
}

export interface OrganizationChanges {
  name?: string;
  description?: string | null;
  max_users?: number | null;
  is_active?: boolean;
  mfa_required?: boolean;
}

/** An organization as PostgreSQL answers it: the view's fields with real dates. */
type OrganizationRow = Omit<OrganizationView, 'created_at' | 'updated_at'> & { created_at: Date; updated_at: Date };

/** Who and what an ending organization leaves behind: sessions to end after the commit. */
interface Sessions {
  userIds: string[];
  grantIds: string[];
  clientIds: string[];
}

const COLUMNS = `o.id, o.slug, o.name, o.description, o.max_users, o.is_active, o.mfa_required, o.created_at, o.updated_at,
  (select count(*)::int from app_user u where u.organization_id = o.id) as user_count`;

// Revocations fan out to the store; a bounded batch keeps a large organization from opening
// thousands of requests at once while still pipelining.
const REVOCATION_BATCH = 100;

function view(row: OrganizationRow): OrganizationView {
  return { ...row, created_at: new Date(row.created_at).toISOString(), updated_at: new Date(row.updated_at).toISOString() };
}

async function inBatches<T>(items: readonly T[], work: (item: T) => Promise<unknown>): Promise<void> {
  for (let start = 0; start < items.length; start += REVOCATION_BATCH) {
    await Promise.all(items.slice(start, start + REVOCATION_BATCH).map(work));
  }
}

export class OrganizationsService {
  readonly #orm: MikroORM;
  readonly #revocation: RevocationService;
  readonly #clients: ClientRegistry;
  readonly #permissions: PermissionResolver;
  readonly #revokeGrant: (grantId: string) => Promise<void>;

  constructor(deps: { orm: MikroORM; revocation: RevocationService; clientRegistry: ClientRegistry; permissionResolver: PermissionResolver; revokeGrant: (grantId: string) => Promise<void> }) {
    this.#orm = deps.orm;
    this.#revocation = deps.revocation;
    this.#clients = deps.clientRegistry;
    this.#permissions = deps.permissionResolver;
    this.#revokeGrant = deps.revokeGrant;
  }

  /** Every organization for a super admin; anyone else sees only their own. */
  async list(actor: Actor, filters: OrganizationFilters, page: { limit: number; offset: number }): Promise<{ count: number; results: OrganizationView[] }> {
    const scope = organizationFilter(actor);
    const conditions = ['true'];
    const params: unknown[] = [];
    if (scope) { conditions.push('o.id = ?'); params.push(scope); }
    if (filters.is_active !== undefined) { conditions.push('o.is_active = ?'); params.push(filters.is_active); }
    if (filters.search) {
      conditions.push('(o.name ilike ? or o.slug ilike ?)');
      params.push(containsPattern(filters.search), containsPattern(filters.search));
    }
    const where = conditions.join(' and ');
    const [rows, total] = await Promise.all([
      queryRows<OrganizationRow>(this.#orm.em, `select ${COLUMNS} from organization o where ${where} order by o.slug limit ? offset ?`, [...params, page.limit, page.offset]),
      queryOne<{ count: number }>(this.#orm.em, `select count(*)::int as count from organization o where ${where}`, params),
    ]);
    return { count: total?.count ?? 0, results: rows.map(view) };
  }

  async get(actor: Actor, organizationId: string): Promise<OrganizationView> {
    const scope = organizationFilter(actor);
    const row = await queryOne<OrganizationRow>(
      this.#orm.em,
      `select ${COLUMNS} from organization o where o.id = ? and (?::uuid is null or o.id = ?)`,
      [organizationId, scope ?? null, scope ?? null],
    );
    assertThat(row, 'resource.not_found', 'No such organization');
    return view(row);
  }

  /** The caller's own organization, whatever their permissions. */
  async current(actor: Actor): Promise<OrganizationView> {
    const row = await queryOne<OrganizationRow>(this.#orm.em, `select ${COLUMNS} from organization o where o.id = ?`, [ownOrganization(actor)]);
    assertThat(row, 'resource.not_found', 'Your organization no longer exists');
    return view(row);
  }

  /** A new organization comes with its built-in roles, so its first admin can be made at once. */
  async create(actor: Actor, input: NewOrganization): Promise<OrganizationView> {
    const id = await this.#orm.em.fork().transactional(async (em) => {
      if (await em.findOne(Organization, { slug: input.slug })) throw slugTaken(input.slug);
      const organization = em.create(Organization, {
        slug: input.slug, name: input.name, description: input.description ?? null, maxUsers: input.max_users ?? null,
        mfaRequired: input.mfa_required ?? false,
      });
      await em.flush();
      await ensureBuiltinRoles(em, organization);
      recordAudit(em, auditEntry(actor, {
        action: 'organization.create', resource: 'organization', resourceId: organization.id, organizationId: organization.id,
        details: { slug: organization.slug, name: organization.name, max_users: organization.maxUsers ?? null, mfa_required: organization.mfaRequired },
      }));
      return organization.id;
    }).catch((error: unknown) => {
      // Two creations of one slug can both pass the lookup; the unique constraint decides.
      if (error instanceof UniqueConstraintViolationException) throw slugTaken(input.slug);
      throw error;
    });
    return this.get(actor, id);
  }

  /**
   * PUT: every field replaced; description and max_users left out are cleared (no limit), while
   * is_active and mfa_required left out are kept: a PUT never switches an organization off or on,
   * nor its MFA policy, by omission.
   */
  async replace(actor: Actor, organizationId: string, fields: OrganizationChanges & { name: string }): Promise<OrganizationView> {
    return this.update(actor, organizationId, { description: null, max_users: null, ...fields });
  }

  async update(actor: Actor, organizationId: string, changes: OrganizationChanges): Promise<OrganizationView> {
    await this.#orm.em.fork().transactional(async (em) => {
      const organization = await this.#lockVisible(em, actor, organizationId);
      const disabling = changes.is_active === false && organization.isActive;
      const enabling = changes.is_active === true && !organization.isActive;
      if (disabling) await this.#assertMayEnd(em, actor, organization);
      // A lower max_users than the current count is allowed: it only stops further additions.
      if (changes.name !== undefined) organization.name = changes.name;
      if (changes.description !== undefined) organization.description = changes.description;
      if (changes.max_users !== undefined) organization.maxUsers = changes.max_users;
      if (changes.is_active !== undefined) organization.isActive = changes.is_active;
      if (changes.mfa_required !== undefined) organization.mfaRequired = changes.mfa_required;
      recordAudit(em, auditEntry(actor, {
        action: disabling ? 'organization.disable' : enabling ? 'organization.enable' : 'organization.update',
        resource: 'organization', resourceId: organization.id, organizationId: organization.id,
        details: { fields: Object.keys(changes), ...changes },
      }));
      await em.flush();
      // Ending sessions before the commit too means a store outage fails the change as a whole
      // instead of leaving a disabled organization whose tokens still work.
      if (disabling) await this.#endSessions(await this.#sessionsOf(em, organization.id), { preCommit: true });
    });
    // After the commit, once more: a token minted while the transaction ran must stop as well.
    // Also on a repeated is_active=false, so retrying after a store outage finishes the job.
    if (changes.is_active === false) await this.#endSessions(await this.#sessionsOf(this.#orm.em, organizationId));
    return this.get(actor, organizationId);
  }

  /** Deletes the organization with its users, roles, clients and locations (foreign keys cascade). */
  async delete(actor: Actor, organizationId: string): Promise<void> {
    const sessions = await this.#orm.em.fork().transactional(async (em) => {
      const organization = await this.#lockVisible(em, actor, organizationId);
      if (organization.slug === DEFAULT_ORGANIZATION_SLUG) {
        throw new AppError('organization.default', 'The default organization cannot be deleted: self-registration and the first admin live there');
      }
      await this.#assertMayEnd(em, actor, organization);
      const ending = await this.#sessionsOf(em, organization.id);
      recordAudit(em, auditEntry(actor, {
        action: 'organization.delete', resource: 'organization', resourceId: organization.id, organizationId: organization.id,
        details: { slug: organization.slug, name: organization.name, users: ending.userIds.length },
      }));
      await em.nativeDelete(Organization, { id: organization.id });
      await this.#endSessions(ending, { preCommit: true });
      return ending;
    });
    await this.#endSessions(sessions);
    // Roles of the organization are gone; cached permission sets of them must go too.
    await this.#permissions.invalidate();
  }

  /** The organization, locked for a change, or 404 when the actor cannot see it. */
  async #lockVisible(em: EntityManager, actor: Actor, organizationId: string): Promise<Organization> {
    const scope = organizationFilter(actor);
    if (scope && scope !== organizationId) throw new AppError('resource.not_found', 'No such organization');
    const organization = await em.findOne(Organization, { id: organizationId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    assertThat(organization, 'resource.not_found', 'No such organization');
    return organization;
  }

  /**
   * Nobody switches off the organization they act from (they would lock themselves out), and an
   * organization holding every remaining active super admin stays, or nobody could administer Latchkey.
   */
  async #assertMayEnd(em: EntityManager, actor: Actor, organization: Organization): Promise<void> {
    if (organization.id === actor.organizationId) throw new AppError('auth.forbidden', 'You cannot disable or delete your own organization');
    const row = await queryOne<{ inside: number; outside: number }>(
      em,
      `select count(*) filter (where u.organization_id = ?)::int as inside,
              count(*) filter (where u.organization_id <> ? and o.is_active)::int as outside
         from app_user u join organization o on o.id = u.organization_id
         join user_role ur on ur.user_id = u.id join role r on r.id = ur.role_id
        where r.key = 'super_admin' and r.organization_id is null and u.is_active`,
      [organization.id, organization.id],
    );
    if (row && row.inside > 0 && row.outside === 0) {
      throw new AppError('user.last_super_admin', 'This organization holds the last active super admins');
    }
  }

  async #sessionsOf(em: Pick<EntityManager, 'getConnection' | 'getTransactionContext'>, organizationId: string): Promise<Sessions> {
    // One after another: inside a transaction they share one connection.
    const users = await queryRows<{ id: string }>(em, 'select id from app_user where organization_id = ?', [organizationId]);
    const grants = await queryRows<{ id: string }>(
      em,
      `select a.id from oidc_artifact a join app_user u on u.id::text = a.account_id
        where a.model = 'Grant' and u.organization_id = ?`,
      [organizationId],
    );
    // The organization's applications and its users' personal clients.
    const clients = await queryRows<{ client_id: string }>(
      em,
      `select c.client_id from oauth_client c left join app_user u on u.id = c.owner_id
        where c.organization_id = ? or u.organization_id = ?`,
      [organizationId, organizationId],
    );
    return { userIds: users.map((row) => row.id), grantIds: grants.map((row) => row.id), clientIds: clients.map((row) => row.client_id) };
  }

  /**
   * Bumps the users' and clients' token generations (every token minted so far fails its next
   * check, on every process). After the commit it also ends the grants, whose rows the grant
   * revoker deletes through its own connection, and drops cached clients everywhere.
   */
  async #endSessions(sessions: Sessions, options: { preCommit?: boolean } = {}): Promise<void> {
    await inBatches(sessions.userIds, (userId) => this.#revocation.revokeUserTokens(userId));
    await inBatches(sessions.clientIds, (clientId) => this.#revocation.revokeClientTokens(clientId));
    if (options.preCommit) return;
    await inBatches(sessions.grantIds, (grantId) => this.#revokeGrant(grantId));
    await this.#clients.invalidate();
  }
}

function slugTaken(slug: string): AppError {
  return new AppError('organization.slug_taken', `An organization with slug "${slug}" exists already`);
}
