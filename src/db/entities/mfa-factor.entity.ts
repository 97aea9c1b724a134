import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

import { User } from './user.entity.ts';

/** The kinds of second factor a user can hold; passkeys (WebAuthn) join as `passkey`. */
export const MFA_FACTOR_KINDS = ['totp', 'passkey'] as const;
export type MfaFactorKind = (typeof MFA_FACTOR_KINDS)[number];

/**
 * One second factor of a user (API.md "Multi-factor authentication"). Columns common to every kind
 * (name, when confirmed and last used) sit here; each kind adds its own: TOTP its shared secret,
 * encrypted (services/mfa-secrets.ts), and the last time step it accepted, so a code is never
 * taken twice (RFC 6238 section 5.2); a passkey its WebAuthn credential (id, public key, counter).
 * A factor counts once `confirmedAt` is set; a user has at
 * most one TOTP factor (a partial unique index in the migration).
 */
export const MfaFactor = defineEntity({
  name: 'MfaFactor',
  tableName: 'mfa_factor',
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    user: () => p.manyToOne(User).deleteRule('cascade').index(),
    kind: p.enum([...MFA_FACTOR_KINDS]),
    name: p.string().length(64).nullable(),
    /** TOTP: `v1.<iv>.<tag>.<ciphertext>` (base64url), AES-256-GCM under the `mfa-secret-key` server secret. */
    secretCiphertext: p.text().nullable().hidden(),
    /** TOTP: the time step (unix time / 30) of the last code accepted. */
    lastUsedStep: p.bigint('number').nullable(),
    /** Passkey: the WebAuthn credential id (base64url), unique across users (a partial unique index). */
    credentialId: p.text().nullable(),
    /** Passkey: the credential's COSE public key. */
    publicKey: p.blob().nullable().hidden(),
    /** Passkey: the authenticator's signature counter; a lower or equal one later means a cloned authenticator (0 stays 0 for those that keep none). */
    signCount: p.bigint('number').nullable(),
    /** Passkey: how the browser reached the authenticator (`internal`, `usb`, `hybrid`, ...), passed back as hints. */
    transports: p.array().nullable(),
    /** Passkey: the authenticator model's AAGUID (all zeros when it does not say). */
    aaguid: p.uuid().nullable(),
    /** Passkey: synced by its provider (a multi-device credential). */
    backedUp: p.boolean().nullable(),
    confirmedAt: p.datetime().nullable(),
    lastUsedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type MfaFactor = InferEntity<typeof MfaFactor>;
