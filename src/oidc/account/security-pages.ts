// /account/security (API.md "Admin console and account pages"): the signed-in user's second
// factors. An authenticator app (enrol, remove), passkeys (register with a name, rename, remove)
// and recovery codes (a new set, shown once). Plain forms that work without JavaScript; only the
// WebAuthn ceremony of a passkey registration needs the page script. Every POST carries the
// account form token and answers 303, or the page of codes shown once. Removing a factor, and a
// new set of codes, need a sign-in of the last 5 minutes, as in the API: an older one is sent to
// sign in again (max_age=0) and comes back here.
import Router from '@koa/router';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Context, Middleware, Next } from 'koa';
import compose from 'koa-compose';

import { renderPage } from '../../http/pages.ts';
import type { Config } from '../../platform/config.ts';
import type { AuditActor } from '../../services/audit.service.ts';
import { ACCOUNT_CALLBACK_PATH, FIRST_PARTY_CLIENT_ID } from '../../services/bootstrap.service.ts';
import type { MfaService } from '../../services/mfa.service.ts';
import { MAX_PASSKEY_NAME_LENGTH, PasskeyRejected, type PasskeyFailure, type PasskeyService } from '../../services/passkeys.service.ts';
import { PageError, formBody, formField, formParser, showErrorsAsPages } from '../page-steps.ts';
import type { ProviderHolder } from '../provider-holder.ts';
import { ACCOUNT_PAGES_PREFIX, AccountForms } from './account-forms.ts';
import { AccountSession, type AccountUser } from './account-session.ts';

const SECURITY_PATH = `${ACCOUNT_PAGES_PREFIX}/security`;
const FORM = 'security';

export interface SecurityPagesDependencies {
  config: Pick<Config, 'issuer' | 'secureCookies'>;
  orm: MikroORM;
  mfa: MfaService;
  passkeys: PasskeyService;
  providers: ProviderHolder;
}

/** What the page says after a change (the 303 carries only its key). */
const NOTICES: Record<string, string> = {
  'totp-added': 'Your authenticator app is set up.',
  'totp-removed': 'Your authenticator app was removed.',
  'passkey-added': 'Your passkey is registered.',
  'passkey-renamed': 'The passkey was renamed.',
  'passkey-removed': 'The passkey was removed.',
  'signed-in-again': 'You signed in again: you can make the change now.',
};

const PASSKEY_MESSAGES: Record<PasskeyFailure, string> = {
  expired: 'The passkey request expired or was answered already. Try again.',
  malformed: 'The passkey answer could not be read. Try again.',
  not_verified: 'The passkey could not be verified. Try again, and unlock it with your screen lock, PIN or fingerprint when asked.',
  duplicate: 'This passkey is registered already.',
  too_many: 'Your account has as many passkeys as it may hold. Remove one first.',
  unknown_credential: 'This passkey is not registered.',
  wrong_user: 'That passkey belongs to another account.',
  counter: 'The passkey could not be verified.',
  disabled: 'This account cannot make changes now.',
};

export function securityPages(deps: SecurityPagesDependencies): Middleware {
  const forms = new AccountForms(deps.orm, deps.config.secureCookies);
  const session = new AccountSession(deps);
  const parseForm = formParser();
  const router = new Router({ prefix: ACCOUNT_PAGES_PREFIX });

  const actorOf = (ctx: Context, user: AccountUser): AuditActor & { userId: string } => ({
    userId: user.userId, clientId: FIRST_PARTY_CLIENT_ID, ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined,
  });
  const ceremonyBinding = (user: AccountUser) => `account:${user.sessionUid}`;

  /** The signed-in user; a browser without one is sent to sign in and comes back to `returnTo`. */
  async function signedIn(ctx: Context, returnTo = SECURITY_PATH): Promise<AccountUser | undefined> {
    const user = await session.current(ctx);
    if (!user) session.startSignIn(ctx, returnTo);
    return user;
  }

  function backToPage(ctx: Context, notice?: string) {
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(notice ? `${SECURITY_PATH}?done=${notice}` : SECURITY_PATH);
  }

  /** A change that needs a recent sign-in found an older one: sign in again, then come back. */
  async function orSignInAgain(ctx: Context, change: () => Promise<void>): Promise<boolean> {
    try {
      await change();
      return true;
    } catch (error) {
      if ((error as { code?: string }).code !== 'auth.recent_sign_in_required') throw error;
      session.startSignIn(ctx, `${SECURITY_PATH}/signed-in-again`, true);
      return false;
    }
  }

  async function showSecurity(ctx: Context, user: AccountUser, page: { error?: string; status?: number; passkeyName?: string } = {}) {
    const [overview, passkeys, options] = await Promise.all([
      deps.mfa.overview(user.userId), deps.passkeys.list(user.userId), deps.passkeys.registrationOptions(user.userId, ceremonyBinding(user)),
    ]);
    const totp = overview.factors.find((factor) => factor.kind === 'totp');
    const done = typeof ctx.query.done === 'string' ? NOTICES[ctx.query.done] : undefined;
    renderPage(ctx, 'account-security', {
      title: 'Security',
      account: user.email,
      csrf: await forms.issue(ctx, FORM),
      notice: done,
      error: page.error,
      totp: totp?.confirmed ? { enrolled: true, since: totp.created_at } : { enrolled: false, pending: !!totp },
      passkeys,
      maxNameLength: MAX_PASSKEY_NAME_LENGTH,
      passkeyName: page.passkeyName ?? '',
      registration: options ? JSON.stringify(options) : undefined,
      recoveryCodes: overview.recovery_codes,
      hasFactor: overview.enabled,
      prefix: SECURITY_PATH,
    }, { status: page.status, scripts: !!options });
  }

  function showRecoveryCodes(ctx: Context, codes: string[], lead: string) {
    renderPage(ctx, 'account-recovery-codes', { title: 'Save your recovery codes', lead, codes, back: SECURITY_PATH });
  }

  router.get('/sign-in', showErrorsAsPages, (ctx) => {
    session.startSignIn(ctx, String(ctx.query.return_to ?? SECURITY_PATH));
  });

  router.get(ACCOUNT_CALLBACK_PATH.slice(ACCOUNT_PAGES_PREFIX.length), showErrorsAsPages, async (ctx) => {
    await session.finishSignIn(ctx);
  });

  router.get('/security', showErrorsAsPages, async (ctx) => {
    const user = await signedIn(ctx);
    if (user) await showSecurity(ctx, user);
  });

  // Where a fresh sign-in for a change comes back: the page, saying the change can be made now.
  router.get('/security/signed-in-again', showErrorsAsPages, async (ctx) => {
    if (await signedIn(ctx)) backToPage(ctx, 'signed-in-again');
  });

  router.post('/security/totp', showErrorsAsPages, parseForm, async (ctx) => {
    await forms.require(ctx, FORM);
    const user = await signedIn(ctx);
    if (!user) return;
    try {
      await deps.mfa.startTotp(actorOf(ctx, user));
    } catch (error) {
      if ((error as { code?: string }).code !== 'mfa.totp_exists') throw error;
      return backToPage(ctx);
    }
    ctx.status = 303;
    ctx.redirect(`${SECURITY_PATH}/totp`);
  });

  async function showTotpEnrolment(ctx: Context, user: AccountUser, error?: string) {
    const enrolment = await deps.mfa.pendingTotp(user.userId);
    if (!enrolment) return backToPage(ctx);
    renderPage(ctx, 'account-totp', {
      title: 'Set up an authenticator app',
      qrSvg: enrolment.qr_svg,
      secret: enrolment.secret,
      action: `${SECURITY_PATH}/totp/verify`,
      csrf: await forms.issue(ctx, FORM),
      back: SECURITY_PATH,
      error,
    }, { status: error ? 400 : 200 });
  }

  router.get('/security/totp', showErrorsAsPages, async (ctx) => {
    const user = await signedIn(ctx, `${SECURITY_PATH}/totp`);
    if (user) await showTotpEnrolment(ctx, user);
  });

  router.post('/security/totp/verify', showErrorsAsPages, parseForm, async (ctx) => {
    await forms.require(ctx, FORM);
    const user = await signedIn(ctx);
    if (!user) return;
    const code = formField(formBody(ctx), 'code').replace(/\s/g, '');
    if (!/^\d{6}$/.test(code)) return showTotpEnrolment(ctx, user, 'Enter the 6 digits your authenticator app shows.');
    let recoveryCodes: string[] | undefined;
    try {
      ({ recoveryCodes } = await deps.mfa.confirmTotp(actorOf(ctx, user), code));
    } catch (error) {
      const failure = (error as { code?: string }).code;
      if (failure === 'mfa.invalid_code') return showTotpEnrolment(ctx, user, 'That code is not right. Enter the 6 digits the app shows now.');
      if (failure === 'mfa.no_pending_totp') return backToPage(ctx);
      throw error;
    }
    if (recoveryCodes) return showRecoveryCodes(ctx, recoveryCodes, 'Your authenticator app is set up.');
    backToPage(ctx, 'totp-added');
  });

  router.post('/security/totp/remove', showErrorsAsPages, parseForm, async (ctx) => {
    await forms.require(ctx, FORM);
    const user = await signedIn(ctx);
    if (!user) return;
    if (!await orSignInAgain(ctx, () => deps.mfa.removeTotp(actorOf(ctx, user), user.authTime))) return;
    backToPage(ctx, 'totp-removed');
  });

  router.post('/security/passkeys', showErrorsAsPages, parseForm, async (ctx) => {
    await forms.require(ctx, FORM);
    const user = await signedIn(ctx);
    if (!user) return;
    const body = formBody(ctx);
    const name = formField(body, 'name');
    let recoveryCodes: string[] | undefined;
    try {
      ({ recoveryCodes } = await deps.passkeys.register(actorOf(ctx, user), ceremonyBinding(user), formField(body, 'response'), name));
    } catch (error) {
      if (error instanceof PasskeyRejected) {
        return showSecurity(ctx, user, { status: 400, error: PASSKEY_MESSAGES[error.reason], passkeyName: name.slice(0, MAX_PASSKEY_NAME_LENGTH) });
      }
      throw error;
    }
    if (recoveryCodes) return showRecoveryCodes(ctx, recoveryCodes, 'Your passkey is registered.');
    backToPage(ctx, 'passkey-added');
  });

  router.post('/security/passkeys/:id/rename', showErrorsAsPages, parseForm, async (ctx) => {
    await forms.require(ctx, FORM);
    const user = await signedIn(ctx);
    if (!user) return;
    const name = formField(formBody(ctx), 'name');
    try {
      await deps.passkeys.rename(actorOf(ctx, user), ctx.params.id!, name);
    } catch (error) {
      const failure = (error as { code?: string }).code;
      if (failure === 'request.malformed') return showSecurity(ctx, user, { status: 400, error: `A passkey's name is 1 to ${MAX_PASSKEY_NAME_LENGTH} characters.` });
      if (failure === 'resource.not_found') throw new PageError(404, 'No such passkey', 'It may have been removed already.', {}, { href: SECURITY_PATH, label: 'Back to security' });
      throw error;
    }
    backToPage(ctx, 'passkey-renamed');
  });

  router.post('/security/passkeys/:id/remove', showErrorsAsPages, parseForm, async (ctx) => {
    await forms.require(ctx, FORM);
    const user = await signedIn(ctx);
    if (!user) return;
    try {
      if (!await orSignInAgain(ctx, () => deps.passkeys.remove(actorOf(ctx, user), ctx.params.id!, user.authTime))) return;
    } catch (error) {
      if ((error as { code?: string }).code === 'resource.not_found') {
        throw new PageError(404, 'No such passkey', 'It may have been removed already.', {}, { href: SECURITY_PATH, label: 'Back to security' });
      }
      throw error;
    }
    backToPage(ctx, 'passkey-removed');
  });

  router.post('/security/recovery-codes', showErrorsAsPages, parseForm, async (ctx) => {
    await forms.require(ctx, FORM);
    const user = await signedIn(ctx);
    if (!user) return;
    let codes: string[] = [];
    try {
      if (!await orSignInAgain(ctx, async () => { codes = await deps.mfa.newRecoveryCodes(actorOf(ctx, user), user.authTime); })) return;
    } catch (error) {
      if ((error as { code?: string }).code === 'mfa.no_factor') return showSecurity(ctx, user, { status: 409, error: 'Set up an authenticator app or a passkey first.' });
      throw error;
    }
    showRecoveryCodes(ctx, codes, 'Your previous recovery codes no longer work.');
  });

  const routes = compose<Context>([router.routes() as Middleware, router.allowedMethods() as Middleware]);
  return (ctx: Context, next: Next) => (ctx.path.startsWith(`${ACCOUNT_PAGES_PREFIX}/`) ? routes(ctx, next) : next());
}
