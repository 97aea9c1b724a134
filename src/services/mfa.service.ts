// Multi-factor authentication (API.md "Multi-factor authentication"): TOTP (RFC 6238) enrolment
// and checks, recovery codes, and the short-lived mfa_token that carries a password sign-in over
// to its second factor. No Koa here: the API routes, the password grant and the sign-in pages
// all call this one service, so throttling, replay rules and audit rows are the same everywhere.
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

import type { MikroORM } from '@mikro-orm/postgresql';
import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';

import type { Clock } from '../platform/clock.ts';
import { executeStatement, queryOne, queryRows } from '../platform/database.ts';
import { AppError, assertThat } from '../platform/errors.ts';
import type { KeyValueStore } from '../platform/store.ts';
import { auditEntry, auditRow, recordAudit, type AuditActor } from './audit.service.ts';
import { MfaSecretBox } from './mfa-secrets.ts';
import type { SignInThrottle } from './sign-in-throttle.ts';

/** RFC 6238 defaults that every authenticator app understands: SHA-1, 6 digits, 30-second steps. */
const TOTP_PERIOD_SECONDS = 30;
const TOTP_DIGITS = 6;
/** RFC 6238 section 5.2: accept one time step either side for clock drift. */
const TOTP_WINDOW = 1;
/** 160 bits, the HMAC-SHA-1 block RFC 4226 section 4 recommends for the shared secret. */
const TOTP_SECRET_BYTES = 20;

export const RECOVERY_CODE_COUNT = 10;
/** No 0/o, 1/i/l: codes are read off paper. 31 symbols, 12 of them: about 59 bits per code. */
const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
const RECOVERY_CODE_LENGTH = 12;

/** How recent a sign-in must be to remove a factor. */
export const RECENT_SIGN_IN_SECONDS = 5 * 60;

/** An mfa_token lives this long and works for one successful completion. */
export const MFA_TOKEN_TTL_SECONDS = 5 * 60;

/** RFC 8176 values; `otp` covers TOTP codes and recovery codes alike (both one-time codes). */
export const AMR_PASSWORD = 'pwd';
export const AMR_OTP = 'otp';
export const AMR_MFA = 'mfa';
/** RFC 8176 "hwk": proof of possession of a hardware-secured key, a passkey's. */
export const AMR_HWK = 'hwk';
/** The `acr` of a sign-in that passed a second factor, and of one that did not. */
export const ACR_MFA = 'urn:latchkey:mfa';
export const ACR_PASSWORD = 'urn:latchkey:pwd';

export type SecondFactorMethod = 'totp' | 'recovery_code';

export interface MfaFactorView {
  id: string;
  kind: 'totp' | 'passkey';
  name: string | null;
  confirmed: boolean;
  created_at: string;
  last_used_at: string | null;
}

export interface MfaOverview {
  /** Whether the user has a confirmed factor, so a sign-in asks for one. */
  enabled: boolean;
  /** Whether a policy (the organization's `mfa_required`, MFA_REQUIRED_FOR_ADMINS) asks this user for one. */
  required: boolean;
  factors: MfaFactorView[];
  recovery_codes: { remaining: number; generated_at: string | null };
}

export interface TotpEnrolment {
  factor_id: string;
  /** Base32, for typing into an authenticator by hand. */
  secret: string;
  otpauth_uri: string;
  /** The URI as an SVG QR code (markup). */
  qr_svg: string;
}

/** What a pending password sign-in carries to its second factor. */
export interface MfaTokenPayload {
  userId: string;
  clientId: string;
  /** The grant's request, replayed when the second factor completes it. */
  params: Record<string, string>;
}

/** A wrong, reused or malformed second-factor code: one answer for all. */
export class SecondFactorRejected extends Error {
  constructor() {
    super('the second-factor code is not right');
    this.name = 'SecondFactorRejected';
  }
}

/** What a sign-in needs to know about the user's second factor, read in the password check's own query. */
export interface SecondFactorStanding {
  hasFactor: boolean;
  /** A policy asks this user for a factor (organization `mfa_required`, or a super admin under MFA_REQUIRED_FOR_ADMINS). */
  required: boolean;
}

/** The code's kind by its shape: 6 digits is TOTP, 12 symbols of the recovery alphabet a recovery code. */
export function classifyCode(raw: string): { method: SecondFactorMethod; code: string } | undefined {
  const code = raw.replace(/[\s-]/g, '').toLowerCase();
  if (new RegExp(`^\\d{${TOTP_DIGITS}}$`).test(code)) return { method: 'totp', code };
  if (code.length === RECOVERY_CODE_LENGTH && [...code].every((symbol) => RECOVERY_ALPHABET.includes(symbol))) return { method: 'recovery_code', code };
  return undefined;
}

/**
 * The SQL of SecondFactorStanding for `u` (an app_user alias) joined to `o` (its organization),
 * so the password check reads it in its own query: no extra round trip on a sign-in.
 */
export function secondFactorStandingColumns(mfaRequiredForAdmins: boolean): string {
  return `exists(select 1 from mfa_factor f where f.user_id = u.id and f.confirmed_at is not null) as has_factor,
          (o.mfa_required or (${mfaRequiredForAdmins ? 'true' : 'false'} and exists(
             select 1 from user_role ur join role r on r.id = ur.role_id
              where ur.user_id = u.id and r.key = 'super_admin' and r.organization_id is null))) as mfa_required`;
}

function hashRecoveryCode(normalized: string): string {
  return createHash('sha256').update(normalized).digest('hex');
}

function newRecoveryCode(): string {
  let code = '';
  for (let index = 0; index < RECOVERY_CODE_LENGTH; index += 1) code += RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)];
  return `${code.slice(0, 4)}-${code.slice(4, 8)}-${code.slice(8)}`;
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** A new set of recovery codes for the user, in the caller's transaction; the old set goes. Answers the codes, shown once. */
export async function replaceRecoveryCodes(em: Parameters<typeof executeStatement>[0], userId: string): Promise<string[]> {
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
  await executeStatement(em, 'delete from recovery_code where user_id = ?', [userId]);
  const values = codes.map(() => '(?, ?, ?, now())').join(', ');
  await executeStatement(em, `insert into recovery_code (id, user_id, code_hash, created_at) values ${values}`,
    codes.flatMap((code) => [crypto.randomUUID(), userId, hashRecoveryCode(code.replace(/-/g, ''))]));
  return codes;
}

export interface MfaServiceOptions {
  orm: MikroORM;
  store: KeyValueStore;
  throttle: SignInThrottle;
  clock: Clock;
  /** Shown in authenticator apps beside the account: the issuer's host. */
  issuerLabel: string;
  mfaRequiredForAdmins: boolean;
}

export class MfaService {
  readonly #orm: MikroORM;
  readonly #store: KeyValueStore;
  readonly #throttle: SignInThrottle;
  readonly #clock: Clock;
  readonly #issuerLabel: string;
  readonly #mfaRequiredForAdmins: boolean;
  readonly #secrets: MfaSecretBox;

  constructor(options: MfaServiceOptions) {
    this.#orm = options.orm;
    this.#store = options.store;
    this.#throttle = options.throttle;
    this.#clock = options.clock;
    this.#issuerLabel = options.issuerLabel;
    this.#mfaRequiredForAdmins = options.mfaRequiredForAdmins;
    this.#secrets = new MfaSecretBox(options.orm);
  }

  async standing(userId: string): Promise<SecondFactorStanding> {
    const row = await queryOne<{ has_factor: boolean; mfa_required: boolean }>(this.#orm.em,
      `select ${secondFactorStandingColumns(this.#mfaRequiredForAdmins)} from app_user u join organization o on o.id = u.organization_id where u.id = ?`, [userId]);
    return { hasFactor: !!row?.has_factor, required: !!row?.mfa_required };
  }

  async overview(userId: string): Promise<MfaOverview> {
    const [factors, codes, standing] = await Promise.all([
      queryRows<{ id: string; kind: 'totp' | 'passkey'; name: string | null; confirmed_at: Date | null; created_at: Date; last_used_at: Date | null }>(this.#orm.em,
        'select id, kind, name, confirmed_at, created_at, last_used_at from mfa_factor where user_id = ? order by created_at', [userId]),
      queryOne<{ remaining: number; generated_at: Date | null }>(this.#orm.em,
        'select count(*) filter (where used_at is null)::int as remaining, max(created_at) as generated_at from recovery_code where user_id = ?', [userId]),
      this.standing(userId),
    ]);
    const iso = (value: Date | null) => (value ? new Date(value).toISOString() : null);
    return {
      enabled: standing.hasFactor,
      required: standing.required,
      factors: factors.map((factor) => ({
        id: factor.id, kind: factor.kind, name: factor.name, confirmed: factor.confirmed_at !== null,
        created_at: new Date(factor.created_at).toISOString(), last_used_at: iso(factor.last_used_at),
      })),
      recovery_codes: { remaining: codes?.remaining ?? 0, generated_at: iso(codes?.generated_at ?? null) },
    };
  }

  /**
   * Starts a TOTP enrolment: a new secret replaces any unconfirmed one. A confirmed TOTP must be
   * removed first (409), so an enrolment never silently replaces a working authenticator.
   */
  async startTotp(actor: AuditActor & { userId: string }): Promise<TotpEnrolment> {
    // otpauth draws exactly these bytes from node:crypto randomBytes.
    const secret = new Secret({ size: TOTP_SECRET_BYTES });
    const sealed = await this.#secrets.seal(secret.base32, actor.userId);
    const factorId = await this.#orm.em.fork().transactional(async (em) => {
      const user = await queryOne<{ organization_id: string }>(em, 'select organization_id from app_user where id = ? for update', [actor.userId]);
      assertThat(user, 'resource.not_found', 'Your account no longer exists');
      const existing = await queryOne<{ id: string; confirmed_at: Date | null }>(em,
        `select id, confirmed_at from mfa_factor where user_id = ? and kind = 'totp'`, [actor.userId]);
      if (existing?.confirmed_at) throw new AppError('mfa.totp_exists', 'An authenticator app is enrolled already; remove it first to enrol another');
      const id = crypto.randomUUID();
      if (existing) await executeStatement(em, 'delete from mfa_factor where id = ?', [existing.id]);
      await executeStatement(em,
        `insert into mfa_factor (id, user_id, kind, secret_ciphertext, created_at) values (?, ?, 'totp', ?, now())`, [id, actor.userId, sealed]);
      recordAudit(em, auditEntry(actor, {
        action: 'mfa.totp_start', resource: 'mfa_factor', resourceId: id, targetId: actor.userId, organizationId: user.organization_id,
      }));
      return id;
    });
    return this.#enrolment(factorId, actor.userId, secret.base32);
  }

  /** The enrolment in progress, if any (the sign-in page shows the same secret again on reload). */
  async pendingTotp(userId: string): Promise<TotpEnrolment | undefined> {
    const row = await queryOne<{ id: string; secret_ciphertext: string }>(this.#orm.em,
      `select id, secret_ciphertext from mfa_factor where user_id = ? and kind = 'totp' and confirmed_at is null`, [userId]);
    return row ? this.#enrolment(row.id, userId, await this.#secrets.open(row.secret_ciphertext, userId)) : undefined;
  }

  async #enrolment(factorId: string, userId: string, base32: string): Promise<TotpEnrolment> {
    const account = await queryOne<{ email: string }>(this.#orm.em, 'select email from app_user where id = ?', [userId]);
    const totp = new TOTP({
      issuer: this.#issuerLabel, label: account?.email ?? userId, secret: Secret.fromBase32(base32),
      algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD_SECONDS,
    });
    const uri = totp.toString();
    return { factor_id: factorId, secret: base32, otpauth_uri: uri, qr_svg: await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 }) };
  }

  /**
   * Confirms the enrolment with a first code. The first factor of a user who has no recovery codes
   * comes with a set, answered once here.
   */
  async confirmTotp(actor: AuditActor & { userId: string }, rawCode: string): Promise<{ factor: MfaFactorView; recoveryCodes?: string[] }> {
    const pending = await queryOne<{ id: string; secret_ciphertext: string; organization_id: string }>(this.#orm.em,
      `select f.id, f.secret_ciphertext, u.organization_id from mfa_factor f join app_user u on u.id = f.user_id
        where f.user_id = ? and f.kind = 'totp' and f.confirmed_at is null`, [actor.userId]);
    if (!pending) throw new AppError('mfa.no_pending_totp', 'No authenticator enrolment is in progress; start one with POST /api/v1/me/mfa/totp');
    const classified = classifyCode(rawCode);
    const step = classified?.method === 'totp' ? await this.#matchingStep(pending.secret_ciphertext, actor.userId, classified.code) : undefined;
    if (step === undefined) {
      await this.#auditFailure(actor, pending.organization_id, 'mfa.totp_confirm', { reason: 'wrong_code' });
      throw new AppError('mfa.invalid_code', 'The code is not right: enter the 6 digits your authenticator app shows now');
    }
    return this.#orm.em.fork().transactional(async (em) => {
      const confirmed = await executeStatement(em,
        `update mfa_factor set confirmed_at = now(), last_used_step = ?, last_used_at = now() where id = ? and confirmed_at is null`, [step, pending.id]);
      if (confirmed === 0) throw new AppError('mfa.no_pending_totp', 'This enrolment was confirmed or replaced meanwhile');
      const hasCodes = await queryOne<{ n: number }>(em, 'select count(*)::int as n from recovery_code where user_id = ? and used_at is null', [actor.userId]);
      const recoveryCodes = (hasCodes?.n ?? 0) === 0 ? await replaceRecoveryCodes(em, actor.userId) : undefined;
      recordAudit(em, auditEntry(actor, {
        action: 'mfa.totp_confirm', resource: 'mfa_factor', resourceId: pending.id, targetId: actor.userId, organizationId: pending.organization_id,
        details: { recovery_codes_generated: !!recoveryCodes },
      }));
      if (recoveryCodes) {
        recordAudit(em, auditEntry(actor, {
          action: 'mfa.recovery_codes_generate', resource: 'recovery_code', targetId: actor.userId, organizationId: pending.organization_id,
          details: { count: RECOVERY_CODE_COUNT },
        }));
      }
      const now = new Date(this.#clock.now()).toISOString();
      return {
        factor: { id: pending.id, kind: 'totp' as const, name: null, confirmed: true, created_at: now, last_used_at: now },
        ...(recoveryCodes ? { recoveryCodes } : {}),
      };
    });
  }

  /**
   * Removes the TOTP factor; needs a sign-in of the last RECENT_SIGN_IN_SECONDS (`authTime`,
   * seconds). With no factor left, the recovery codes go too: they are a fallback of a factor.
   */
  async removeTotp(actor: AuditActor, authTime: number | undefined): Promise<void> {
    const userId = actor.userId!;
    this.assertRecentSignIn(authTime);
    await this.#orm.em.fork().transactional(async (em) => {
      const factor = await queryOne<{ id: string; organization_id: string }>(em,
        `select f.id, u.organization_id from mfa_factor f join app_user u on u.id = f.user_id where f.user_id = ? and f.kind = 'totp' for update of f`, [userId]);
      assertThat(factor, 'resource.not_found', 'No authenticator app is enrolled');
      await executeStatement(em, 'delete from mfa_factor where id = ?', [factor.id]);
      const left = await queryOne<{ n: number }>(em, 'select count(*)::int as n from mfa_factor where user_id = ? and confirmed_at is not null', [userId]);
      const codesRemoved = (left?.n ?? 0) === 0 ? await executeStatement(em, 'delete from recovery_code where user_id = ?', [userId]) : 0;
      recordAudit(em, auditEntry(actor, {
        action: 'mfa.totp_remove', resource: 'mfa_factor', resourceId: factor.id, targetId: userId, organizationId: factor.organization_id,
        details: { recovery_codes_removed: codesRemoved },
      }));
    });
  }

  /**
   * Refuses (403 auth.recent_sign_in_required) a token that no sign-in stands behind (an API key:
   * a personal client's token has no auth_time), which may not change second factors at all.
   */
  assertSignedIn(authTime: number | undefined): void {
    if (authTime === undefined) {
      throw new AppError('auth.recent_sign_in_required', 'Second factors are managed with the token of a sign-in (password, code flow), not with an API key');
    }
  }

  /** Refuses (403 auth.recent_sign_in_required) unless the sign-in behind the token is recent. */
  assertRecentSignIn(authTime: number | undefined): void {
    const age = authTime === undefined ? Number.POSITIVE_INFINITY : this.#clock.now() / 1000 - authTime;
    if (!(age <= RECENT_SIGN_IN_SECONDS)) {
      throw new AppError('auth.recent_sign_in_required', 'Sign in again (within the last 5 minutes) and retry with the new access token');
    }
  }

  /**
   * A new set of recovery codes, answered once; the old set stops working. Needs a confirmed factor
   * and, as they pass for one, a sign-in of the last RECENT_SIGN_IN_SECONDS (`authTime`, seconds).
   */
  async newRecoveryCodes(actor: AuditActor & { userId: string }, authTime: number | undefined): Promise<string[]> {
    this.assertRecentSignIn(authTime);
    return this.#orm.em.fork().transactional(async (em) => {
      const user = await queryOne<{ organization_id: string; has_factor: boolean }>(em,
        `select organization_id, exists(select 1 from mfa_factor f where f.user_id = u.id and f.confirmed_at is not null) as has_factor
           from app_user u where id = ? for update`, [actor.userId]);
      assertThat(user, 'resource.not_found', 'Your account no longer exists');
      if (!user.has_factor) throw new AppError('mfa.no_factor', 'Enrol a second factor (an authenticator app or a passkey) before making recovery codes');
      const codes = await replaceRecoveryCodes(em, actor.userId);
      recordAudit(em, auditEntry(actor, {
        action: 'mfa.recovery_codes_generate', resource: 'recovery_code', targetId: actor.userId, organizationId: user.organization_id,
        details: { count: RECOVERY_CODE_COUNT },
      }));
      return codes;
    });
  }

  /** The time step the code matches (one step of drift either side), or undefined. */
  async #matchingStep(sealed: string, userId: string, code: string): Promise<number | undefined> {
    const secret = Secret.fromBase32(await this.#secrets.open(sealed, userId));
    const timestamp = this.#clock.now();
    const delta = TOTP.validate({ token: code, secret, algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD_SECONDS, timestamp, window: TOTP_WINDOW });
    return delta === null ? undefined : TOTP.counter({ period: TOTP_PERIOD_SECONDS, timestamp }) + delta;
  }

  /**
   * Checks a sign-in's second factor: a TOTP code (a step after the last one accepted) or an
   * unused recovery code, each spent atomically with its audit row. Wrong codes count in the
   * sign-in throttle under the user's own key; throws SignInThrottled while it refuses, and
   * SecondFactorRejected for any wrong, reused or malformed code.
   */
  async verifySignInCode(attempt: {
    userId: string; code: string; ip: string; userAgent?: string; clientId?: string; via: 'password_grant' | 'login_page';
  }): Promise<SecondFactorMethod> {
    const throttleKey = `mfa:${attempt.userId}`;
    const standing = await this.#throttle.assertAllowed(throttleKey, attempt.ip);
    const actor: AuditActor = { userId: attempt.userId, clientId: attempt.clientId, ip: attempt.ip, userAgent: attempt.userAgent };
    const user = await queryOne<{ organization_id: string; totp_id: string | null; secret_ciphertext: string | null }>(this.#orm.em,
      `select u.organization_id, f.id as totp_id, f.secret_ciphertext from app_user u
         left join mfa_factor f on f.user_id = u.id and f.kind = 'totp' and f.confirmed_at is not null
        where u.id = ? and u.is_active`, [attempt.userId]);
    const classified = classifyCode(attempt.code);
    let spent: SecondFactorMethod | undefined;
    if (user && classified?.method === 'totp' && user.totp_id && user.secret_ciphertext) {
      const step = await this.#matchingStep(user.secret_ciphertext, attempt.userId, classified.code);
      if (step !== undefined && await this.#spendTotpStep(actor, user.organization_id, user.totp_id, step, attempt.via)) spent = 'totp';
    } else if (user && classified?.method === 'recovery_code') {
      if (await this.#spendRecoveryCode(actor, user.organization_id, classified.code, attempt.via)) spent = 'recovery_code';
    }
    if (!spent) {
      await this.#throttle.recordFailure(throttleKey, attempt.ip);
      await this.#auditFailure(actor, user?.organization_id, 'auth.mfa', { via: attempt.via, method: classified?.method ?? 'malformed', reason: 'wrong_code' });
      throw new SecondFactorRejected();
    }
    await this.#throttle.recordSuccess(throttleKey, standing);
    return spent;
  }

  /** RFC 6238 section 5.2: a code is accepted once; the step only moves forward, in the statement that writes the audit row. */
  async #spendTotpStep(actor: AuditActor, organizationId: string, factorId: string, step: number, via: string): Promise<boolean> {
    const audit = auditRow(auditEntry(actor, {
      action: 'auth.mfa', resource: 'session', targetId: actor.userId, organizationId, details: { via, method: 'totp' },
    }));
    const written = await executeStatement(this.#orm.em,
      `with spent as (update mfa_factor set last_used_step = ?, last_used_at = now()
                        where id = ? and (last_used_step is null or last_used_step < ?) returning id)
       insert into audit_log (${audit.columns}) select ${audit.values} from spent`,
      [step, factorId, step, ...audit.params]);
    return written === 1;
  }

  /** Compares the code's hash with each unused one in constant time, then spends the match once. */
  async #spendRecoveryCode(actor: AuditActor, organizationId: string, code: string, via: string): Promise<boolean> {
    const unused = await queryRows<{ id: string; code_hash: string }>(this.#orm.em,
      'select id, code_hash from recovery_code where user_id = ? and used_at is null', [actor.userId]);
    const presented = Buffer.from(hashRecoveryCode(code));
    let match: string | undefined;
    for (const row of unused) {
      const stored = Buffer.from(row.code_hash);
      if (stored.length === presented.length && timingSafeEqual(stored, presented)) match = row.id;
    }
    if (!match) return false;
    const audit = auditRow(auditEntry(actor, {
      action: 'auth.mfa', resource: 'session', targetId: actor.userId, organizationId,
      details: { via, method: 'recovery_code', remaining: unused.length - 1 },
    }));
    const written = await executeStatement(this.#orm.em,
      `with spent as (update recovery_code set used_at = now() where id = ? and used_at is null returning id)
       insert into audit_log (${audit.columns}) select ${audit.values} from spent`,
      [match, ...audit.params]);
    return written === 1;
  }

  async #auditFailure(actor: AuditActor, organizationId: string | undefined, action: string, details: Record<string, unknown>): Promise<void> {
    const audit = auditRow(auditEntry(actor, {
      action, resource: action === 'auth.mfa' ? 'session' : 'mfa_factor', status: 'failure', targetId: actor.userId, organizationId, details,
    }));
    await executeStatement(this.#orm.em, `insert into audit_log (${audit.columns}) values (${audit.values})`, audit.params);
  }

  /** An mfa_token for a password sign-in that waits for its second factor; only its hash is stored. */
  async issueMfaToken(payload: MfaTokenPayload): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    await this.#store.set(`mfa-token:${hashToken(token)}`, JSON.stringify(payload), MFA_TOKEN_TTL_SECONDS);
    return token;
  }

  /**
   * Takes the token for one completion attempt, atomically: of concurrent attempts one gets the
   * pending sign-in, the others nothing (so a racing attempt cannot spend a code for nothing).
   * The attempt then ends with finishMfaToken (signed in) or releaseMfaToken (a wrong code, which
   * leaves the token usable until it expires).
   */
  async claimMfaToken(token: string): Promise<MfaTokenPayload | undefined> {
    if (!/^[\w-]{43}$/.test(token)) return undefined;
    const hash = hashToken(token);
    if (!await this.#store.setIfAbsent(`mfa-token-claim:${hash}`, '1', MFA_TOKEN_TTL_SECONDS)) return undefined;
    const payload = await this.#store.get(`mfa-token:${hash}`);
    if (payload) return JSON.parse(payload) as MfaTokenPayload;
    // Unknown or expired: the claim stays, as a spent token's does.
    return undefined;
  }

  async releaseMfaToken(token: string): Promise<void> {
    await this.#store.delete(`mfa-token-claim:${hashToken(token)}`);
  }

  /** The token is spent: its claim stays until it would have expired, so it never works again. */
  async finishMfaToken(token: string): Promise<void> {
    await this.#store.delete(`mfa-token:${hashToken(token)}`);
  }
}
