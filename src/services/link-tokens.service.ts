// Single-use link tokens (API.md section 4, "Mail"; issue 14 part 3): what a mailed link carries
// (`/account/verify-email?token=...`, reset, invitation). Every call takes the caller's entity
// manager, so a token is issued, consumed or revoked in the transaction of the change it belongs to.
//
//   issueLinkToken(em, { purpose, userId?, organizationId?, data?, ttlSeconds })
//       -> { id, token, expiresAt }                                      (synchronous)
//     Adds the row to the caller's unit of work, written by the caller's flush (as enqueueMail and
//     recordAudit are), so it commits or rolls back with the change. `token` is 256 bits from
//     randomBytes, base64url (43 characters); only its SHA-256 is stored. Put `token` in the mail's
//     link and nowhere else (never in a log, an audit row or `data`).
//   peekLinkToken(em, token, purpose) -> LinkTokenRecord
//     Whether the link is still good, without using it: for a GET that renders a page (mail
//     scanners follow links, and must not use them up).
//   consumeLinkToken(em, token, purpose) -> LinkTokenRecord
//     Uses the link: one `UPDATE ... WHERE consumed_at IS NULL AND revoked_at IS NULL AND
//     expires_at > now() RETURNING`, so of two concurrent clicks exactly one wins (the other waits
//     for the row lock, then finds it consumed). If the caller's transaction rolls back, the link is
//     unused again.
//   revokeLinkTokens(em, { userId, purpose }) -> number
//     Withdraws every live token of one purpose of a user: when a newer link is sent, or when the
//     password changes (a reset link must not outlive it). Call it before issuing the new one.
//
// peek and consume throw AppError, each reason with its own code (platform/errors.ts), so an API
// route answers a clear 4xx and a page shows a clear message, never a 500:
//   link.invalid        400  unknown, altered, malformed, oversized or holding NUL characters
//   link.wrong_purpose  400  a real token, but for another kind of link (it is not consumed)
//   link.used           410  consumed already (the second of two clicks)
//   link.expired        410  past its expiry
//   link.revoked        410  replaced by a newer link, or withdrawn
// A route lists them with `errors: [...LINK_TOKEN_ERRORS]`; `isLinkTokenError` tells them apart
// from other failures.
//
// Clock: expires_at is set from this process's clock at issue, and compared with the database's
// now() at peek and consume; both are NTP-synchronised in any sane deployment, and lifetimes are
// hours or days. Rows are deleted a week after their expiry by the cleanup job
// (services/cleanup.service.ts), so an old link reads "expired", not "invalid", for that week.
import { createHash, randomBytes } from 'node:crypto';

import type { EntityManager } from '@mikro-orm/postgresql';

import { LinkToken } from '../db/entities/link-token.entity.ts';
import { Organization } from '../db/entities/organization.entity.ts';
import { User } from '../db/entities/user.entity.ts';
import { executeStatement, queryOne } from '../platform/database.ts';
import { AppError, type ErrorCode } from '../platform/errors.ts';

/** What a link is for. A new kind of link adds its name here. */
export type LinkPurpose = 'verify_email' | 'reset_password' | 'invitation';

export const LINK_TOKEN_ERRORS = ['link.invalid', 'link.wrong_purpose', 'link.used', 'link.expired', 'link.revoked'] as const satisfies readonly ErrorCode[];
export type LinkTokenErrorCode = (typeof LINK_TOKEN_ERRORS)[number];

/** 256 bits, as API.md asks: 32 random bytes are 43 base64url characters (no padding). */
const TOKEN_BYTES = 32;
const TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/;
/** `data` is for a few ids and names (the address being verified, an invitation's role), not documents. */
const MAX_DATA_BYTES = 2048;

export interface IssueLinkToken {
  purpose: LinkPurpose;
  userId?: string | null;
  organizationId?: string | null;
  /** A few plain values the link's handler needs back; never a secret. */
  data?: Record<string, unknown>;
  ttlSeconds: number;
}

export interface IssuedLinkToken {
  id: string;
  /** The only copy of the token: put it in the link, nowhere else. */
  token: string;
  expiresAt: Date;
}

export interface LinkTokenRecord {
  id: string;
  purpose: LinkPurpose;
  userId: string | null;
  organizationId: string | null;
  data: Record<string, unknown>;
  createdAt: Date;
  expiresAt: Date;
}

export function hashLinkToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function isLinkTokenError(error: unknown): error is AppError & { code: LinkTokenErrorCode } {
  return error instanceof AppError && (LINK_TOKEN_ERRORS as readonly string[]).includes(error.code);
}

export function issueLinkToken(em: EntityManager, input: IssueLinkToken): IssuedLinkToken {
  if (!Number.isInteger(input.ttlSeconds) || input.ttlSeconds <= 0) throw new RangeError('ttlSeconds must be a positive whole number');
  const data = input.data ?? {};
  if (Buffer.byteLength(JSON.stringify(data)) > MAX_DATA_BYTES) throw new RangeError(`link token data must stay under ${MAX_DATA_BYTES} bytes`);
  const token = randomBytes(TOKEN_BYTES).toString('base64url');
  const expiresAt = new Date(Date.now() + input.ttlSeconds * 1000);
  const row = em.create(LinkToken, {
    id: crypto.randomUUID(),
    tokenHash: hashLinkToken(token),
    purpose: input.purpose,
    user: input.userId ? em.getReference(User, input.userId) : null,
    organization: input.organizationId ? em.getReference(Organization, input.organizationId) : null,
    data,
    expiresAt,
    consumedAt: null,
    revokedAt: null,
  });
  return { id: row.id, token, expiresAt };
}

interface LinkTokenRow {
  id: string;
  purpose: string;
  user_id: string | null;
  organization_id: string | null;
  data: Record<string, unknown>;
  created_at: Date;
  expires_at: Date;
}

const RETURNED_COLUMNS = 'id, purpose, user_id, organization_id, data, created_at, expires_at';

function recordOf(row: LinkTokenRow): LinkTokenRecord {
  return {
    id: row.id, purpose: row.purpose as LinkPurpose, userId: row.user_id, organizationId: row.organization_id,
    data: row.data ?? {}, createdAt: new Date(row.created_at), expiresAt: new Date(row.expires_at),
  };
}

/** The hash of a token that has the shape of one; anything else (too long, NUL, not base64url) was never issued. */
function hashOfWellFormed(token: unknown): string {
  if (typeof token !== 'string' || !TOKEN_FORMAT.test(token)) throw new AppError('link.invalid', 'This link is not valid. Check that it was copied whole.');
  return hashLinkToken(token);
}

/** The reason a token cannot be used now, or its record when it can. */
async function inspect(em: EntityManager, tokenHash: string, purpose: LinkPurpose): Promise<LinkTokenRecord> {
  const row = await queryOne<LinkTokenRow & { used: boolean; revoked: boolean; expired: boolean }>(em,
    `select ${RETURNED_COLUMNS}, consumed_at is not null as used, revoked_at is not null as revoked, expires_at <= now() as expired
       from link_token where token_hash = ?`, [tokenHash]);
  if (!row) throw new AppError('link.invalid', 'This link is not valid. Check that it was copied whole.');
  if (row.purpose !== purpose) throw new AppError('link.wrong_purpose', 'This link is meant for something else.');
  if (row.used) throw new AppError('link.used', 'This link has been used already.');
  if (row.revoked) throw new AppError('link.revoked', 'This link was replaced by a newer one or withdrawn.');
  if (row.expired) throw new AppError('link.expired', 'This link has expired.');
  return recordOf(row);
}

export async function peekLinkToken(em: EntityManager, token: unknown, purpose: LinkPurpose): Promise<LinkTokenRecord> {
  return inspect(em, hashOfWellFormed(token), purpose);
}

export async function consumeLinkToken(em: EntityManager, token: unknown, purpose: LinkPurpose): Promise<LinkTokenRecord> {
  const tokenHash = hashOfWellFormed(token);
  const row = await queryOne<LinkTokenRow>(em,
    `update link_token set consumed_at = now()
      where token_hash = ? and purpose = ? and consumed_at is null and revoked_at is null and expires_at > now()
      returning ${RETURNED_COLUMNS}`, [tokenHash, purpose]);
  if (row) return recordOf(row);
  await inspect(em, tokenHash, purpose);
  // inspect() found it usable after all: only a concurrent change between the two statements can do that.
  throw new AppError('link.used', 'This link has been used already.');
}

export async function revokeLinkTokens(em: EntityManager, target: { userId: string; purpose: LinkPurpose }): Promise<number> {
  return executeStatement(em,
    `update link_token set revoked_at = now()
      where user_id = ? and purpose = ? and consumed_at is null and revoked_at is null`, [target.userId, target.purpose]);
}
