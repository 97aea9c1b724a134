// CSRF defence of the page forms. The provider's signed `_interaction` cookie ties the browser to
// the interaction; each form also carries a token, an HMAC of the interaction uid under a server
// secret shared by every process, so a page from elsewhere cannot post one. Account pages, which
// have no interaction, bind their forms to a browser cookie of their own instead (issueFor).
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
    return this.issueFor(`interaction:${interactionUid}`);
  }

  async verify(interactionUid: string, presented: unknown): Promise<boolean> {
    return this.verifyFor(`interaction:${interactionUid}`, presented);
  }

  /** A token for a form bound to `binding` (what ties it to one browser and one form, such as `account:<cookie>:<form>`). */
  async issueFor(binding: string): Promise<string> {
    return createHmac('sha256', await this.#secret()).update(binding).digest('base64url');
  }

  /** Constant-time comparison, so a forger learns nothing from how long a refusal takes. */
  async verifyFor(binding: string, presented: unknown): Promise<boolean> {
    if (typeof presented !== 'string' || presented.length === 0) return false;
    const expected = Buffer.from(await this.issueFor(binding));
    const actual = Buffer.from(presented);
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }
}
