// The pages node-oidc-provider sends the browser to (`interactions.url`): sign-in and consent
// at /interaction/:uid. Plain HTML forms that work without JavaScript; every POST carries a form
// token and answers 303 (API.md "Operations").
import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import compose from 'koa-compose';
import { type Client, type InteractionResults, type Provider } from 'oidc-provider';

import { STEP_UP_REASON, type InteractionPagesDependencies as Dependencies } from '../provider.ts';
import { WEBAUTHN_BROWSER_ASSET, staticAssets, webauthnBrowserBundle } from '../../http/static-assets.ts';
import { auditEntry, recordAudit } from '../../services/audit.service.ts';
import { EmailNotVerified, SignInFailed } from '../../services/accounts.service.ts';
import { ACR_MFA, ACR_PASSWORD, AMR_HWK, AMR_MFA, AMR_OTP, AMR_PASSWORD, SecondFactorRejected } from '../../services/mfa.service.ts';
import { PasskeyRejected, type PasskeyFailure } from '../../services/passkeys.service.ts';
import { FORGOT_PASSWORD_PATH } from '../../services/password-reset.service.ts';
import { RequestThrottled } from '../../services/request-throttle.ts';
import { SignInThrottled } from '../../services/sign-in-throttle.ts';
import { findActiveProfile } from '../../services/users.service.ts';
import { PageError, expiredInteraction, formBody, formField, formParser, showErrorsAsPages } from '../page-steps.ts';
import { OIDC_ROUTES } from '../provider.ts';
import { SCOPE_DESCRIPTIONS, allowedApiScopes, consentRequest, isFirstParty, saveConsent, type ConsentRequest } from './consent.ts';
import { FormTokens } from './form-tokens.ts';
import { VIEWS_DIRECTORY, describeWait, renderPage } from '../../http/pages.ts';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

const MAX_IDENTIFIER_LENGTH = 254;
const MAX_ORGANIZATION_LENGTH = 64;
// argon2 hashes whatever it is given; a cap keeps one request from costing seconds.
const MAX_PASSWORD_LENGTH = 1024;

export const WRONG_CREDENTIALS_MESSAGE = 'The email, username or password is not right.';
export const EMAIL_NOT_VERIFIED_MESSAGE = 'Your e-mail address is not verified yet. Follow the link in the mail we sent you, or have a new one sent.';
// The same words whether or not an unverified account answers to the identifier.
export const VERIFICATION_RESENT_MESSAGE = 'If this account\'s address is waiting for verification, a new link is on its way. Follow it, then sign in.';
export const WRONG_CODE_MESSAGE = 'That code is not right. Enter the code your authenticator app shows now, or an unused recovery code.';

/**
 * A sign-in between its password and its second factor, kept in the store under the interaction's
 * uid (the provider's signed interaction cookie ties that uid to this browser): `verify` asks for
 * a code, `enrol` sets up an authenticator first (a policy asks for one, or a step-up found none),
 * `enrolled` shows the new recovery codes before going on.
 */
interface PendingSecondFactor {
  userId: string;
  step: 'verify' | 'enrol' | 'enrolled';
  /** Why enrolment is asked, shown on its page. */
  reason?: 'policy' | 'step_up';
}

const PENDING_TTL_SECONDS = 10 * 60;
const pendingKey = (uid: string) => `mfa-pending:${uid}`;
/** RFC 8176: a password and a one-time code, which together are multiple factors. */
const MFA_LOGIN = { amr: [AMR_PASSWORD, AMR_OTP, AMR_MFA], acr: ACR_MFA };
/** A password, then a passkey (a hardware-secured key, with the user verified by the device). */
const PASSKEY_SECOND_FACTOR_LOGIN = { amr: [AMR_PASSWORD, AMR_HWK, AMR_MFA], acr: ACR_MFA };
/**
 * A passkey alone: possession of the key ("hwk") and the user verified by the device itself (a
 * PIN or a biometric, which the device does not say, so neither "pin" nor "fpt"): two factors,
 * hence "mfa" and the MFA acr. Passkeys are registered and used with userVerification 'required'.
 */
const PASSKEY_LOGIN = { amr: [AMR_HWK, AMR_MFA], acr: ACR_MFA };

/** What the page says when a passkey is not accepted. */
const PASSKEY_MESSAGES: Record<PasskeyFailure, string> = {
  expired: 'The passkey request expired or was answered already. Try again.',
  malformed: 'The passkey answer could not be read. Try again.',
  unknown_credential: 'This passkey is not registered with Latchkey (it may have been removed). Sign in with your password instead.',
  wrong_user: 'That passkey belongs to another account. Use a passkey of this account.',
  not_verified: 'The passkey could not be verified. Try again, and unlock it with your screen lock, PIN or fingerprint when asked.',
  counter: 'This passkey could not be verified (its signature counter went back). Use another passkey, or sign in with your password.',
  disabled: 'This account cannot sign in now.',
  duplicate: 'This passkey is registered already.',
  too_many: 'This account has as many passkeys as it may hold.',
};

/** Where a page's forms may lead: this server, and the client's redirect_uri at the end. */
function formTargets(interaction: Interaction): string[] {
  const redirectUri = interaction.params.redirect_uri;
  return typeof redirectUri === 'string' ? [redirectUri] : [];
}

function clientName(client: Client): string {
  return client.clientName ?? client.clientId;
}

/** The page middleware, in order, for the app to `use` one after the other. */
export function interactionPages(deps: Dependencies): Middleware {
  const { config, orm } = deps;
  const formTokens = new FormTokens(orm);
  const parseForm = formParser();

  /** The interaction behind this URL, from the live provider (a key rotation may have replaced it). */
  async function loadInteraction(ctx: Context): Promise<{ provider: Provider; interaction: Interaction; client: Client }> {
    const provider = deps.providers.current;
    const interaction = await provider.interactionDetails(ctx.req, ctx.res);
    // The cookie names the browser's current interaction; an older page's URL is stale.
    if (interaction.uid !== ctx.params.uid) throw expiredInteraction();
    const client = await provider.Client.find(String(interaction.params.client_id));
    if (!client) throw new PageError(400, 'This application is no longer registered', 'Latchkey cannot continue signing you in to it.');
    return { provider, interaction, client };
  }

  async function requireFormToken(ctx: Context, next: Next) {
    const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
    if (!await formTokens.verify(ctx.params.uid!, body.csrf)) {
      throw new PageError(403, 'This form has expired', 'The form did not come from this sign-in. Go back to the application and start again.');
    }
    await next();
  }

  /** Hands the result to the provider and sends the browser on (RFC 9110 section 15.4.4: 303 after a POST). */
  async function finish(ctx: Context, provider: Provider, result: InteractionResults, mergeWithLastSubmission: boolean) {
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission });
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(returnTo);
  }

  /** A form posted for a step that is already done (a second tab, a double click): show the current step. */
  function showCurrentStep(ctx: Context) {
    ctx.status = 303;
    ctx.redirect(`/interaction/${encodeURIComponent(ctx.params.uid!)}`);
  }

  async function showLogin(ctx: Context, interaction: Interaction, client: Client,
    form: {
      identifier?: string; organization?: string; error?: string; notice?: string; offerResend?: boolean; status?: number; headers?: Record<string, string>;
    } = {}) {
    const loginHint = typeof interaction.params.login_hint === 'string' ? interaction.params.login_hint : '';
    const passkeyOptions = await deps.passkeys.authenticationOptions(ceremonyBinding(interaction.uid));
    renderPage(ctx, 'login', {
      title: 'Sign in',
      clientName: clientName(client),
      action: `/interaction/${interaction.uid}/login`,
      abortAction: `/interaction/${interaction.uid}/abort`,
      csrf: await formTokens.issue(interaction.uid),
      identifier: form.identifier ?? loginHint,
      organization: form.organization ?? '',
      error: form.error,
      notice: form.notice,
      resendAction: form.offerResend ? `/interaction/${interaction.uid}/resend-verification` : undefined,
      forgotPasswordUrl: FORGOT_PASSWORD_PATH,
      passkey: passkeyOptions ? { action: `/interaction/${interaction.uid}/passkey`, options: JSON.stringify(passkeyOptions) } : undefined,
    }, { status: form.status, headers: form.headers, formTargets: formTargets(interaction), scripts: !!passkeyOptions });
  }

  /** A passkey ceremony belongs to one interaction (whose signed cookie ties it to this browser). */
  function ceremonyBinding(uid: string): string {
    return `interaction:${uid}`;
  }

  async function readPending(uid: string): Promise<PendingSecondFactor | undefined> {
    const raw = await deps.store.get(pendingKey(uid));
    return raw ? JSON.parse(raw) as PendingSecondFactor : undefined;
  }

  async function savePending(uid: string, pending: PendingSecondFactor): Promise<void> {
    await deps.store.set(pendingKey(uid), JSON.stringify(pending), PENDING_TTL_SECONDS);
  }

  async function accountLabel(userId: string): Promise<string> {
    const profile = await findActiveProfile(orm, userId);
    if (!profile) throw expiredInteraction();
    return profile.email;
  }

  /**
   * The second-factor page. Each method the user has is one section of it; TOTP and recovery
   * codes share one code field (their shapes tell them apart); passkeys have a section of their
   * own (shown by the page script when the browser can use them).
   */
  async function showSecondFactor(ctx: Context, interaction: Interaction, client: Client, pending: PendingSecondFactor,
    form: { error?: string; status?: number; headers?: Record<string, string> } = {}) {
    const account = await accountLabel(pending.userId);
    const [overview, passkeyOptions] = await Promise.all([
      deps.mfa.overview(pending.userId), deps.passkeys.authenticationOptions(ceremonyBinding(interaction.uid), pending.userId),
    ]);
    const hasTotp = overview.factors.some((factor) => factor.kind === 'totp' && factor.confirmed);
    const methods: Record<string, string>[] = [];
    if (passkeyOptions) methods.push({ kind: 'passkey', action: `/interaction/${interaction.uid}/mfa/passkey`, options: JSON.stringify(passkeyOptions) });
    methods.push({
      kind: 'code',
      hint: hasTotp ? 'The 6 digits your authenticator app shows, or one of your recovery codes.' : 'One of your recovery codes, if you cannot use a passkey.',
    });
    renderPage(ctx, 'mfa', {
      title: 'Two-step verification',
      clientName: clientName(client),
      account,
      action: `/interaction/${interaction.uid}/mfa`,
      abortAction: `/interaction/${interaction.uid}/abort`,
      csrf: await formTokens.issue(interaction.uid),
      methods,
      error: form.error,
    }, { status: form.status, headers: form.headers, formTargets: formTargets(interaction), scripts: !!passkeyOptions });
  }

  async function showEnrolment(ctx: Context, interaction: Interaction, client: Client, pending: PendingSecondFactor,
    form: { error?: string; status?: number } = {}) {
    const enrolment = await deps.mfa.pendingTotp(pending.userId)
      ?? await deps.mfa.startTotp({ userId: pending.userId, clientId: client.clientId, ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined });
    renderPage(ctx, 'mfa-enrol', {
      title: 'Set up two-step verification',
      clientName: clientName(client),
      reason: pending.reason === 'step_up'
        ? `${clientName(client)} asks for two-step verification, and your account has none yet.`
        : 'Your account must have two-step verification before you go on.',
      qrSvg: enrolment.qr_svg,
      secret: enrolment.secret,
      action: `/interaction/${interaction.uid}/mfa/enrol`,
      abortAction: `/interaction/${interaction.uid}/abort`,
      csrf: await formTokens.issue(interaction.uid),
      error: form.error,
    }, { status: form.status, formTargets: formTargets(interaction) });
  }

  /**
   * A login prompt whose only reason is the second-factor check (provider.ts): the session's user
   * has given a password already and is asked for the factor alone (enrolling one if they have
   * none). Any other reason (no session, max_age, prompt=login) asks for the password first.
   */
  async function stepUpOf(interaction: Interaction): Promise<PendingSecondFactor | undefined> {
    const accountId = interaction.session?.accountId;
    const reasons = interaction.prompt.reasons as string[];
    if (!accountId || !reasons.includes(STEP_UP_REASON) || reasons.some((reason) => reason !== STEP_UP_REASON)) return undefined;
    const standing = await deps.mfa.standing(accountId);
    const stepUp = String(interaction.params.acr_values ?? '').split(' ').includes(ACR_MFA) && !standing.required;
    const pending: PendingSecondFactor = standing.hasFactor
      ? { userId: accountId, step: 'verify' }
      : { userId: accountId, step: 'enrol', reason: stepUp ? 'step_up' : 'policy' };
    await savePending(interaction.uid, pending);
    return pending;
  }

  async function showLoginStep(ctx: Context, interaction: Interaction, client: Client) {
    const pending = await readPending(interaction.uid) ?? await stepUpOf(interaction);
    if (pending?.step === 'verify') return showSecondFactor(ctx, interaction, client, pending);
    if (pending?.step === 'enrol') return showEnrolment(ctx, interaction, client, pending);
    if (pending?.step === 'enrolled') return finish(ctx, deps.providers.current, { login: { accountId: pending.userId, ...MFA_LOGIN } }, false);
    return showLogin(ctx, interaction, client);
  }

  /** The account behind a consent prompt, with what its roles allow and what the client asks. */
  async function consentContext(interaction: Interaction) {
    const accountId = interaction.session?.accountId;
    const profile = accountId ? await findActiveProfile(orm, accountId) : undefined;
    if (!accountId || !profile) throw expiredInteraction();
    const allowed = await allowedApiScopes({ orm, scopePolicy: deps.permissionResolver }, accountId);
    const request = consentRequest(interaction.prompt.details, config.apiAudience, allowed);
    return { accountId, profile, allowed, request };
  }

  function describeScopes(request: ConsentRequest) {
    const asked = [...request.oidcScopes, ...Object.values(request.resourceScopes).flat()];
    const describe = (scope: string) => ({ name: scope, description: SCOPE_DESCRIPTIONS[scope] ?? scope });
    return {
      scopes: [...new Set(asked)].map(describe),
      withheld: [...new Set(Object.values(request.withheldScopes).flat())].map(describe),
      claims: request.claims,
    };
  }

  const router = new Router();

  router.get('/interaction/:uid', showErrorsAsPages, async (ctx) => {
    const { provider, interaction, client } = await loadInteraction(ctx);
    switch (interaction.prompt.name) {
      case 'login':
        return showLoginStep(ctx, interaction, client);
      case 'consent': {
        const { accountId, profile, allowed, request } = await consentContext(interaction);
        if (isFirstParty(client)) {
          // First-party applications are the operator's own: the user is not asked (API.md "Applications").
          const grantId = await saveConsent(provider, { accountId, clientId: client.clientId, grantId: interaction.grantId }, request,
            { apiAudience: config.apiAudience, allowed });
          return finish(ctx, provider, { consent: { grantId } }, true);
        }
        return renderPage(ctx, 'consent', {
          title: 'Authorize',
          clientName: clientName(client),
          account: profile.email,
          action: `/interaction/${interaction.uid}/consent`,
          csrf: await formTokens.issue(interaction.uid),
          ...describeScopes(request),
        }, { formTargets: formTargets(interaction) });
      }
      default:
        throw new PageError(400, 'This step is not supported', 'Go back to the application and try again.');
    }
  });

  router.post('/interaction/:uid/login', showErrorsAsPages, parseForm, requireFormToken, async (ctx) => {
    const { provider, interaction, client } = await loadInteraction(ctx);
    if (interaction.prompt.name !== 'login') return showCurrentStep(ctx);
    const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
    const identifier = formField(body, 'identifier').trim();
    const password = formField(body, 'password');
    const organization = formField(body, 'organization').trim();
    const retry = { identifier: identifier.slice(0, MAX_IDENTIFIER_LENGTH), organization: organization.slice(0, MAX_ORGANIZATION_LENGTH) };
    if (!identifier || !password) {
      return showLogin(ctx, interaction, client, { ...retry, status: 400, error: 'Enter your email or username and your password.' });
    }
    // Wrong credentials re-render the form with 200, as Keycloak and Django do: a 401 would have to
    // carry a WWW-Authenticate challenge (RFC 9110 section 15.5.2), and a form sign-in has no HTTP
    // authentication scheme to name in one.
    if (identifier.length > MAX_IDENTIFIER_LENGTH || organization.length > MAX_ORGANIZATION_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
      return showLogin(ctx, interaction, client, { ...retry, error: WRONG_CREDENTIALS_MESSAGE });
    }
    try {
      const { userId, secondFactor } = await deps.accounts.signIn({
        identifier, password, organizationSlug: organization || undefined,
        ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined, clientId: client.clientId, via: 'login_page',
      });
      if (secondFactor.hasFactor || secondFactor.required) {
        await savePending(interaction.uid, secondFactor.hasFactor ? { userId, step: 'verify' } : { userId, step: 'enrol', reason: 'policy' });
        return showCurrentStep(ctx);
      }
      await deps.store.delete(pendingKey(interaction.uid));
      // RFC 8176 section 2: "pwd", password-based authentication.
      return await finish(ctx, provider, { login: { accountId: userId, amr: [AMR_PASSWORD], acr: ACR_PASSWORD } }, false);
    } catch (error) {
      if (error instanceof SignInFailed) {
        return showLogin(ctx, interaction, client, { ...retry, error: WRONG_CREDENTIALS_MESSAGE });
      }
      if (error instanceof EmailNotVerified) {
        return showLogin(ctx, interaction, client, { ...retry, status: 403, error: EMAIL_NOT_VERIFIED_MESSAGE, offerResend: true });
      }
      if (error instanceof SignInThrottled) {
        return showLogin(ctx, interaction, client, {
          ...retry, status: 429, headers: { 'Retry-After': String(error.retryAfterSeconds) },
          error: `Too many failed sign-ins. Wait ${describeWait(error.retryAfterSeconds)} and try again.`,
        });
      }
      throw error;
    }
  });

  // "Send the link again" (REQUIRE_VERIFIED_EMAIL): offered after a refused sign-in, answered alike
  // whatever the identifier names, throttled per address and per IP.
  router.post('/interaction/:uid/resend-verification', showErrorsAsPages, parseForm, requireFormToken, async (ctx) => {
    const { interaction, client } = await loadInteraction(ctx);
    if (interaction.prompt.name !== 'login') return showCurrentStep(ctx);
    const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
    const identifier = formField(body, 'identifier').trim();
    const organization = formField(body, 'organization').trim();
    const retry = { identifier: identifier.slice(0, MAX_IDENTIFIER_LENGTH), organization: organization.slice(0, MAX_ORGANIZATION_LENGTH) };
    if (!identifier || identifier.length > MAX_IDENTIFIER_LENGTH || organization.length > MAX_ORGANIZATION_LENGTH) {
      return showLogin(ctx, interaction, client, { ...retry, status: 400, error: 'Enter your email or username, then ask for the link again.' });
    }
    try {
      await deps.emailVerification.resend({
        identifier, organizationSlug: organization || undefined, ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined,
      });
    } catch (error) {
      if (error instanceof RequestThrottled) {
        return showLogin(ctx, interaction, client, {
          ...retry, status: 429, headers: { 'Retry-After': String(error.retryAfterSeconds) },
          error: `Too many links asked for. Wait ${describeWait(error.retryAfterSeconds)} and try again.`,
        });
      }
      throw error;
    }
    return showLogin(ctx, interaction, client, { ...retry, notice: VERIFICATION_RESENT_MESSAGE });
  });

  router.post('/interaction/:uid/mfa', showErrorsAsPages, parseForm, requireFormToken, async (ctx) => {
    const { provider, interaction, client } = await loadInteraction(ctx);
    const pending = interaction.prompt.name === 'login' ? await readPending(interaction.uid) : undefined;
    if (pending?.step !== 'verify') return showCurrentStep(ctx);
    const code = formField((ctx.request as { body?: Record<string, unknown> }).body ?? {}, 'code');
    try {
      await deps.mfa.verifySignInCode({
        userId: pending.userId, code: code.slice(0, 64), ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined, clientId: client.clientId, via: 'login_page',
      });
    } catch (error) {
      if (error instanceof SecondFactorRejected) return showSecondFactor(ctx, interaction, client, pending, { error: WRONG_CODE_MESSAGE });
      if (error instanceof SignInThrottled) {
        return showSecondFactor(ctx, interaction, client, pending, {
          status: 429, headers: { 'Retry-After': String(error.retryAfterSeconds) },
          error: `Too many wrong codes. Wait ${describeWait(error.retryAfterSeconds)} and try again.`,
        });
      }
      throw error;
    }
    await deps.store.delete(pendingKey(interaction.uid));
    return finish(ctx, provider, { login: { accountId: pending.userId, ...MFA_LOGIN } }, false);
  });

  // "Sign in with a passkey": a discoverable credential alone names and signs in its user.
  router.post('/interaction/:uid/passkey', showErrorsAsPages, parseForm, requireFormToken, async (ctx) => {
    const { provider, interaction, client } = await loadInteraction(ctx);
    if (interaction.prompt.name !== 'login') return showCurrentStep(ctx);
    let userId: string;
    try {
      ({ userId } = await deps.passkeys.authenticate({
        binding: ceremonyBinding(interaction.uid), rawResponse: formField(formBody(ctx), 'response'),
        ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined, clientId: client.clientId, via: 'login_page',
      }));
    } catch (error) {
      if (error instanceof PasskeyRejected) return showLogin(ctx, interaction, client, { status: 400, error: PASSKEY_MESSAGES[error.reason] });
      throw error;
    }
    await deps.store.delete(pendingKey(interaction.uid));
    return finish(ctx, provider, { login: { accountId: userId, ...PASSKEY_LOGIN } }, false);
  });

  // A passkey as the second factor, after the password (or for a step-up of a session).
  router.post('/interaction/:uid/mfa/passkey', showErrorsAsPages, parseForm, requireFormToken, async (ctx) => {
    const { provider, interaction, client } = await loadInteraction(ctx);
    const pending = interaction.prompt.name === 'login' ? await readPending(interaction.uid) : undefined;
    if (pending?.step !== 'verify') return showCurrentStep(ctx);
    try {
      await deps.passkeys.authenticate({
        binding: ceremonyBinding(interaction.uid), rawResponse: formField(formBody(ctx), 'response'), userId: pending.userId,
        ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined, clientId: client.clientId, via: 'login_page',
      });
    } catch (error) {
      if (error instanceof PasskeyRejected) return showSecondFactor(ctx, interaction, client, pending, { status: 400, error: PASSKEY_MESSAGES[error.reason] });
      throw error;
    }
    await deps.store.delete(pendingKey(interaction.uid));
    return finish(ctx, provider, { login: { accountId: pending.userId, ...PASSKEY_SECOND_FACTOR_LOGIN } }, false);
  });

  router.post('/interaction/:uid/mfa/enrol', showErrorsAsPages, parseForm, requireFormToken, async (ctx) => {
    const { interaction, client } = await loadInteraction(ctx);
    const pending = interaction.prompt.name === 'login' ? await readPending(interaction.uid) : undefined;
    if (pending?.step !== 'enrol') return showCurrentStep(ctx);
    const code = formField((ctx.request as { body?: Record<string, unknown> }).body ?? {}, 'code').replace(/\s/g, '');
    if (!/^\d{6}$/.test(code)) return showEnrolment(ctx, interaction, client, pending, { error: 'Enter the 6 digits your authenticator app shows.' });
    let recoveryCodes: string[] | undefined;
    try {
      ({ recoveryCodes } = await deps.mfa.confirmTotp({ userId: pending.userId, clientId: client.clientId, ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined }, code));
    } catch (error) {
      if ((error as { code?: string }).code === 'mfa.invalid_code') {
        return showEnrolment(ctx, interaction, client, pending, { error: 'That code is not right. Enter the 6 digits the app shows now.' });
      }
      if ((error as { code?: string }).code === 'mfa.no_pending_totp') return showCurrentStep(ctx);
      throw error;
    }
    if (!recoveryCodes) {
      await deps.store.delete(pendingKey(interaction.uid));
      return finish(ctx, deps.providers.current, { login: { accountId: pending.userId, ...MFA_LOGIN } }, false);
    }
    await savePending(interaction.uid, { userId: pending.userId, step: 'enrolled' });
    // The codes exist only in this answer (stored hashed): the page is the answer itself, not a redirect.
    return renderPage(ctx, 'mfa-recovery-codes', {
      title: 'Save your recovery codes',
      codes: recoveryCodes,
      action: `/interaction/${interaction.uid}/mfa/continue`,
      csrf: await formTokens.issue(interaction.uid),
    }, { formTargets: formTargets(interaction) });
  });

  router.post('/interaction/:uid/mfa/continue', showErrorsAsPages, parseForm, requireFormToken, async (ctx) => {
    const { provider, interaction } = await loadInteraction(ctx);
    const pending = interaction.prompt.name === 'login' ? await readPending(interaction.uid) : undefined;
    if (pending?.step !== 'enrolled') return showCurrentStep(ctx);
    await deps.store.delete(pendingKey(interaction.uid));
    return finish(ctx, provider, { login: { accountId: pending.userId, ...MFA_LOGIN } }, false);
  });

  router.post('/interaction/:uid/consent', showErrorsAsPages, parseForm, requireFormToken, async (ctx) => {
    const { provider, interaction, client } = await loadInteraction(ctx);
    if (interaction.prompt.name !== 'consent') return showCurrentStep(ctx);
    const decision = formField((ctx.request as { body?: Record<string, unknown> }).body ?? {}, 'decision');
    if (decision === 'deny') {
      return finish(ctx, provider, { error: 'access_denied', error_description: 'the user denied the request' }, false);
    }
    if (decision !== 'approve') throw new PageError(400, 'The form could not be read', 'Go back and choose Allow or Deny.');
    const { accountId, profile, allowed, request } = await consentContext(interaction);
    const grantId = await orm.em.fork().transactional(async (tx) => {
      // The grant is written through the global entity manager, which joins this transaction
      // (MikroORM's TransactionContext): the consent and its audit row commit together.
      const saved = await saveConsent(provider, { accountId, clientId: client.clientId, grantId: interaction.grantId }, request,
        { apiAudience: config.apiAudience, allowed });
      // The user acts on the consent page of the client that asked: that client is the row's actor client.
      recordAudit(tx, auditEntry({ userId: accountId, clientId: client.clientId, ip: ctx.ip, userAgent: ctx.get('user-agent') }, {
        action: 'consent.grant', resource: 'client', resourceId: client.clientId, targetId: accountId, organizationId: profile.organization.id,
        details: {
          scopes: [...request.oidcScopes, ...Object.values(request.resourceScopes).flat()],
          withheld: Object.values(request.withheldScopes).flat(),
        },
      }));
      return saved;
    });
    return finish(ctx, provider, { consent: { grantId } }, true);
  });

  router.post('/interaction/:uid/abort', showErrorsAsPages, parseForm, requireFormToken, async (ctx) => {
    const { provider } = await loadInteraction(ctx);
    return finish(ctx, provider, { error: 'access_denied', error_description: 'the user cancelled the sign-in' }, false);
  });

  // One step: requests that are not for pages, as most (the token endpoint) are, pass straight on.
  const pageSteps = compose<Context>([presetProviderPagePolicy, staticAssets(`${VIEWS_DIRECTORY}/static`, '/static/', { [WEBAUTHN_BROWSER_ASSET]: webauthnBrowserBundle() }), router.routes() as Middleware]);
  return (ctx: Context, next: Next) => (isPageRequest(ctx.path) ? pageSteps(ctx, next) : next());
}

function isPageRequest(path: string): boolean {
  return path.startsWith('/interaction/') || path.startsWith('/static/') || isProviderPage(path);
}

/**
 * The provider renders some pages itself: an auto-submitting form_post page (response_mode
 * form_post, a device code link with its user_code, a logout without a session). It adds the
 * hash of its inline script to a `script-src` that is already set, so one is set before it runs.
 * Pages that Latchkey renders for it replace this policy with their own.
 */
const PROVIDER_PAGE_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";
const PROVIDER_PAGE_ROUTES = [OIDC_ROUTES.authorization, OIDC_ROUTES.end_session, OIDC_ROUTES.code_verification];

function isProviderPage(path: string): boolean {
  if (path === OIDC_ROUTES.device_authorization) return false;
  return PROVIDER_PAGE_ROUTES.some((route) => path === route || path.startsWith(`${route}/`));
}

async function presetProviderPagePolicy(ctx: Context, next: Next) {
  if (isProviderPage(ctx.path)) ctx.set('Content-Security-Policy', PROVIDER_PAGE_POLICY);
  await next();
}
