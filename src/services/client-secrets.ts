// Client secrets are 256-bit random values (API.md section 2). Being high-entropy, a fast digest
// stores them safely (a slow password hash would only slow the token endpoint); the comparison is
// constant-time over fixed-length digests.
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

const SCHEME = 'sha256';

export function generateClientSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function hashClientSecret(secret: string): string {
  // crypto.hash: one-shot, without a Hash object per call (this runs on every token request).
  return `${SCHEME}$${hash('sha256', secret, 'base64url')}`;
}

export function isHashedClientSecret(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(`${SCHEME}$`);
}

export function verifyClientSecret(presented: string, stored: string | undefined): boolean {
  if (typeof presented !== 'string' || !isHashedClientSecret(stored)) return false;
  const expected = Buffer.from(stored);
  const actual = Buffer.from(hashClientSecret(presented));
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

export function generateClientId(prefix = 'lk'): string {
  return `${prefix}_${randomBytes(16).toString('base64url')}`;
}
