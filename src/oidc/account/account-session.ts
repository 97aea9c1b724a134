// Who is signed in on the account pages. They read the provider's own browser session (its signed
// `_session` cookie, through `provider.Session.get`), the one the sign-in pages create: no second
// session to keep in step with sign-out. A browser without one (or with a sign-in too old for
// what it asks) is sent through an authorization code flow of the built-in `latchkey` client
// (public, PKCE, state), whose callback spends the code in process and goes back to the page.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

import type { Context } from 'koa';

import type { Config } from '../../platform/config.ts';
import { ACCOUNT_CALLBACK_PATH, FIRST_PARTY_CLIENT_ID } from '../../services/bootstrap.service.ts';
import { ACR_MFA, type MfaService } from '../../services/mfa.service.ts';
import { findActiveProfile } from '../../services/users.service.ts';
import type { MikroORM } from '@mikro-orm/postgresql';
import { PageError } from '../page-steps.ts';
import type { ProviderHolder } from '../provider-holder.ts';
import { OIDC_ROUTES } from '../provider.ts';
import { callTokenEndpoint } from '../token-endpoint.ts';
import { ACCOUNT_PAGES_PREFIX } from './account-forms.ts';

/** The sign-in in progress: state, PKCE verifier and where to go back, in a signed cookie sent only to the callback. */
const SIGN_IN_COOKIE = 'latchkey.account.signin';
const SIGN_IN_TTL_MS = 10 * 60 * 1000;

export interface AccountUser {
  userId: string;
  email: string;
  /** When the session's user signed in (seconds): removing a factor needs it recent. */
  authTime: number | undefined;
  /** The provider session's uid: what the account pages bind their passkey ceremonies to. */
  sessionUid: string;
}

export interface AccountSessionDependencies {
  config: Pick<Config, 'issuer' | 'secureCookies'>;
  orm: MikroORM;
  mfa: MfaService;
  providers: ProviderHolder;
}

/** A path of the account pages to go back to (never another site). */
function safeReturnPath(value: unknown): string {
  return typeof value === 'string' && /^\/account\/[\w/-]*$/.test(value) ? value : `${ACCOUNT_PAGES_PREFIX}/security`;
}

export class AccountSession {
  readonly #deps: AccountSessionDependencies;

  constructor(deps: AccountSessionDependencies) {
    this.#deps = deps;
  }

  /**
   * The signed-in user of this browser, or undefined (no session, a disabled user). A session that
   * has not passed the second factor its user now has (it signed in before the first one was
   * added) counts as not recent: removing a factor then asks for a sign-in with the factor.
   */
  async current(ctx: Context): Promise<AccountUser | undefined> {
    const session = await this.#deps.providers.current.Session.get(ctx as never);
    const userId = session.accountId;
    if (!userId) return undefined;
    const profile = await findActiveProfile(this.#deps.orm, userId);
    if (!profile) return undefined;
    const passedFactor = session.acr === ACR_MFA || !(await this.#deps.mfa.standing(userId)).hasFactor;
    return { userId, email: profile.email, authTime: passedFactor ? session.authTime() : undefined, sessionUid: session.uid };
  }

  /** Sends the browser to sign in, then back to `returnTo`; `fresh` asks for the password again (max_age=0). */
  startSignIn(ctx: Context, returnTo: string, fresh = false): void {
    const state = randomBytes(16).toString('base64url');
    const verifier = randomBytes(32).toString('base64url');
    ctx.cookies.set(SIGN_IN_COOKIE, JSON.stringify({ state, verifier, returnTo: safeReturnPath(returnTo) }), {
      signed: true, httpOnly: true, sameSite: 'lax', secure: this.#deps.config.secureCookies, path: ACCOUNT_CALLBACK_PATH,
      maxAge: SIGN_IN_TTL_MS, overwrite: true,
    });
    const url = new URL(OIDC_ROUTES.authorization, this.#deps.config.issuer);
    url.search = new URLSearchParams({
      client_id: FIRST_PARTY_CLIENT_ID, response_type: 'code', scope: 'openid', redirect_uri: this.#redirectUri(), state,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
      ...(fresh ? { max_age: '0' } : {}),
    }).toString();
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(url.href);
  }

  /** The code flow's callback: checks the state, spends the code with its verifier, goes back. */
  async finishSignIn(ctx: Context): Promise<void> {
    const raw = ctx.cookies.get(SIGN_IN_COOKIE, { signed: true });
    ctx.cookies.set(SIGN_IN_COOKIE, null, { path: ACCOUNT_CALLBACK_PATH, overwrite: true });
    let pending: { state?: unknown; verifier?: unknown; returnTo?: unknown } = {};
    try {
      pending = raw ? JSON.parse(raw) as typeof pending : {};
    } catch { /* a cookie that is not ours: no sign-in in progress */ }
    const state = typeof ctx.query.state === 'string' ? ctx.query.state : '';
    const expected = typeof pending.state === 'string' ? pending.state : '';
    if (!expected || state.length !== expected.length || !timingSafeEqual(Buffer.from(state), Buffer.from(expected))) {
      throw new PageError(400, 'This sign-in has expired', 'Open your account page again to sign in.', {}, { href: `${ACCOUNT_PAGES_PREFIX}/security`, label: 'Your account' });
    }
    if (typeof ctx.query.error === 'string') {
      throw new PageError(400, 'You are not signed in', 'The sign-in was cancelled.', {}, { href: `${ACCOUNT_PAGES_PREFIX}/security`, label: 'Try again' });
    }
    const code = typeof ctx.query.code === 'string' ? ctx.query.code : '';
    const answer = await callTokenEndpoint(this.#deps.providers.current, OIDC_ROUTES.token, {
      grant_type: 'authorization_code', code, redirect_uri: this.#redirectUri(), code_verifier: String(pending.verifier),
    }, { clientId: FIRST_PARTY_CLIENT_ID }, { ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined });
    if (answer.status !== 200) {
      throw new PageError(400, 'This sign-in has expired', 'Open your account page again to sign in.', {}, { href: `${ACCOUNT_PAGES_PREFIX}/security`, label: 'Your account' });
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(safeReturnPath(pending.returnTo));
  }

  #redirectUri(): string {
    return `${this.#deps.config.issuer}${ACCOUNT_CALLBACK_PATH}`;
  }
}
