// CSRF defence of the interaction forms. The provider's signed `_interaction` cookie ties the
// browser to the interaction; each form also carries a token, an HMAC of the interaction uid
// under a server secret shared by every process, so a page from elsewhere cannot post one.
import { createHmac, timingSafeEqual } from 'node:crypto';

import type { MikroORM } from '@mikro-orm/postgresql';

import { serverSecret } from '../../services/server-secrets.service.ts';

export class FormTokens {
  readonly #orm: MikroORM;
  #key: Promise<string> | undefined;

  constructor(orm: MikroORM) {
    this.#orm = orm;
  }

  #secret(): Promise<string> {
    this.#key ??= serverSecret(this.#orm, 'csrf-key').catch((error: unknown) => {
      // A failed read (database briefly down) must not poison every later request.
      this.#key = undefined;
      throw error;
    });
    return this.#key;
  }

  async issue(interactionUid: string): Promise<string> {
    return createHmac('sha256', await this.#secret()).update(`interaction:${interactionUid}`).digest('base64url');
  }

  /** Constant-time comparison, so a forger learns nothing from how long a refusal takes. */
  async verify(interactionUid: string, presented: unknown): Promise<boolean> {
    if (typeof presented !== 'string' || presented.length === 0) return false;
    const expected = Buffer.from(await this.issue(interactionUid));
    const actual = Buffer.from(presented);
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }
}
