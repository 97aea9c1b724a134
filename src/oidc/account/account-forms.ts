// CSRF defence of the account pages, which have no interaction to bind their forms to: a random
// browser id in a signed cookie sent only to /account, and in each form an HMAC of that id and the
// form's name (FormTokens.issueFor), so another site can post none of them.
import { randomBytes } from 'node:crypto';

import type { MikroORM } from '@mikro-orm/postgresql';
import type { Context } from 'koa';

import { FormTokens } from '../interactions/form-tokens.ts';
import { PageError, formBody } from '../page-steps.ts';

export const ACCOUNT_PAGES_PREFIX = '/account';
/** The browser's id for account forms: random, signed with the app's cookie keys, sent only to /account. */
const BROWSER_COOKIE = 'latchkey.account';

export class AccountForms {
  readonly #tokens: FormTokens;
  readonly #secureCookies: boolean;

  constructor(orm: MikroORM, secureCookies: boolean) {
    this.#tokens = new FormTokens(orm);
    this.#secureCookies = secureCookies;
  }

  /** The binding of one form to this browser; made (with its cookie) when a page shows a form. */
  binding(ctx: Context, form: string, create: boolean): string | undefined {
    let browser = ctx.cookies.get(BROWSER_COOKIE, { signed: true });
    if (!browser && create) {
      browser = randomBytes(16).toString('base64url');
      ctx.cookies.set(BROWSER_COOKIE, browser, {
        signed: true, httpOnly: true, sameSite: 'lax', secure: this.#secureCookies, path: ACCOUNT_PAGES_PREFIX, overwrite: true,
      });
    }
    return browser ? `account:${browser}:${form}` : undefined;
  }

  /** The token of `form` for this browser (its cookie is made if need be). */
  issue(ctx: Context, form: string): Promise<string> {
    return this.#tokens.issueFor(this.binding(ctx, form, true)!);
  }

  async require(ctx: Context, form: string, message = 'Open the page again and press the button on it.'): Promise<void> {
    const binding = this.binding(ctx, form, false);
    if (!binding || !await this.#tokens.verifyFor(binding, formBody(ctx).csrf)) {
      throw new PageError(403, 'This form has expired', message);
    }
  }
}
