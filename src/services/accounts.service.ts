// Signing in with a password: the one path shared by the password grant, the JSON login and
// the login page. Unknown user, wrong password and disabled account fail alike, in the same time.
import type { MikroORM } from '@mikro-orm/postgresql';

import { executeStatement, queryRows } from '../platform/database.ts';
import { auditEntry, auditRow } from './audit.service.ts';
import { secondFactorStandingColumns, type SecondFactorStanding } from './mfa.service.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { SignInThrottle } from './sign-in-throttle.ts';

export interface SignInAttempt {
  /** Email or username. */
  identifier: string;
  password: string;
  organizationSlug?: string;
  ip: string;
  userAgent?: string;
  /** The OAuth client the sign-in is for, recorded in the audit trail. */
  clientId?: string;
  via: 'password_grant' | 'login_page';
}

export interface SignedInUser {
  userId: string;
  organizationId: string;
  /** Whether a second factor must follow the password (the user has one), or be enrolled first (a policy asks for one). */
  secondFactor: SecondFactorStanding;
}

/** The one answer for every credential failure: it never says which part was wrong. */
export class SignInFailed extends Error {
  constructor() {
    super('invalid credentials');
    this.name = 'SignInFailed';
  }
}

/**
 * REQUIRE_VERIFIED_EMAIL: the credentials were right, but the account's address is not verified
 * yet. Only told to a caller who gave the right password, so it reveals nothing to a guesser.
 */
export class EmailNotVerified extends Error {
  readonly userId: string;
  constructor(userId: string) {
    super('the e-mail address is not verified');
    this.name = 'EmailNotVerified';
    this.userId = userId;
  }
}

interface CandidateRow {
  id: string;
  organization_id: string;
  password_hash: string;
  is_active: boolean;
  is_verified: boolean;
  organization_active: boolean;
  has_factor: boolean;
  mfa_required: boolean;
}

export interface AccountsOptions {
  /** REQUIRE_VERIFIED_EMAIL: refuse an unverified account with EmailNotVerified. */
  requireVerifiedEmail?: boolean;
  /** MFA_REQUIRED_FOR_ADMINS: a super admin without a factor must enrol one. */
  mfaRequiredForAdmins?: boolean;
  onFailure?: (via: SignInAttempt['via']) => void;
}

// Verified against when no user matches, so an unknown identifier costs the same argon2 time.
let dummyHash: Promise<string> | undefined;
function timingDummy(): Promise<string> {
  dummyHash ??= hashPassword(`dummy-${Math.random()}`);
  return dummyHash;
}

export class AccountsService {
  readonly #orm: MikroORM;
  readonly #throttle: SignInThrottle;
  readonly #onFailure: (via: SignInAttempt['via']) => void;
  readonly #requireVerifiedEmail: boolean;
  readonly #standingColumns: string;

  constructor(orm: MikroORM, throttle: SignInThrottle, options: AccountsOptions = {}) {
    this.#orm = orm;
    this.#throttle = throttle;
    this.#onFailure = options.onFailure ?? (() => {});
    this.#requireVerifiedEmail = options.requireVerifiedEmail ?? false;
    this.#standingColumns = secondFactorStandingColumns(options.mfaRequiredForAdmins ?? false);
  }

  async signIn(attempt: SignInAttempt): Promise<SignedInUser> {
    const identifier = attempt.identifier.trim().toLowerCase();
    const throttleKey = SignInThrottle.accountKey(identifier, attempt.organizationSlug);
    const standing = await this.#throttle.assertAllowed(throttleKey, attempt.ip);

    const candidates = await queryRows<CandidateRow>(
      this.#orm.em,
      `select u.id, u.organization_id, u.password_hash, u.is_active, u.is_verified, o.is_active as organization_active, ${this.#standingColumns}
         from app_user u join organization o on o.id = u.organization_id
        where (lower(u.email) = ? or lower(u.username) = ?) and (?::text is null or o.slug = ?)
        limit 2`,
      [identifier, identifier, attempt.organizationSlug ?? null, attempt.organizationSlug ?? null],
    );
    // The same email in two organizations needs the organization slug to tell them apart.
    const user = candidates.length === 1 ? candidates[0] : undefined;
    const passwordMatches = await verifyPassword(user?.password_hash ?? await timingDummy(), attempt.password);
    const allowed = !!user && passwordMatches && user.is_active && user.organization_active;

    if (!allowed) {
      this.#onFailure(attempt.via);
      await this.#throttle.recordFailure(throttleKey, attempt.ip);
      const audit = auditRow(auditEntry({ clientId: attempt.clientId, ip: attempt.ip, userAgent: attempt.userAgent }, {
        action: 'auth.login', resource: 'session', status: 'failure', organizationId: user?.organization_id, targetId: user?.id,
        details: { via: attempt.via, reason: !user ? 'unknown_identifier' : !passwordMatches ? 'wrong_password' : 'disabled' },
      }));
      await executeStatement(this.#orm.em, `insert into audit_log (${audit.columns}) values (${audit.values})`, audit.params);
      throw new SignInFailed();
    }

    await this.#throttle.recordSuccess(throttleKey, standing);
    if (this.#requireVerifiedEmail && !user.is_verified) {
      this.#onFailure(attempt.via);
      const audit = auditRow(auditEntry({ clientId: attempt.clientId, ip: attempt.ip, userAgent: attempt.userAgent }, {
        action: 'auth.login', resource: 'session', status: 'failure', organizationId: user.organization_id, targetId: user.id,
        details: { via: attempt.via, reason: 'email_not_verified' },
      }));
      await executeStatement(this.#orm.em, `insert into audit_log (${audit.columns}) values (${audit.values})`, audit.params);
      throw new EmailNotVerified(user.id);
    }
    const secondFactor = { hasFactor: user.has_factor, required: user.mfa_required };
    const step = secondFactor.hasFactor ? { second_factor: 'pending' } : secondFactor.required ? { second_factor: 'enrolment_required' } : {};
    // The last sign-in and its audit row in one statement, so in one transaction and one round trip.
    const audit = auditRow(auditEntry({ userId: user.id, clientId: attempt.clientId, ip: attempt.ip, userAgent: attempt.userAgent }, {
      action: 'auth.login', resource: 'session', organizationId: user.organization_id, targetId: user.id, details: { via: attempt.via, ...step },
    }));
    await executeStatement(
      this.#orm.em,
      `with signed_in as (update app_user set last_login_at = now() where id = ? returning id)
       insert into audit_log (${audit.columns}) select ${audit.values} from signed_in`,
      [user.id, ...audit.params],
    );
    return { userId: user.id, organizationId: user.organization_id, secondFactor };
  }
}
