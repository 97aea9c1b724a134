import { randomBytes } from 'node:crypto';

import argon2 from 'argon2';

// OWASP's argon2id baseline (m = 19 MiB, t = 2, p = 1): ~20 ms here, sized for a login endpoint.
const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, ARGON2_OPTIONS);
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

/** A strong random password for generated accounts (shown once). */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}
