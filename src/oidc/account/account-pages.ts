// The account pages a mailed link opens (API.md section 4): /account/verify-email now. A GET only
// shows what the link is for (peek: mail scanners and link previews follow links, and must not use
// them up); the button posts the form, which uses the link. Forms are bound to this browser by a
// signed cookie and carry an HMAC of it (FormTokens), so another site cannot post one; every POST
// answers 303 (API.md "Operations").
import Router from '@koa/router';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Context, Middleware, Next } from 'koa';
import compose from 'koa-compose';

import { describeWait, renderPage } from '../../http/pages.ts';
import type { Config } from '../../platform/config.ts';
import type { EmailVerificationService } from '../../services/email-verification.service.ts';
import { isLinkTokenError, type LinkTokenErrorCode } from '../../services/link-tokens.service.ts';
import { RequestThrottled } from '../../services/request-throttle.ts';
import { ACCOUNT_PAGES_PREFIX, AccountForms } from './account-forms.ts';
import { PageError, formBody, formField, formParser, showErrorsAsPages, type PageLink } from '../page-steps.ts';

export { ACCOUNT_PAGES_PREFIX };
const MAX_EMAIL_LENGTH = 254;
const MAX_ORGANIZATION_LENGTH = 64;
// The same words whether or not an unverified account has the address.
export const VERIFICATION_LINK_SENT_MESSAGE = 'If an unverified account has this address, a new link is on its way. Check your mail.';
const RESEND_VERIFICATION: PageLink = { href: `${ACCOUNT_PAGES_PREFIX}/verify-email/resend`, label: 'Send me a new link' };

export interface AccountPagesDependencies {
  config: Pick<Config, 'secureCookies'>;
  orm: MikroORM;
  emailVerification: EmailVerificationService;
}

/** What a page says about a link that cannot be used: a title, what to do, and its status. */
const LINK_PAGES: Record<LinkTokenErrorCode, { status: number; title: string; message: string }> = {
  'link.invalid': { status: 400, title: 'This link is not valid', message: 'Check that you opened the whole link from the mail (some mail programs break long links), or ask for a new one.' },
  'link.wrong_purpose': { status: 400, title: 'This link is for something else', message: 'Open it from the mail it came in: it does not lead to this page.' },
  'link.used': { status: 410, title: 'This link has been used already', message: 'Each link works once. If you followed it, you are done; otherwise ask for a new one.' },
  'link.expired': { status: 410, title: 'This link has expired', message: 'Links work for a limited time only. Ask for a new one.' },
  'link.revoked': { status: 410, title: 'This link has been replaced', message: 'A newer link was sent since (or the address changed): use the link of the latest mail, or ask for a new one.' },
};

/** A link refused by the link-token service, as the page that explains it, with a way to a new link. */
async function asLinkPage<T>(work: () => Promise<T>, newLink: PageLink): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isLinkTokenError(error)) {
      const page = LINK_PAGES[error.code];
      throw new PageError(page.status, page.title, page.message, {}, error.code === 'link.wrong_purpose' ? undefined : newLink);
    }
    throw error;
  }
}

export function accountPages(deps: AccountPagesDependencies): Middleware {
  const forms = new AccountForms(deps.orm, deps.config.secureCookies);
  const parseForm = formParser();
  const router = new Router({ prefix: ACCOUNT_PAGES_PREFIX });

  async function requireFormToken(ctx: Context, form: string): Promise<void> {
    await forms.require(ctx, form, 'Open the link from the mail again and press the button on that page.');
  }

  router.get('/verify-email', showErrorsAsPages, async (ctx) => {
    const token = ctx.query.token;
    if (typeof token !== 'string' || token === '') {
      throw new PageError(400, 'This link is incomplete', 'Open the link from the mail again, or copy all of it into the address bar.');
    }
    const { email } = await asLinkPage(() => deps.emailVerification.inspect(token), RESEND_VERIFICATION);
    renderPage(ctx, 'verify-email', {
      title: 'Confirm your e-mail address',
      email,
      token,
      action: `${ACCOUNT_PAGES_PREFIX}/verify-email`,
      csrf: await forms.issue(ctx, 'verify-email'),
    });
  });

  router.post('/verify-email', showErrorsAsPages, parseForm, async (ctx) => {
    await requireFormToken(ctx, 'verify-email');
    await asLinkPage(() => deps.emailVerification.verify(formField(formBody(ctx), 'token'), { ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined }),
      RESEND_VERIFICATION);
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`${ACCOUNT_PAGES_PREFIX}/verify-email/done`);
  });

  router.get('/verify-email/done', showErrorsAsPages, (ctx) => {
    renderPage(ctx, 'email-verified', { title: 'E-mail address verified' });
  });

  async function showResendForm(ctx: Context, form: { email?: string; organization?: string; error?: string; notice?: string; status?: number; headers?: Record<string, string> } = {}) {
    renderPage(ctx, 'verify-email-resend', {
      title: 'Send the verification link again',
      action: `${ACCOUNT_PAGES_PREFIX}/verify-email/resend`,
      csrf: await forms.issue(ctx, 'verify-email-resend'),
      email: form.email ?? '',
      organization: form.organization ?? '',
      error: form.error,
      notice: form.notice,
    }, { status: form.status, headers: form.headers });
  }

  router.get('/verify-email/resend', showErrorsAsPages, async (ctx) => {
    await showResendForm(ctx, ctx.query.sent === '1' ? { notice: VERIFICATION_LINK_SENT_MESSAGE } : {});
  });

  // The same answer and the same limits as POST /api/v1/auth/verify-email/resend, whatever the address.
  router.post('/verify-email/resend', showErrorsAsPages, parseForm, async (ctx) => {
    await requireFormToken(ctx, 'verify-email-resend');
    const body = formBody(ctx);
    const email = formField(body, 'email').trim();
    const organization = formField(body, 'organization').trim();
    const retry = { email: email.slice(0, MAX_EMAIL_LENGTH), organization: organization.slice(0, MAX_ORGANIZATION_LENGTH) };
    if (!email || email.length > MAX_EMAIL_LENGTH || organization.length > MAX_ORGANIZATION_LENGTH) {
      return showResendForm(ctx, { ...retry, status: 400, error: 'Enter the e-mail address the link should go to.' });
    }
    try {
      await deps.emailVerification.resend({ identifier: email, organizationSlug: organization || undefined, ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined });
    } catch (error) {
      if (error instanceof RequestThrottled) {
        return showResendForm(ctx, {
          ...retry, status: 429, headers: { 'Retry-After': String(error.retryAfterSeconds) },
          error: `Too many links asked for. Wait ${describeWait(error.retryAfterSeconds)} and try again.`,
        });
      }
      throw error;
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`${ACCOUNT_PAGES_PREFIX}/verify-email/resend?sent=1`);
  });

  const routes = compose<Context>([router.routes() as Middleware, router.allowedMethods() as Middleware]);
  return (ctx: Context, next: Next) => (ctx.path.startsWith(`${ACCOUNT_PAGES_PREFIX}/`) ? routes(ctx, next) : next());
}
