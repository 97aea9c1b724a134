// User management by admins (API.md "users"): inside the actor's organization only, never on
// themselves for destructive changes, never beyond their own power, and every change that lowers
// a user's rights ends that user's tokens at the next call on every process.
import { LockMode, type EntityManager, type MikroORM } from '@mikro-orm/postgresql';

import { Organization } from '../db/entities/organization.entity.ts';
import { Role } from '../db/entities/role.entity.ts';
import { User } from '../db/entities/user.entity.ts';
import { AppError, assertThat } from '../platform/errors.ts';
import { containsPattern, executeStatement, queryOne, queryRows } from '../platform/database.ts';
import type { ReadReplicas } from '../platform/read-replicas.ts';
import { auditEntry, recordAudit } from './audit.service.ts';
import { personalClientMetadata } from './bootstrap.service.ts';
import type { ClientRegistry } from './client-registry.service.ts';
import type { EmailVerificationService } from './email-verification.service.ts';
import { revokeLinkTokens } from './link-tokens.service.ts';
import { generatePassword, hashPassword } from './passwords.ts';
import { assertPasswordPolicy } from './password-policy.ts';
import { SUPER_ADMIN } from './rbac.service.ts';
import { assertOrganizationHasRoom } from './organization-capacity.ts';
import type { RevocationService } from './revocation.service.ts';
import type { RolesService } from './roles.service.ts';
import { isSuperAdmin, organizationFilter, type Actor } from './tenancy.ts';
import {
  applyProfileAttributes, nameChanges, profileColumns, profileFrom, replacedProfileAttributes, wholeName, type PersonName, type ProfileAttributes,
  type ProfileRow, type UserProfile,
} from './users.service.ts';

export interface UserFilters {
  search?: string;
  role?: string;
  is_active?: boolean;
  organization_id?: string;
  location_id?: string;
}

export interface NewUser extends PersonName, ProfileAttributes {
  email: string;
  username?: string;
  password?: string;
  role?: string;
  organization_id?: string;
  create_client?: boolean;
  /** true: the admin vouches for the address, no mail. Otherwise the user starts unverified and gets a verification link. */
  is_verified?: boolean;
}

export interface UserChanges extends PersonName, ProfileAttributes {
  email?: string;
  username?: string | null;
  is_active?: boolean;
  is_verified?: boolean;
}

export class UsersAdminService {
  readonly #orm: MikroORM;
  readonly #clients: ClientRegistry;
  readonly #revocation: RevocationService;
  readonly #roles: RolesService;
  readonly #revokeGrant: (grantId: string) => Promise<void>;
  readonly #reads: ReadReplicas;
  readonly #emailVerification: EmailVerificationService;

  constructor(deps: {
    orm: MikroORM; reads: ReadReplicas; clientRegistry: ClientRegistry; revocation: RevocationService; roles: RolesService;
    revokeGrant: (grantId: string) => Promise<void>; emailVerification: EmailVerificationService;
  }) {
    this.#orm = deps.orm;
    this.#emailVerification = deps.emailVerification;
    this.#reads = deps.reads;
    this.#clients = deps.clientRegistry;
    this.#revocation = deps.revocation;
    this.#roles = deps.roles;
    this.#revokeGrant = deps.revokeGrant;
  }

  async list(actor: Actor, filters: UserFilters, page: { limit: number; offset: number }): Promise<{ count: number; results: UserProfile[] }> {
    const scope = organizationFilter(actor) ?? filters.organization_id;
    const conditions = ['true'];
    const params: unknown[] = [];
    if (scope) { conditions.push('u.organization_id = ?'); params.push(scope); }
    if (filters.is_active !== undefined) { conditions.push('u.is_active = ?'); params.push(filters.is_active); }
    if (filters.search) {
      // Names, addresses and the profile's company and contact: what people look a user up by.
      const searched = [`u.email`, `u.username`, `(u.first_name || ' ' || u.last_name)`, 'u.organisation', 'u.contact_name', 'u.contact_email', 'u.industry'];
      conditions.push(`(${searched.map((column) => `${column} ilike ?`).join(' or ')})`);
      params.push(...searched.map(() => containsPattern(filters.search!)));
    }
    if (filters.location_id) {
      conditions.push('exists (select 1 from user_location ul where ul.user_id = u.id and ul.location_id = ?)');
      params.push(filters.location_id);
    }
    if (filters.role) {
      conditions.push('exists (select 1 from user_role fr join role frr on frr.id = fr.role_id where fr.user_id = u.id and (frr.key = lower(?) or lower(frr.name) = lower(?)))');
      params.push(filters.role, filters.role);
    }
    const where = conditions.join(' and ');
    // A list read: a replica may serve it.
    const reads = await this.#reads.for(actor);
    const [rows, total] = await Promise.all([
      queryRows<ProfileRow>(reads, `${profileColumns} where ${where} group by u.id, o.id order by u.created_at desc, u.id limit ? offset ?`,
        [...params, page.limit, page.offset]),
      queryOne<{ count: number }>(reads, `select count(*)::int as count from app_user u where ${where}`, params),
    ]);
    return { count: total?.count ?? 0, results: rows.map(profileFrom) };
  }

  async get(actor: Actor, userId: string): Promise<UserProfile> {
    const scope = organizationFilter(actor);
    const row = await queryOne<ProfileRow>(this.#orm.em,
      `${profileColumns} where u.id = ? and (?::uuid is null or u.organization_id = ?) group by u.id, o.id`, [userId, scope ?? null, scope ?? null]);
    assertThat(row, 'resource.not_found', 'No such user');
    return profileFrom(row);
  }

  /** The user, loaded for a change, or 404 when outside the actor's organization. */
  async #target(em: EntityManager, actor: Actor, userId: string): Promise<User> {
    const scope = organizationFilter(actor);
    const user = await em.findOne(User, { id: userId, ...(scope ? { organization: scope } : {}) }, { populate: ['roles', 'roles.permissions'] });
    assertThat(user, 'resource.not_found', 'No such user');
    return user;
  }

  /** Nobody manages someone who holds more than they do (an org admin cannot touch a super admin). */
  async #assertMayManage(actor: Actor, target: User): Promise<void> {
    for (const role of target.roles) {
      await this.#roles.assertMayAssign(actor, UsersAdminService.#roleFacts(role));
    }
  }

  static #notSelf(actor: Actor, target: User, what: string): void {
    if (actor.userId === target.id) throw new AppError('auth.forbidden', `You cannot ${what} yourself`);
  }

  /**
   * The active role of the organization (or the global super_admin) that people call `written`:
   * its key, or its name whatever the case ("Guest" is the built-in guest). Names and keys share
   * one namespace (RolesService), so at most one role answers.
   */
  static async #roleNamed(em: EntityManager, organizationId: string, written: string): Promise<Role> {
    const found = await queryOne<{ id: string }>(em,
      `select id from role where is_active and (organization_id = ? or organization_id is null)
          and (key = lower(?) or lower(name) = lower(?)) limit 1`, [organizationId, written, written]);
    const role = found && await em.findOne(Role, { id: found.id }, { populate: ['permissions'] });
    if (!role) throw new AppError('request.validation_failed', `No role named "${written}"`, { errors: [{ path: ['body', 'role'], message: 'names no role of the organization', code: 'not_found' }] });
    return role;
  }

  static #roleFacts(role: Role) {
    return { key: role.key, name: role.name, permissions: role.permissions.getItems().map((permission) => permission.name) };
  }

  async #assertNotLastSuperAdmin(em: EntityManager, target: User): Promise<void> {
    if (!target.roles.getItems().some((role) => role.key === SUPER_ADMIN)) return;
    const others = await queryOne<{ count: number }>(em,
      `select count(*)::int as count from app_user u join user_role ur on ur.user_id = u.id join role r on r.id = ur.role_id
        where r.key = ? and r.organization_id is null and u.is_active and u.id <> ?`, [SUPER_ADMIN, target.id]);
    if ((others?.count ?? 0) === 0) throw new AppError('user.last_super_admin', 'The last active super admin cannot be removed, disabled or demoted');
  }

  /** Every token of the user stops at the next call; with `grants`, their sessions end as well. */
  async #endTokens(userId: string, options: { grants: boolean }): Promise<void> {
    await this.#revocation.revokeUserTokens(userId);
    // Personal clients cache their owner's roles and status.
    await this.#clients.invalidate();
    if (!options.grants) return;
    const grants = await queryRows<{ id: string }>(this.#orm.em, `select id from oidc_artifact where model = 'Grant' and account_id = ?`, [userId]);
    for (const grant of grants) await this.#revokeGrant(grant.id);
  }

  async create(actor: Actor, input: NewUser): Promise<{ user: UserProfile; temporary_password?: string; client?: { client_id: string; client_secret: string } }> {
    const email = input.email.trim().toLowerCase();
    const { firstName, lastName } = wholeName(input);
    if (input.password) {
      await assertPasswordPolicy(input.password, { email, username: input.username, firstName, lastName }, 'password');
    }
    const password = input.password ?? generatePassword();
    const passwordHash = await hashPassword(password);
    const organizationId = isSuperAdmin(actor) ? input.organization_id ?? actor.organizationId : organizationFilter(actor);
    const created = await this.#orm.em.fork().transactional(async (em) => {
      const organization = await em.findOne(Organization, { id: organizationId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!organization) throw new AppError('request.validation_failed', 'No such organization', { errors: [{ path: ['body', 'organization_id'], message: 'names no organization', code: 'not_found' }] });
      await assertOrganizationHasRoom(em, organization);
      const role = await UsersAdminService.#roleNamed(em, organization.id, input.role ?? 'basic_user');
      await this.#roles.assertMayAssign(actor, UsersAdminService.#roleFacts(role));
      if (await em.findOne(User, { organization, email })) throw new AppError('user.email_taken', 'A user with this email exists in the organization');
      if (input.username && await em.findOne(User, { organization, username: input.username })) throw new AppError('user.username_taken', 'This username is taken');
      const user = em.create(User, {
        organization, email, username: input.username ?? null, firstName, lastName, passwordHash, isVerified: input.is_verified === true,
      });
      applyProfileAttributes(user, input);
      user.roles.add(role);
      await em.flush();
      if (!user.isVerified) await this.#emailVerification.sendLink(em, { id: user.id, email, organizationId: organization.id, firstName }, actor);
      const client = input.create_client
        ? await this.#clients.create({ kind: 'personal', ownerId: user.id, organizationId: organization.id, metadata: personalClientMetadata(`Personal client of ${email}`) }, em)
        : undefined;
      recordAudit(em, auditEntry(actor, {
        action: 'user.create', resource: 'user', resourceId: user.id, targetId: user.id, organizationId: organization.id,
        details: { role: role.key, temporary_password: !input.password, client_id: client?.clientId },
      }));
      return { userId: user.id, client };
    });
    return {
      user: await this.get(actor, created.userId),
      ...(input.password ? {} : { temporary_password: password }),
      ...(created.client ? { client: { client_id: created.client.clientId, client_secret: created.client.clientSecret! } } : {}),
    };
  }

  /**
   * PATCH: the fields given. An is_active that changes the user's status goes through the rules
   * and audit of POST /enable and /disable (nobody disables themselves, the last super admin
   * stays); one that repeats the status changes nothing.
   */
  async update(actor: Actor, userId: string, changes: UserChanges): Promise<UserProfile> {
    let verificationChanged = false;
    const statusChange = await this.#orm.em.fork().transactional(async (em) => {
      const user = await this.#target(em, actor, userId);
      if (actor.userId !== user.id) await this.#assertMayManage(actor, user);
      const statusChange = changes.is_active !== undefined && changes.is_active !== user.isActive ? changes.is_active : undefined;
      if (statusChange !== undefined) await this.#changeStatus(em, actor, user, statusChange);
      const email = changes.email?.trim().toLowerCase();
      if (email && email !== user.email && await em.findOne(User, { organization: user.organization, email })) throw new AppError('user.email_taken', 'A user with this email exists in the organization');
      if (changes.username && changes.username !== user.username && await em.findOne(User, { organization: user.organization, username: changes.username })) throw new AppError('user.username_taken', 'This username is taken');
      const emailChanged = !!email && email !== user.email;
      if (email) user.email = email;
      if (changes.username !== undefined) user.username = changes.username;
      const names = nameChanges(changes);
      if (names.firstName !== undefined) user.firstName = names.firstName;
      if (names.lastName !== undefined) user.lastName = names.lastName;
      // A new address is unverified until its link is followed, unless the admin vouches for it in the same request.
      const wasVerified = user.isVerified;
      if (changes.is_verified !== undefined) user.isVerified = changes.is_verified;
      else if (emailChanged) user.isVerified = false;
      verificationChanged = emailChanged || user.isVerified !== wasVerified;
      if (emailChanged && !user.isVerified) {
        await this.#emailVerification.sendLink(em, { id: user.id, email: user.email, organizationId: user.organization.id, firstName: user.firstName }, actor);
      }
      applyProfileAttributes(user, changes);
      recordAudit(em, auditEntry(actor, { action: 'user.update', resource: 'user', resourceId: user.id, targetId: user.id, organizationId: user.organization.id, details: { fields: Object.keys(changes) } }));
      return statusChange;
    });
    await this.#afterStatusChange(userId, statusChange);
    if (verificationChanged) await this.#emailVerification.addressChanged();
    return this.get(actor, userId);
  }

  /**
   * PUT: the user as the body describes them, through the rules and audit of PATCH. The name is
   * set as on create (the contact name when no name is given) and profile attributes left out are
   * cleared. Kept when left out: email and username, the identifiers people sign in with (seed
   * 004's PUT carries no email), and is_active and is_verified, since a PUT never switches anyone
   * off by omission. Roles, organization and password have operations of their own.
   */
  async replace(actor: Actor, userId: string, fields: UserChanges): Promise<UserProfile> {
    const { full_name: _full, first_name: _first, last_name: _last, ...rest } = fields;
    const { firstName, lastName } = wholeName(fields);
    return this.update(actor, userId, { ...rest, ...replacedProfileAttributes(fields), first_name: firstName, last_name: lastName });
  }

  async delete(actor: Actor, userId: string): Promise<void> {
    await this.#orm.em.fork().transactional(async (em) => {
      const user = await this.#target(em, actor, userId);
      UsersAdminService.#notSelf(actor, user, 'delete');
      await this.#assertMayManage(actor, user);
      await this.#assertNotLastSuperAdmin(em, user);
      recordAudit(em, auditEntry(actor, { action: 'user.delete', resource: 'user', resourceId: user.id, targetId: user.id, organizationId: user.organization.id, details: { email: user.email } }));
      em.remove(user);
    });
    await this.#endTokens(userId, { grants: true });
  }

  async setActive(actor: Actor, userId: string, active: boolean): Promise<UserProfile> {
    await this.#orm.em.fork().transactional(async (em) => {
      const user = await this.#target(em, actor, userId);
      await this.#changeStatus(em, actor, user, active);
    });
    await this.#afterStatusChange(userId, active);
    return this.get(actor, userId);
  }

  /** Enabling or disabling, by POST /enable, /disable or a PATCH of is_active: one set of rules, one audit action. */
  async #changeStatus(em: EntityManager, actor: Actor, user: User, active: boolean): Promise<void> {
    UsersAdminService.#notSelf(actor, user, active ? 'enable' : 'disable');
    await this.#assertMayManage(actor, user);
    if (!active) await this.#assertNotLastSuperAdmin(em, user);
    user.isActive = active;
    recordAudit(em, auditEntry(actor, { action: active ? 'user.enable' : 'user.disable', resource: 'user', resourceId: user.id, targetId: user.id, organizationId: user.organization.id }));
  }

  /** After the commit: a disabled user's tokens and sessions end; personal clients re-read their owner's status. */
  async #afterStatusChange(userId: string, active: boolean | undefined): Promise<void> {
    if (active === false) await this.#endTokens(userId, { grants: true });
    else if (active === true) await this.#clients.invalidate();
  }

  /** Sets a new password (or a generated temporary one, answered once) and ends every session. */
  async resetPassword(actor: Actor, userId: string, newPassword?: string): Promise<{ temporary_password?: string }> {
    const password = newPassword ?? generatePassword();
    const passwordHash = await hashPassword(password);
    await this.#orm.em.fork().transactional(async (em) => {
      const user = await this.#target(em, actor, userId);
      if (actor.userId !== user.id) await this.#assertMayManage(actor, user);
      if (newPassword) {
        await assertPasswordPolicy(newPassword, user, 'new_password');
      }
      user.passwordHash = passwordHash;
      // A reset link the user asked for before must not undo the admin's reset.
      await revokeLinkTokens(em, { userId: user.id, purpose: 'reset_password' });
      recordAudit(em, auditEntry(actor, { action: 'user.reset_password', resource: 'user', resourceId: user.id, targetId: user.id, organizationId: user.organization.id, details: { temporary: !newPassword } }));
    });
    await this.#endTokens(userId, { grants: true });
    // A browser signed in with the old password asks for the new one.
    await this.#revocation.endUserSessions(userId);
    return newPassword ? {} : { temporary_password: password };
  }

  /**
   * Removes every second factor of the user and their recovery codes (a lost phone), audited in
   * the same transaction, and ends their grants: the next sign-in asks for the password alone, or
   * for enrolment under a policy. Not on oneself (sign in and use /me/mfa), nor on someone who
   * holds more than the actor.
   */
  async resetMfa(actor: Actor, userId: string): Promise<void> {
    await this.#orm.em.fork().transactional(async (em) => {
      const user = await this.#target(em, actor, userId);
      UsersAdminService.#notSelf(actor, user, 'reset the second factors of');
      await this.#assertMayManage(actor, user);
      const factors = await executeStatement(em, 'delete from mfa_factor where user_id = ?', [user.id]);
      const codes = await executeStatement(em, 'delete from recovery_code where user_id = ?', [user.id]);
      recordAudit(em, auditEntry(actor, {
        action: 'user.mfa_reset', resource: 'user', resourceId: user.id, targetId: user.id, organizationId: user.organization.id,
        details: { factors_removed: factors, recovery_codes_removed: codes },
      }));
    });
    await this.#endTokens(userId, { grants: true });
  }

  /** Replaces the user's roles with one role (API.md `promote`). */
  async promote(actor: Actor, userId: string, roleName: string): Promise<UserProfile> {
    await this.#orm.em.fork().transactional(async (em) => {
      const user = await this.#target(em, actor, userId);
      UsersAdminService.#notSelf(actor, user, 'change the roles of');
      await this.#assertMayManage(actor, user);
      const role = await UsersAdminService.#roleNamed(em, user.organization.id, roleName);
      await this.#roles.assertMayAssign(actor, UsersAdminService.#roleFacts(role));
      if (role.key !== SUPER_ADMIN) await this.#assertNotLastSuperAdmin(em, user);
      const before = user.roles.getItems().map((held) => held.key);
      user.roles.set([role]);
      recordAudit(em, auditEntry(actor, { action: 'user.promote', resource: 'user', resourceId: user.id, targetId: user.id, organizationId: user.organization.id, details: { from: before, to: [role.key] } }));
    });
    await this.#endTokens(userId, { grants: false });
    return this.get(actor, userId);
  }

  async changeRoles(actor: Actor, userId: string, roleIds: string[], change: 'add' | 'remove'): Promise<UserProfile> {
    await this.#orm.em.fork().transactional(async (em) => {
      const user = await this.#target(em, actor, userId);
      UsersAdminService.#notSelf(actor, user, 'change the roles of');
      await this.#assertMayManage(actor, user);
      const roles = await em.find(Role, { id: { $in: roleIds }, $or: [{ organization: user.organization.id }, { organization: null }] }, { populate: ['permissions'] });
      if (roles.length !== new Set(roleIds).size) throw new AppError('resource.not_found', 'One or more roles do not exist in the user\'s organization');
      for (const role of roles) await this.#roles.assertMayAssign(actor, UsersAdminService.#roleFacts(role));
      if (change === 'add') {
        for (const role of roles) user.roles.add(role);
      } else {
        if (roles.some((role) => role.key === SUPER_ADMIN)) await this.#assertNotLastSuperAdmin(em, user);
        for (const role of roles) user.roles.remove(role);
      }
      recordAudit(em, auditEntry(actor, {
        action: change === 'add' ? 'user.roles_add' : 'user.roles_remove', resource: 'user', resourceId: user.id, targetId: user.id,
        organizationId: user.organization.id, details: { roles: roles.map((role) => role.key) },
      }));
    });
    await this.#endTokens(userId, { grants: false });
    return this.get(actor, userId);
  }

  /** The user's OAuth clients: ids, names and dates, never secrets. */
  async clientsOf(actor: Actor, userId: string) {
    await this.get(actor, userId);
    const rows = await queryRows<{ client_id: string; kind: string; metadata: Record<string, unknown>; created_at: Date; updated_at: Date }>(
      this.#orm.em, 'select client_id, kind, metadata, created_at, updated_at from oauth_client where owner_id = ? order by created_at desc', [userId]);
    return rows.map((row) => ({
      client_id: row.client_id, client_name: String(row.metadata.client_name ?? ''), kind: row.kind,
      created_at: new Date(row.created_at).toISOString(), updated_at: new Date(row.updated_at).toISOString(),
    }));
  }
}
