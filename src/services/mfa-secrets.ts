// TOTP shared secrets at rest: AES-256-GCM (node:crypto) under a 256-bit key kept with the other
// server secrets (`server_secret`, name `mfa-secret-key`), made once and shared by every process.
// The user's id is the additional authenticated data, so a ciphertext copied onto another user's
// row does not decrypt. Stored as `v1.<iv>.<tag>.<ciphertext>`, base64url each; `v1` names this
// key and scheme, so a later rotation can tell old rows from new.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

import type { MikroORM } from '@mikro-orm/postgresql';

import { serverSecret } from './server-secrets.service.ts';

const KEY_NAME = 'mfa-secret-key';
const VERSION = 'v1';
const IV_BYTES = 12;

export class MfaSecretBox {
  readonly #orm: MikroORM;
  #key: Promise<Buffer> | undefined;

  constructor(orm: MikroORM) {
    this.#orm = orm;
  }

  #keyBytes(): Promise<Buffer> {
    this.#key ??= serverSecret(this.#orm, KEY_NAME, 32).then((value) => Buffer.from(value, 'base64url')).catch((error: unknown) => {
      // A failed read (database briefly down) must not poison every later call.
      this.#key = undefined;
      throw error;
    });
    return this.#key;
  }

  async seal(plaintext: string, userId: string): Promise<string> {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', await this.#keyBytes(), iv);
    cipher.setAAD(Buffer.from(`mfa_factor:${userId}`));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join('.');
  }

  /** Throws when the value was not sealed for this user under this key (tampered, moved or corrupt). */
  async open(sealed: string, userId: string): Promise<string> {
    const [version, iv, tag, ciphertext] = sealed.split('.');
    if (version !== VERSION || !iv || !tag || ciphertext === undefined) throw new Error('unknown MFA secret format');
    const decipher = createDecipheriv('aes-256-gcm', await this.#keyBytes(), Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(`mfa_factor:${userId}`));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
  }
}
