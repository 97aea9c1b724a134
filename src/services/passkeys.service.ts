// Passkeys (WebAuthn Level 3, API.md "Multi-factor authentication"): registration, sign-in with a
// discoverable credential alone or as the second factor after a password, and the user's list.
// @simplewebauthn/server does the protocol checks (challenge, origin, RP id hash, flags,
// signature, counter); this service keeps the ceremonies single-use and short-lived, stores the
// credentials as `mfa_factor` rows of kind 'passkey', and writes the audit rows. No Koa here.
import { isIP } from 'node:net';

import type { MikroORM } from '@mikro-orm/postgresql';
import {
  generateAuthenticationOptions, generateRegistrationOptions, verifyAuthenticationResponse, verifyRegistrationResponse,
  type AuthenticationResponseJSON, type PublicKeyCredentialCreationOptionsJSON, type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';

import type { Clock } from '../platform/clock.ts';
import { executeStatement, isUniqueViolation, queryOne, queryRows } from '../platform/database.ts';
import { AppError, assertThat } from '../platform/errors.ts';
import type { KeyValueStore } from '../platform/store.ts';
import { auditEntry, auditRow, recordAudit, type AuditActor } from './audit.service.ts';
import { RECOVERY_CODE_COUNT, replaceRecoveryCodes, type MfaService } from './mfa.service.ts';
import type { Actor } from './tenancy.ts';

/** A ceremony (its challenge) lives this long and works once. */
export const PASSKEY_CEREMONY_TTL_SECONDS = 5 * 60;
/** Enough for every device a person owns; a bound keeps one account from growing without limit. */
export const MAX_PASSKEYS_PER_USER = 20;
export const MAX_PASSKEY_NAME_LENGTH = 64;
/** A WebAuthn response is a few kilobytes at most (attestation "none"); more is not one. */
const MAX_RESPONSE_LENGTH = 16 * 1024;

export interface PasskeyView {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  /** Synced by its provider (a multi-device passkey) rather than bound to one authenticator. */
  backed_up: boolean;
}

export type PasskeyFailure = 'expired' | 'malformed' | 'unknown_credential' | 'wrong_user' | 'not_verified' | 'counter' | 'duplicate' | 'too_many' | 'disabled';

/** A ceremony that cannot complete; `reason` says why (pages explain it, audit rows record it). */
export class PasskeyRejected extends Error {
  readonly reason: PasskeyFailure;
  constructor(reason: PasskeyFailure) {
    super(`the passkey was not accepted (${reason})`);
    this.name = 'PasskeyRejected';
    this.reason = reason;
  }
}

/** What a started ceremony keeps until its answer comes: the challenge, for whom, until when. */
interface Ceremony {
  kind: 'register' | 'authenticate';
  challenge: string;
  /** Registration: the user registering; a second factor: the user who gave the password. */
  userId?: string;
  expiresAt: number;
}

export interface PasskeyServiceOptions {
  orm: MikroORM;
  store: KeyValueStore;
  clock: Clock;
  mfa: MfaService;
  /** From ISSUER: its host is the RP id, its origin the only origin accepted. */
  issuer: string;
  rpName: string;
  requireVerifiedEmail: boolean;
}

interface CredentialRow {
  id: string;
  user_id: string;
  organization_id: string;
  public_key: string;
  sign_count: string | number;
  transports: string[] | null;
  usable: boolean;
}

/** The WebAuthn user handle of a user: the 16 bytes of their id (random, and no personal data, as WebAuthn section 14.6.1 asks). */
export function userHandleOf(userId: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(userId.replace(/-/g, ''), 'hex'));
}

function parseResponse<T>(raw: string): T {
  if (raw.length === 0 || raw.length > MAX_RESPONSE_LENGTH) throw new PasskeyRejected('malformed');
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new PasskeyRejected('malformed');
  }
  const shape = parsed as { id?: unknown; rawId?: unknown; type?: unknown; response?: unknown };
  if (typeof parsed !== 'object' || parsed === null || typeof shape.id !== 'string' || !/^[\w-]{1,1400}$/.test(shape.id)
    || shape.type !== 'public-key' || typeof shape.response !== 'object' || shape.response === null) {
    throw new PasskeyRejected('malformed');
  }
  return parsed as T;
}

export class PasskeyService {
  readonly #orm: MikroORM;
  readonly #store: KeyValueStore;
  readonly #clock: Clock;
  readonly #mfa: MfaService;
  readonly #rpId: string;
  readonly #origin: string;
  readonly #rpName: string;
  readonly #requireVerifiedEmail: boolean;

  constructor(options: PasskeyServiceOptions) {
    this.#orm = options.orm;
    this.#store = options.store;
    this.#clock = options.clock;
    this.#mfa = options.mfa;
    const issuer = new URL(options.issuer);
    this.#rpId = issuer.hostname;
    this.#origin = issuer.origin;
    this.#rpName = options.rpName;
    this.#requireVerifiedEmail = options.requireVerifiedEmail;
    // WebAuthn section 5.1.3: an RP id is a domain; browsers refuse an IP address (http://127.0.0.1).
    this.available = isIP(this.#rpId.replace(/^\[|\]$/g, '')) === 0;
  }

  /** Whether browsers can use passkeys here at all: not when ISSUER names an IP address. Pages then offer none. */
  readonly available: boolean;

  async list(userId: string): Promise<PasskeyView[]> {
    const rows = await queryRows<{ id: string; name: string | null; created_at: Date; last_used_at: Date | null; backed_up: boolean | null }>(this.#orm.em,
      `select id, name, created_at, last_used_at, backed_up from mfa_factor where user_id = ? and kind = 'passkey' order by created_at, id`, [userId]);
    return rows.map((row) => ({
      id: row.id, name: row.name ?? 'Passkey', created_at: new Date(row.created_at).toISOString(),
      last_used_at: row.last_used_at ? new Date(row.last_used_at).toISOString() : null, backed_up: !!row.backed_up,
    }));
  }

  /**
   * Starts a registration for the user, bound to `binding` (one browser's page: a new start
   * replaces the one before). Discoverable credential and user verification both required: a
   * passkey alone then signs in, and counts as two factors (docs/guide/mfa.md).
   */
  async registrationOptions(userId: string, binding: string): Promise<PublicKeyCredentialCreationOptionsJSON | undefined> {
    if (!this.available) return undefined;
    const user = await queryOne<{ email: string; name: string | null }>(this.#orm.em,
      `select email, nullif(trim(concat_ws(' ', first_name, last_name)), '') as name from app_user where id = ?`, [userId]);
    assertThat(user, 'resource.not_found', 'Your account no longer exists');
    const existing = await queryRows<{ credential_id: string; transports: string[] | null }>(this.#orm.em,
      `select credential_id, transports from mfa_factor where user_id = ? and kind = 'passkey'`, [userId]);
    const options = await generateRegistrationOptions({
      rpName: this.#rpName, rpID: this.#rpId, userName: user.email, userDisplayName: user.name ?? user.email, userID: userHandleOf(userId),
      timeout: PASSKEY_CEREMONY_TTL_SECONDS * 1000, attestationType: 'none',
      // An authenticator that holds one of these already says so instead of making a second.
      excludeCredentials: existing.map((row) => ({ id: row.credential_id, transports: row.transports ?? undefined })),
      authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
    });
    await this.#saveCeremony(binding, { kind: 'register', challenge: options.challenge, userId });
    return options;
  }

  /**
   * Finishes the registration started for `binding`: the user's first factor comes with a set of
   * recovery codes, answered once here.
   */
  async register(actor: AuditActor & { userId: string }, binding: string, rawResponse: string, rawName: string): Promise<{ passkey: PasskeyView; recoveryCodes?: string[] }> {
    const organizationId = (await queryOne<{ organization_id: string }>(this.#orm.em, 'select organization_id from app_user where id = ?', [actor.userId]))?.organization_id;
    try {
      const name = rawName.trim().replace(/\s+/g, ' ').slice(0, MAX_PASSKEY_NAME_LENGTH) || 'Passkey';
      const ceremony = await this.#takeCeremony(binding, 'register');
      if (!ceremony || ceremony.userId !== actor.userId) throw new PasskeyRejected('expired');
      const response = parseResponse<RegistrationResponseJSON>(rawResponse);
      let verified;
      try {
        verified = await verifyRegistrationResponse({
          response, expectedChallenge: ceremony.challenge, expectedOrigin: this.#origin, expectedRPID: this.#rpId, requireUserVerification: true,
        });
      } catch {
        throw new PasskeyRejected('not_verified');
      }
      if (!verified.verified) throw new PasskeyRejected('not_verified');
      const { credential, aaguid, credentialBackedUp } = verified.registrationInfo;
      return await this.#orm.em.fork().transactional(async (em) => {
        const user = await queryOne<{ organization_id: string; passkeys: number; codes: number }>(em,
          `select organization_id,
                  (select count(*)::int from mfa_factor f where f.user_id = u.id and f.kind = 'passkey') as passkeys,
                  (select count(*)::int from recovery_code c where c.user_id = u.id and c.used_at is null) as codes
             from app_user u where id = ? for update`, [actor.userId]);
        assertThat(user, 'resource.not_found', 'Your account no longer exists');
        if (user.passkeys >= MAX_PASSKEYS_PER_USER) throw new PasskeyRejected('too_many');
        const id = crypto.randomUUID();
        await executeStatement(em,
          `insert into mfa_factor (id, user_id, kind, name, credential_id, public_key, sign_count, transports, aaguid, backed_up, confirmed_at, created_at)
           values (?, ?, 'passkey', ?, ?, decode(?, 'base64'), ?, ?::text[], ?, ?, now(), now())`,
          [id, actor.userId, name, credential.id, Buffer.from(credential.publicKey).toString('base64'), credential.counter,
            `{${(credential.transports ?? []).map((transport) => `"${transport.replace(/[^\w-]/g, '')}"`).join(',')}}`, aaguid, credentialBackedUp]);
        const recoveryCodes = user.codes === 0 ? await replaceRecoveryCodes(em, actor.userId) : undefined;
        recordAudit(em, auditEntry(actor, {
          action: 'mfa.passkey_register', resource: 'mfa_factor', resourceId: id, targetId: actor.userId, organizationId: user.organization_id,
          details: { name, backed_up: credentialBackedUp, recovery_codes_generated: !!recoveryCodes },
        }));
        if (recoveryCodes) {
          recordAudit(em, auditEntry(actor, {
            action: 'mfa.recovery_codes_generate', resource: 'recovery_code', targetId: actor.userId, organizationId: user.organization_id,
            details: { count: RECOVERY_CODE_COUNT },
          }));
        }
        const now = new Date(this.#clock.now()).toISOString();
        return { passkey: { id, name, created_at: now, last_used_at: null, backed_up: credentialBackedUp }, ...(recoveryCodes ? { recoveryCodes } : {}) };
      });
    } catch (error) {
      const failure = error instanceof PasskeyRejected ? error : isUniqueViolation(error) ? new PasskeyRejected('duplicate') : undefined;
      if (!failure) throw error;
      await this.#auditFailure(actor, organizationId, 'mfa.passkey_register', { reason: failure.reason });
      throw failure;
    }
  }

  /**
   * Starts a sign-in ceremony bound to `binding`. Without a user it asks for any discoverable
   * credential of this site ("Sign in with a passkey"); with one, for one of that user's passkeys
   * (the second factor after their password). Answers undefined when that user has none, or
   * when passkeys cannot work here (`available`).
   */
  async authenticationOptions(binding: string, userId?: string): Promise<PublicKeyCredentialRequestOptionsJSON | undefined> {
    if (!this.available) return undefined;
    let allowCredentials: { id: string; transports?: string[] }[] | undefined;
    if (userId) {
      const rows = await queryRows<{ credential_id: string; transports: string[] | null }>(this.#orm.em,
        `select credential_id, transports from mfa_factor where user_id = ? and kind = 'passkey' order by created_at`, [userId]);
      if (rows.length === 0) return undefined;
      allowCredentials = rows.map((row) => ({ id: row.credential_id, transports: row.transports ?? undefined }));
    }
    const options = await generateAuthenticationOptions({
      rpID: this.#rpId, allowCredentials, userVerification: 'required', timeout: PASSKEY_CEREMONY_TTL_SECONDS * 1000,
    });
    await this.#saveCeremony(binding, { kind: 'authenticate', challenge: options.challenge, userId });
    return options;
  }

  /**
   * Checks a sign-in assertion against the ceremony of `binding`: the credential must exist (and be
   * `userId`'s, for a second factor), its user and organization active, the signature good, user
   * verification done, and the counter moved on. The counter and the audit row are written in one
   * statement, so two uses of one assertion cannot both pass. Answers the signed-in user.
   */
  async authenticate(attempt: {
    binding: string; rawResponse: string; userId?: string; ip: string; userAgent?: string; clientId?: string; via: 'login_page';
  }): Promise<{ userId: string }> {
    const actor: AuditActor = { userId: attempt.userId, clientId: attempt.clientId, ip: attempt.ip, userAgent: attempt.userAgent };
    const action = attempt.userId ? 'auth.mfa' : 'auth.login';
    let row: CredentialRow | undefined;
    try {
      const ceremony = await this.#takeCeremony(attempt.binding, 'authenticate');
      if (!ceremony || ceremony.userId !== attempt.userId) throw new PasskeyRejected('expired');
      const response = parseResponse<AuthenticationResponseJSON>(attempt.rawResponse);
      row = await queryOne<CredentialRow>(this.#orm.em,
        `select f.id, f.user_id, u.organization_id, encode(f.public_key, 'base64') as public_key, f.sign_count, f.transports,
                (u.is_active and o.is_active and (? or u.is_verified)) as usable
           from mfa_factor f join app_user u on u.id = f.user_id join organization o on o.id = u.organization_id
          where f.credential_id = ? and f.kind = 'passkey'`, [!this.#requireVerifiedEmail, response.id]);
      if (!row) throw new PasskeyRejected('unknown_credential');
      if (attempt.userId && row.user_id !== attempt.userId) throw new PasskeyRejected('wrong_user');
      // A discoverable credential names its user: it must be the credential's owner.
      const handle = response.response.userHandle;
      if (handle !== undefined && handle !== Buffer.from(userHandleOf(row.user_id)).toString('base64url')) throw new PasskeyRejected('wrong_user');
      if (!row.usable) throw new PasskeyRejected('disabled');
      const stored = Number(row.sign_count);
      let verified;
      try {
        verified = await verifyAuthenticationResponse({
          response, expectedChallenge: ceremony.challenge, expectedOrigin: this.#origin, expectedRPID: this.#rpId, requireUserVerification: true,
          credential: { id: response.id, publicKey: new Uint8Array(Buffer.from(row.public_key, 'base64')), counter: stored, transports: row.transports ?? undefined },
        });
      } catch (error) {
        throw new PasskeyRejected(/counter/i.test((error as Error).message) ? 'counter' : 'not_verified');
      }
      if (!verified.verified || !verified.authenticationInfo.userVerified) throw new PasskeyRejected('not_verified');
      const counter = verified.authenticationInfo.newCounter;
      const audit = auditRow(auditEntry({ ...actor, userId: row.user_id }, {
        action, resource: 'session', organizationId: row.organization_id, targetId: row.user_id,
        details: { via: attempt.via, method: 'passkey', passkey_id: row.id },
      }));
      // WebAuthn section 6.1.1: a counter that does not move on (both zero aside) means a cloned authenticator.
      const written = await executeStatement(this.#orm.em,
        `with used as (update mfa_factor set sign_count = ?, last_used_at = now(), backed_up = ?
                         where id = ? and ((sign_count = 0 and ? = 0) or sign_count < ?) returning user_id),
              signed_in as (update app_user set last_login_at = case when ? then now() else last_login_at end
                              where id = (select user_id from used) returning id)
         insert into audit_log (${audit.columns}) select ${audit.values} from signed_in`,
        [counter, verified.authenticationInfo.credentialBackedUp, row.id, counter, counter, !attempt.userId, ...audit.params]);
      if (written !== 1) throw new PasskeyRejected('counter');
      return { userId: row.user_id };
    } catch (error) {
      if (!(error instanceof PasskeyRejected)) throw error;
      // The row is about the account signing in: the password's user, or else the passkey's owner.
      await this.#auditFailure(actor, row?.organization_id, action,
        { via: attempt.via, method: 'passkey', reason: error.reason, ...(row ? { passkey_id: row.id, credential_user_id: row.user_id } : {}) },
        attempt.userId ?? row?.user_id);
      throw error;
    }
  }

  async rename(actor: AuditActor & { userId: string }, passkeyId: string, rawName: string): Promise<PasskeyView> {
    const name = rawName.trim().replace(/\s+/g, ' ');
    if (!name || name.length > MAX_PASSKEY_NAME_LENGTH) throw new AppError('request.malformed', `A passkey's name is 1 to ${MAX_PASSKEY_NAME_LENGTH} characters`);
    await this.#orm.em.fork().transactional(async (em) => {
      const factor = await this.#lockOwn(em, actor.userId, passkeyId);
      await executeStatement(em, 'update mfa_factor set name = ? where id = ?', [name, factor.id]);
      recordAudit(em, auditEntry(actor, {
        action: 'mfa.passkey_rename', resource: 'mfa_factor', resourceId: factor.id, targetId: actor.userId, organizationId: factor.organization_id,
        details: { name },
      }));
    });
    const passkey = (await this.list(actor.userId)).find((item) => item.id === passkeyId);
    assertThat(passkey, 'resource.not_found', 'No such passkey');
    return passkey;
  }

  /**
   * Removes one of the user's passkeys; needs a sign-in of the last 5 minutes (`authTime`,
   * seconds). With no factor left, the recovery codes go too, as when TOTP is removed.
   */
  async remove(actor: Actor | (AuditActor & { userId: string }), passkeyId: string, authTime: number | undefined): Promise<void> {
    const userId = actor.userId!;
    this.#mfa.assertRecentSignIn(authTime);
    await this.#orm.em.fork().transactional(async (em) => {
      const factor = await this.#lockOwn(em, userId, passkeyId);
      await executeStatement(em, 'delete from mfa_factor where id = ?', [factor.id]);
      const left = await queryOne<{ n: number }>(em, 'select count(*)::int as n from mfa_factor where user_id = ? and confirmed_at is not null', [userId]);
      const codesRemoved = (left?.n ?? 0) === 0 ? await executeStatement(em, 'delete from recovery_code where user_id = ?', [userId]) : 0;
      recordAudit(em, auditEntry(actor, {
        action: 'mfa.passkey_remove', resource: 'mfa_factor', resourceId: factor.id, targetId: userId, organizationId: factor.organization_id,
        details: { name: factor.name, recovery_codes_removed: codesRemoved },
      }));
    });
  }

  /** The user's own passkey, locked; another user's, or no such id, is 404 alike. */
  async #lockOwn(em: Parameters<typeof executeStatement>[0], userId: string, passkeyId: string) {
    const factor = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(passkeyId)
      ? await queryOne<{ id: string; name: string | null; organization_id: string }>(em,
        `select f.id, f.name, u.organization_id from mfa_factor f join app_user u on u.id = f.user_id
          where f.id = ? and f.user_id = ? and f.kind = 'passkey' for update of f`, [passkeyId, userId])
      : undefined;
    assertThat(factor, 'resource.not_found', 'No such passkey');
    return factor;
  }

  async #saveCeremony(binding: string, ceremony: Omit<Ceremony, 'expiresAt'>): Promise<void> {
    const stored: Ceremony = { ...ceremony, expiresAt: this.#clock.now() + PASSKEY_CEREMONY_TTL_SECONDS * 1000 };
    await this.#store.set(`passkey-ceremony:${binding}`, JSON.stringify(stored), PASSKEY_CEREMONY_TTL_SECONDS);
  }

  /**
   * The ceremony of `binding`, taken for good: its challenge is claimed (SET NX) before anything
   * checks it, so of two answers to one challenge only the first is looked at.
   */
  async #takeCeremony(binding: string, kind: Ceremony['kind']): Promise<Ceremony | undefined> {
    const raw = await this.#store.get(`passkey-ceremony:${binding}`);
    if (!raw) return undefined;
    const ceremony = JSON.parse(raw) as Ceremony;
    if (ceremony.kind !== kind) return undefined;
    if (!await this.#store.setIfAbsent(`passkey-challenge-used:${ceremony.challenge}`, '1', PASSKEY_CEREMONY_TTL_SECONDS)) return undefined;
    await this.#store.delete(`passkey-ceremony:${binding}`);
    return ceremony.expiresAt > this.#clock.now() ? ceremony : undefined;
  }

  async #auditFailure(actor: AuditActor, organizationId: string | undefined, action: string, details: Record<string, unknown>,
    targetId = actor.userId): Promise<void> {
    const audit = auditRow(auditEntry(actor, {
      action, resource: action.startsWith('auth.') ? 'session' : 'mfa_factor', status: 'failure', targetId, organizationId, details,
    }));
    await executeStatement(this.#orm.em, `insert into audit_log (${audit.columns}) values (${audit.values})`, audit.params);
  }
}
