// The account pages a mailed link opens (API.md section 4): /account/verify-email, the
// forgotten-password pair /account/forgot-password (asks for the link) and /account/reset-password
// (where the link leads), and /account/accept-invitation. A GET only shows what the link is for
// (peek: mail scanners and link previews follow links, and must not use them up); the button posts
// the form, which uses the link. Forms are bound to this browser by a signed cookie and carry an
// HMAC of it (FormTokens), so another site cannot post one; a POST that succeeds answers 303
// (API.md "Operations").
import Router from '@koa/router';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Context, Middleware, Next } from 'koa';
import compose from 'koa-compose';

import { describeWait, renderPage } from '../../http/pages.ts';
import type { Config } from '../../platform/config.ts';
import { AppError, type ErrorCode } from '../../platform/errors.ts';
import type { EmailVerificationService } from '../../services/email-verification.service.ts';
import { ACCEPT_INVITATION_PATH, type InvitationsService } from '../../services/invitations.service.ts';
import { isLinkTokenError, type LinkTokenErrorCode } from '../../services/link-tokens.service.ts';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../services/password-policy.ts';
import type { PasswordResetService } from '../../services/password-reset.service.ts';
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
  invitations: InvitationsService;
  passwordReset: PasswordResetService;
}

// The same words whether or not an account has the address (API.md section 4: no enumeration).
export const RESET_LINK_SENT_MESSAGE = 'If an account has this address, a link to choose a new password is on its way to it.';
// A well-formed address, loosely: the service compares it with stored ones, and this only turns away what is clearly not one.
const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+$/;
const ORGANIZATION_SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** What a page says about a link that cannot be used: a title, what to do, and its status. */
/** What a page of refusal says. */
interface PageText { status: number; title: string; message: string }

const LINK_PAGES: Record<LinkTokenErrorCode, PageText> = {
  'link.invalid': { status: 400, title: 'This link is not valid', message: 'Check that you opened the whole link from the mail (some mail programs break long links), or ask for a new one.' },
  'link.wrong_purpose': { status: 400, title: 'This link is for something else', message: 'Open it from the mail it came in: it does not lead to this page.' },
  'link.used': { status: 410, title: 'This link has been used already', message: 'Each link works once. If you followed it, you are done; otherwise ask for a new one.' },
  'link.expired': { status: 410, title: 'This link has expired', message: 'Ask for a new one: a verification link from the sign-in page, a password link from "Forgot your password?".' },
  'link.revoked': { status: 410, title: 'This link has been replaced', message: 'A newer link was sent since (or the address changed): use the link of the latest mail, or ask for a new one.' },
};

/** An invitation's link says what became of the invitation, and what to do: ask the organization. */
const INVITATION_PAGES: Partial<Record<ErrorCode, PageText>> = {
  ...LINK_PAGES,
  'link.used': { status: 410, title: 'This invitation has been accepted already', message: 'Each invitation works once. If you accepted it, sign in with your address and password.' },
  'link.expired': { status: 410, title: 'This invitation has expired', message: 'Invitations last 7 days. Ask the organization that invited you for a new one.' },
  'link.revoked': { status: 410, title: 'This invitation has been replaced', message: 'A newer invitation was sent to this address since: use the link of the latest mail.' },
  'invitation.withdrawn': { status: 410, title: 'This invitation was withdrawn', message: 'The organization withdrew it. Ask them if you think this is a mistake.' },
  'invitation.already_member': { status: 409, title: 'You are a member already', message: 'This address has an account in the organization already: sign in with it.' },
  'organization.max_users_reached': { status: 409, title: 'The organization is full', message: 'It has as many members as it may have. Ask the organization that invited you to make room; the invitation stays valid until it expires.' },
  'organization.inactive': { status: 403, title: 'The organization is disabled', message: 'It accepts no new members now. Ask the organization that invited you.' },
  'request.conflict': { status: 409, title: 'This invitation can no longer be accepted', message: 'The role it gives no longer exists or was switched off. Ask the organization for a new invitation.' },
};

/**
 * A link refused by the link-token service (or one of `pages`' other refusals), as the page that
 * explains it, with a way to a new link where there is one.
 */
async function asLinkPage<T>(work: () => Promise<T>, options: { pages?: Partial<Record<ErrorCode, PageText>>; newLink?: PageLink } = {}): Promise<T> {
  const pages: Partial<Record<ErrorCode, PageText>> = options.pages ?? LINK_PAGES;
  try {
    return await work();
  } catch (error) {
    const page = (isLinkTokenError(error) || error instanceof AppError) ? pages[error.code] : undefined;
    if (page) {
      throw new PageError(page.status, page.title, page.message, {}, error instanceof AppError && error.code === 'link.wrong_purpose' ? undefined : options.newLink);
    }
    throw error;
  }
}

/** The messages of a refused form: the password policy's reasons, a name too long. */
function formErrors(error: AppError): string[] {
  const labels: Record<string, string> = { first_name: 'First name', last_name: 'Last name', password: 'Password' };
  return (error.errors ?? [{ path: [], message: error.message, code: 'invalid' }]).map((issue) => {
    const field = String(issue.path[issue.path.length - 1] ?? '');
    return labels[field] ? `${labels[field]} ${issue.message}.` : `${issue.message}.`;
  });
}

export function accountPages(deps: AccountPagesDependencies): Middleware {
  const forms = new AccountForms(deps.orm, deps.config.secureCookies);
  const parseForm = formParser();
  const router = new Router({ prefix: ACCOUNT_PAGES_PREFIX });

  async function requireFormToken(ctx: Context, form: string,
    advice = 'Open the link from the mail again and press the button on that page.'): Promise<void> {
    await forms.require(ctx, form, advice);
  }

  router.get('/verify-email', showErrorsAsPages, async (ctx) => {
    const token = ctx.query.token;
    if (typeof token !== 'string' || token === '') {
      throw new PageError(400, 'This link is incomplete', 'Open the link from the mail again, or copy all of it into the address bar.');
    }
    const { email } = await asLinkPage(() => deps.emailVerification.inspect(token), { newLink: RESEND_VERIFICATION });
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
      { newLink: RESEND_VERIFICATION });
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

  const acceptPath = ACCEPT_INVITATION_PATH.slice(ACCOUNT_PAGES_PREFIX.length);

  async function showInvitation(ctx: Context, token: string, form: { firstName?: string; lastName?: string; errors?: string[] } = {}, status = 200): Promise<void> {
    const invitation = await asLinkPage(() => deps.invitations.inspect(token), { pages: INVITATION_PAGES });
    renderPage(ctx, 'accept-invitation', {
      title: `Join ${invitation.organizationName}`,
      ...invitation,
      token,
      firstName: form.firstName ?? '',
      lastName: form.lastName ?? '',
      errors: form.errors ?? [],
      passwordMinLength: PASSWORD_MIN_LENGTH,
      passwordMaxLength: PASSWORD_MAX_LENGTH,
      action: ACCEPT_INVITATION_PATH,
      csrf: await forms.issue(ctx, 'accept-invitation'),
    }, { status });
  }

  router.get(acceptPath, showErrorsAsPages, async (ctx) => {
    const token = ctx.query.token;
    if (typeof token !== 'string' || token === '') {
      throw new PageError(400, 'This link is incomplete', 'Open the link from the mail again, or copy all of it into the address bar.');
    }
    await showInvitation(ctx, token);
  });

  router.post(acceptPath, showErrorsAsPages, parseForm, async (ctx) => {
    await requireFormToken(ctx, 'accept-invitation');
    const body = formBody(ctx);
    const token = formField(body, 'token');
    const form = { firstName: formField(body, 'first_name'), lastName: formField(body, 'last_name') };
    const password = formField(body, 'password');
    if (password !== formField(body, 'password_again')) {
      await showInvitation(ctx, token, { ...form, errors: ['The two passwords differ: type the same password twice.'] }, 422);
      return;
    }
    let accepted;
    try {
      accepted = await asLinkPage(() => deps.invitations.accept(token, { ...form, password }, { ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined }),
        { pages: INVITATION_PAGES });
    } catch (error) {
      if (!(error instanceof AppError && error.code === 'request.validation_failed')) throw error;
      await showInvitation(ctx, token, { ...form, errors: formErrors(error) }, 422);
      return;
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`${ACCEPT_INVITATION_PATH}/done?organization=${encodeURIComponent(accepted.organizationSlug)}`);
  });

  router.get(`${acceptPath}/done`, showErrorsAsPages, (ctx) => {
    const slug = ctx.query.organization;
    renderPage(ctx, 'invitation-accepted', {
      title: 'Welcome aboard',
      organizationSlug: typeof slug === 'string' && /^[a-z0-9][a-z0-9-]{0,62}$/.test(slug) ? slug : '',
    });
  });

  // Forgotten password: the form that asks for a link, then the page saying one may be on its way.
  async function showForgotForm(ctx: Context, form: { email?: string; organization?: string; error?: string; status?: number; headers?: Record<string, string> } = {}) {
    renderPage(ctx, 'forgot-password', {
      title: 'Forgot your password?',
      action: `${ACCOUNT_PAGES_PREFIX}/forgot-password`,
      csrf: await forms.issue(ctx, 'forgot-password'),
      email: form.email ?? '',
      organization: form.organization ?? '',
      error: form.error,
    }, { status: form.status, headers: form.headers });
  }

  router.get('/forgot-password', showErrorsAsPages, async (ctx) => {
    await showForgotForm(ctx);
  });

  router.post('/forgot-password', showErrorsAsPages, parseForm, async (ctx) => {
    await requireFormToken(ctx, 'forgot-password', `Open ${ACCOUNT_PAGES_PREFIX}/forgot-password again and send the form from there.`);
    const body = formBody(ctx);
    const email = formField(body, 'email').trim();
    const organization = formField(body, 'organization').trim().toLowerCase();
    // What the form shows again after a refusal: cut to size, without the NUL characters no address holds.
    const retry = { email: email.slice(0, MAX_EMAIL_LENGTH).replaceAll('\u0000', ''), organization: organization.slice(0, MAX_ORGANIZATION_LENGTH).replaceAll('\u0000', '') };
    if (!email || email.length > MAX_EMAIL_LENGTH || !EMAIL_SHAPE.test(email) || email.includes('\u0000')) {
      return showForgotForm(ctx, { ...retry, status: 400, error: 'Enter the e-mail address of your account.' });
    }
    if (organization && !ORGANIZATION_SLUG.test(organization)) {
      return showForgotForm(ctx, { ...retry, status: 400, error: 'The organization is its short name: lower-case letters, digits and "-".' });
    }
    try {
      await deps.passwordReset.request({ email, organizationSlug: organization || undefined, ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined });
    } catch (error) {
      if (error instanceof RequestThrottled) {
        return showForgotForm(ctx, {
          ...retry, status: 429, headers: { 'Retry-After': String(error.retryAfterSeconds) },
          error: `Too many links asked for. Wait ${describeWait(error.retryAfterSeconds)} and try again.`,
        });
      }
      throw error;
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`${ACCOUNT_PAGES_PREFIX}/forgot-password/sent`);
  });

  router.get('/forgot-password/sent', showErrorsAsPages, (ctx) => {
    renderPage(ctx, 'forgot-password-sent', { title: 'Check your mail', message: RESET_LINK_SENT_MESSAGE });
  });

  // Where the reset link leads: the GET only shows the form (peek), the POST uses the link.
  async function showResetForm(ctx: Context, token: string, target: { email: string; organizationName: string },
    form: { errors?: string[]; status?: number } = {}) {
    renderPage(ctx, 'reset-password', {
      title: 'Choose a new password',
      email: target.email,
      organizationName: target.organizationName,
      token,
      action: `${ACCOUNT_PAGES_PREFIX}/reset-password`,
      csrf: await forms.issue(ctx, 'reset-password'),
      minLength: PASSWORD_MIN_LENGTH,
      maxLength: PASSWORD_MAX_LENGTH,
      errors: form.errors ?? [],
    }, { status: form.status });
  }

  router.get('/reset-password', showErrorsAsPages, async (ctx) => {
    const token = ctx.query.token;
    if (typeof token !== 'string' || token === '') {
      throw new PageError(400, 'This link is incomplete', 'Open the link from the mail again, or copy all of it into the address bar.');
    }
    const target = await asLinkPage(() => deps.passwordReset.inspect(token));
    await showResetForm(ctx, token, target);
  });

  router.post('/reset-password', showErrorsAsPages, parseForm, async (ctx) => {
    await requireFormToken(ctx, 'reset-password');
    const body = formBody(ctx);
    const token = formField(body, 'token');
    const password = formField(body, 'password');
    const confirm = formField(body, 'confirm');
    const target = await asLinkPage(() => deps.passwordReset.inspect(token));
    if (!password) return showResetForm(ctx, token, target, { status: 400, errors: ['Enter the new password.'] });
    if (password.length > PASSWORD_MAX_LENGTH) return showResetForm(ctx, token, target, { status: 400, errors: [`The password must be at most ${PASSWORD_MAX_LENGTH} characters.`] });
    if (password.includes('\u0000')) return showResetForm(ctx, token, target, { status: 400, errors: ['The password holds a character that is not allowed (NUL).'] });
    if (password !== confirm) return showResetForm(ctx, token, target, { status: 400, errors: ['The two passwords are not the same.'] });
    try {
      await asLinkPage(() => deps.passwordReset.reset(token, password, { ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined }));
    } catch (error) {
      if (error instanceof AppError && error.code === 'request.validation_failed') {
        const reasons = (error.errors ?? []).map((issue) => `The password ${issue.message}.`);
        return showResetForm(ctx, token, target, { status: 422, errors: reasons.length ? reasons : [error.message] });
      }
      throw error;
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`${ACCOUNT_PAGES_PREFIX}/reset-password/done`);
  });

  router.get('/reset-password/done', showErrorsAsPages, (ctx) => {
    renderPage(ctx, 'password-reset-done', { title: 'Password changed' });
  });

  const routes = compose<Context>([router.routes() as Middleware, router.allowedMethods() as Middleware]);
  return (ctx: Context, next: Next) => (ctx.path.startsWith(`${ACCOUNT_PAGES_PREFIX}/`) ? routes(ctx, next) : next());
}
