// What a signed-in user may do to their own account (API.md "me"): profile fields, password,
// deactivation and deletion. Never their roles or status beyond switching themselves off.
import type { MikroORM } from '@mikro-orm/postgresql';

import { User } from '../db/entities/user.entity.ts';
import { AppError, assertThat, fieldError } from '../platform/errors.ts';
import { queryOne, queryRows } from '../platform/database.ts';
import { auditEntry, recordAudit } from './audit.service.ts';
import type { EmailVerificationService } from './email-verification.service.ts';
import { revokeLinkTokens } from './link-tokens.service.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { assertPasswordPolicy } from './password-policy.ts';
import type { RevocationService } from './revocation.service.ts';
import type { Actor } from './tenancy.ts';
import {
  applyProfileAttributes, replacedProfileAttributes, wholeName, type PersonName, type ProfileAttributes,
} from './users.service.ts';

/** The user a request acts for; a machine token of an application acts for none (403). */
export function actingUser(actor: Pick<Actor, 'userId'>): string {
  if (!actor.userId) throw new AppError('auth.user_required', 'This token acts for a client, not a user');
  return actor.userId;
}

export interface ProfileChanges {
  email?: string;
  username?: string | null;
  firstName?: string;
  lastName?: string;
  attributes?: ProfileAttributes;
}

/** Ends grants: the provider's artefacts and, through the revocation state, every token minted from them. */
export type GrantRevoker = (grantId: string) => Promise<void>;

export class SelfService {
  readonly #orm: MikroORM;
  readonly #revocation: RevocationService;
  readonly #revokeGrant: GrantRevoker;
  readonly #emailVerification: EmailVerificationService;

  constructor(orm: MikroORM, revocation: RevocationService, revokeGrant: GrantRevoker, emailVerification: EmailVerificationService) {
    this.#orm = orm;
    this.#revocation = revocation;
    this.#revokeGrant = revokeGrant;
    this.#emailVerification = emailVerification;
  }

  async updateProfile(actor: Actor, changes: ProfileChanges): Promise<void> {
    const userId = actingUser(actor);
    const addressChanged = await this.#orm.em.fork().transactional(async (em) => {
      const user = await em.findOne(User, { id: userId, isActive: true });
      assertThat(user, 'resource.not_found', 'Your account no longer exists');
      const email = changes.email?.trim().toLowerCase();
      if (email && email !== user.email && await em.findOne(User, { organization: user.organization, email })) {
        throw new AppError('user.email_taken', 'An account with this email exists already');
      }
      if (changes.username && changes.username !== user.username && await em.findOne(User, { organization: user.organization, username: changes.username })) {
        throw new AppError('user.username_taken', 'This username is taken');
      }
      const attributes = changes.attributes ?? {};
      const changed = [
        ...Object.keys(changes).filter((key) => key !== 'attributes' && changes[key as keyof ProfileChanges] !== undefined),
        ...Object.keys(attributes).filter((key) => attributes[key as keyof ProfileAttributes] !== undefined),
      ];
      const newAddress = !!email && email !== user.email;
      if (email && newAddress) {
        // A new address is unverified until the link mailed to it is followed.
        user.email = email;
        user.isVerified = false;
        await this.#emailVerification.sendLink(em, { id: user.id, email, organizationId: user.organization.id, firstName: changes.firstName ?? user.firstName }, actor);
      }
      if (changes.username !== undefined) user.username = changes.username;
      if (changes.firstName !== undefined) user.firstName = changes.firstName;
      if (changes.lastName !== undefined) user.lastName = changes.lastName;
      applyProfileAttributes(user, attributes);
      recordAudit(em, auditEntry(actor, {
        action: 'user.profile_update', resource: 'user', resourceId: user.id, targetId: user.id, organizationId: user.organization.id,
        details: { fields: changed },
      }));
      return newAddress;
    });
    if (addressChanged) await this.#emailVerification.addressChanged();
  }

  /**
   * PUT /me: the profile as the body describes it, through the rules and audit of a PATCH: the
   * name given, profile attributes left out cleared. Email and username, which the user signs in
   * with, are kept when left out.
   */
  async replaceProfile(actor: Actor, fields: PersonName & ProfileAttributes & { email?: string; username?: string | null }): Promise<void> {
    const { email, username, full_name: _full, first_name: _first, last_name: _last, ...attributes } = fields;
    await this.updateProfile(actor, { email, username, ...wholeName(fields), attributes: replacedProfileAttributes(attributes) });
  }

  /** Checks the current password, sets the new one, and ends the user's grants but `keepGrantId` (the caller's own). */
  async changePassword(actor: Actor, currentPassword: string, newPassword: string, keepGrantId?: string): Promise<void> {
    const userId = actingUser(actor);
    const em = this.#orm.em.fork();
    const user = await em.findOne(User, { id: userId, isActive: true }, { fields: ['id', 'email', 'username', 'firstName', 'lastName', 'passwordHash', 'organization'] });
    assertThat(user, 'resource.not_found', 'Your account no longer exists');
    if (!await verifyPassword(user.passwordHash, currentPassword)) {
      throw new AppError('auth.wrong_password', 'The current password is not right');
    }
    await assertPasswordPolicy(newPassword, user, 'new_password');
    if (await verifyPassword(user.passwordHash, newPassword)) throw fieldError(['body', 'new_password'], 'must differ from the current password', 'unchanged');
    const passwordHash = await hashPassword(newPassword);
    await em.transactional(async (tx) => {
      await tx.nativeUpdate(User, { id: user.id }, { passwordHash });
      // A reset link asked for before the change must not undo it.
      await revokeLinkTokens(tx, { userId: user.id, purpose: 'reset_password' });
      recordAudit(tx, auditEntry(actor, {
        action: 'auth.password_change', resource: 'user', resourceId: user.id, targetId: user.id, organizationId: user.organization.id,
      }));
    });
    for (const grantId of await this.#grantsOf(user.id)) {
      if (grantId !== keepGrantId) await this.#revokeGrant(grantId);
    }
  }

  async deactivate(actor: Actor): Promise<void> {
    const userId = actingUser(actor);
    await this.#assertNotLastSuperAdmin(userId);
    await this.#orm.em.fork().transactional(async (em) => {
      const user = await em.findOne(User, { id: userId, isActive: true });
      assertThat(user, 'resource.not_found', 'Your account no longer exists');
      user.isActive = false;
      recordAudit(em, auditEntry(actor, {
        action: 'user.deactivate_self', resource: 'user', resourceId: user.id, targetId: user.id, organizationId: user.organization.id,
      }));
    });
    await this.#endEverything(userId);
  }

  async delete(actor: Actor): Promise<void> {
    const userId = actingUser(actor);
    await this.#assertNotLastSuperAdmin(userId);
    const grants = await this.#grantsOf(userId);
    await this.#orm.em.fork().transactional(async (em) => {
      const user = await em.findOne(User, { id: userId });
      assertThat(user, 'resource.not_found', 'Your account no longer exists');
      recordAudit(em, auditEntry(actor, {
        action: 'user.delete_self', resource: 'user', resourceId: user.id, targetId: user.id, organizationId: user.organization.id,
        details: { email: user.email },
      }));
      await em.nativeDelete(User, { id: user.id });
    });
    await this.#endEverything(userId, grants);
  }

  async #endEverything(userId: string, grants?: string[]): Promise<void> {
    await this.#revocation.revokeUserTokens(userId);
    for (const grantId of grants ?? await this.#grantsOf(userId)) await this.#revokeGrant(grantId);
  }

  async #grantsOf(userId: string): Promise<string[]> {
    const rows = await queryRows<{ id: string }>(this.#orm.em, `select id from oidc_artifact where model = 'Grant' and account_id = ?`, [userId]);
    return rows.map((row) => row.id);
  }

  async #assertNotLastSuperAdmin(userId: string): Promise<void> {
    const row = await queryOne<{ is_super: boolean; others: number }>(
      this.#orm.em,
      `select exists(select 1 from user_role ur join role r on r.id = ur.role_id
                      where ur.user_id = ? and r.key = 'super_admin' and r.organization_id is null) as is_super,
              (select count(*)::int from app_user u join user_role ur on ur.user_id = u.id join role r on r.id = ur.role_id
                where r.key = 'super_admin' and r.organization_id is null and u.is_active and u.id <> ?) as others`,
      [userId, userId],
    );
    if (row?.is_super && row.others === 0) throw new AppError('user.last_super_admin', 'The last active super admin cannot remove themselves');
  }
}
