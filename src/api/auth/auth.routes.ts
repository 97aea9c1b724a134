// JSON conveniences over the provider's own grants (API.md "Auth"): every token here comes from
// node-oidc-provider's token endpoint, driven in process.
import type { Context } from 'koa';

import type { MikroORM } from '@mikro-orm/postgresql';

import type { TokenVerifier } from '../../http/authenticate.ts';
import { defineRoute } from '../../http/define-route.ts';
import { RETRY_AFTER_SECONDS } from '../../http/middleware.ts';
import { AppError, assertThat, fieldError } from '../../platform/errors.ts';
import type { Config } from '../../platform/config.ts';
import { OIDC_ROUTES } from '../../oidc/provider.ts';
import type { ProviderHolder } from '../../oidc/provider-holder.ts';
import { EMAIL_NOT_VERIFIED_DESCRIPTION, INVALID_MFA_CODE, INVALID_MFA_TOKEN, MFA_GRANT } from '../../oidc/grants/password.ts';
import { callTokenEndpoint, type ClientCredentials, type TokenEndpointAnswer } from '../../oidc/token-endpoint.ts';
import { classifyCode } from '../../services/mfa.service.ts';
import { FIRST_PARTY_CLIENT_ID } from '../../services/bootstrap.service.ts';
import type { ClientRegistry } from '../../services/client-registry.service.ts';
import type { EmailVerificationService } from '../../services/email-verification.service.ts';
import { LINK_TOKEN_ERRORS } from '../../services/link-tokens.service.ts';
import { RequestThrottled } from '../../services/request-throttle.ts';
import type { RevocationService } from '../../services/revocation.service.ts';
import type { PasswordResetService } from '../../services/password-reset.service.ts';
import type { GrantRevoker, SelfService } from '../../services/self-service.service.ts';
import { signUp } from '../../services/sign-up.service.ts';
import { IP_FAILURE_WINDOW_SECONDS } from '../../services/sign-in-throttle.ts';
import { signOut } from '../../services/sign-out.service.ts';
import { findActiveProfile, nameChanges } from '../../services/users.service.ts';
import {
  AcceptedResponse, ChangePasswordBody, ForgotPasswordBody, LoginBody, LoginResponse, LogoutBody, MfaLoginBody, RefreshBody, RegisterBody, RegisterResponse, ResetPasswordBody, TokenPairResponse,
  VerificationResendBody, VerifyEmailBody, VerifyEmailResponse,
} from './auth.schemas.ts';

/** Client credentials from Basic auth or X-Client-ID / X-Client-Secret; else the built-in first-party client. */
export function callerClient(ctx: Context): ClientCredentials {
  const basic = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(ctx.get('authorization'));
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const separator = decoded.indexOf(':');
    if (separator < 1) throw new AppError('auth.invalid_client', 'The Basic credentials are malformed');
    const decode = (value: string) => decodeURIComponent(value.replace(/\+/g, ' '));
    try {
      return { clientId: decode(decoded.slice(0, separator)), clientSecret: decode(decoded.slice(separator + 1)) };
    } catch {
      throw new AppError('auth.invalid_client', 'The Basic credentials are malformed');
    }
  }
  const clientId = ctx.get('x-client-id');
  if (clientId) return { clientId, clientSecret: ctx.get('x-client-secret') || undefined };
  return { clientId: FIRST_PARTY_CLIENT_ID };
}

/**
 * Token endpoint errors (RFC 6749 section 5.2) as this API's problems. A 429 without its own
 * Retry-After waits out the window of the throttle that refused: client authentication's
 * (configured) or the sign-in address limit's.
 */
function problemFor(answer: TokenEndpointAnswer, grant: 'password' | 'mfa' | 'refresh_token', clientAuthWindowSeconds: number): AppError {
  const error = String(answer.body.error ?? '');
  const description = String(answer.body.error_description ?? error);
  if (answer.status === 429) {
    const detail = error === 'invalid_client' ? 'Too many failed client authentications; wait before trying again' : 'Too many failed sign-ins; wait before trying again';
    return new AppError('request.rate_limited', detail, {
      headers: { 'Retry-After': answer.retryAfter ?? String(error === 'invalid_client' ? clientAuthWindowSeconds : IP_FAILURE_WINDOW_SECONDS) },
    });
  }
  if (answer.status === 503) return new AppError('server.unavailable', description, { headers: { 'Retry-After': answer.retryAfter ?? String(RETRY_AFTER_SECONDS) } });
  if (error === 'invalid_client') return new AppError('auth.invalid_client', 'The client credentials are not valid');
  // A user with a second factor: the mfa_token goes to POST /api/v1/auth/mfa with a code.
  if (answer.status === 403 && error === 'mfa_required') {
    return new AppError('auth.mfa_required', 'A second factor is required: send this mfa_token and a code (authenticator app or recovery code; passkeys work in the browser only) to POST /api/v1/auth/mfa within 5 minutes', {
      extensions: { error, mfa_token: String(answer.body.mfa_token) }, headers: { 'Cache-Control': 'no-store' },
    });
  }
  if (answer.status === 403 && error === 'mfa_enrollment_required') {
    return new AppError('auth.mfa_enrollment_required', 'This account must enrol a second factor first: sign in once through the browser sign-in page to set one up', {
      extensions: { error },
    });
  }
  if (error === 'invalid_grant' && grant === 'mfa') {
    return description === INVALID_MFA_CODE
      ? new AppError('auth.invalid_mfa_code', 'The code is not right (a TOTP code is accepted once; a recovery code once)')
      : new AppError('auth.invalid_mfa_token', description === INVALID_MFA_TOKEN ? 'The mfa_token is invalid, expired or already used: sign in again' : description);
  }
  if (error === 'unauthorized_client') return new AppError('auth.client_not_allowed', 'This client may not sign users in with a password (not first-party)');
  if (error === 'invalid_grant' && grant === 'password' && description === EMAIL_NOT_VERIFIED_DESCRIPTION) {
    return new AppError('auth.email_not_verified', 'The e-mail address of this account is not verified yet: follow the link mailed to it, or ask for a new one (POST /api/v1/auth/verify-email/resend)');
  }
  if (error === 'invalid_grant') {
    return grant === 'password'
      ? new AppError('auth.invalid_credentials', 'The email, username or password is not right')
      : new AppError('auth.invalid_refresh_token', 'The refresh token is invalid, expired or revoked');
  }
  if (error === 'invalid_scope') return fieldError(['body', 'scope'], description, 'invalid_scope');
  return new AppError('request.malformed', description);
}

function tokenPair(body: Record<string, unknown>) {
  return {
    access_token: String(body.access_token),
    ...(body.refresh_token ? { refresh_token: String(body.refresh_token) } : {}),
    token_type: String(body.token_type),
    expires_in: Number(body.expires_in),
    ...(body.scope ? { scope: String(body.scope) } : {}),
  };
}

/** What these routes use (built in src/dependencies.ts). */
export interface AuthRoutesDependencies {
  config: Pick<Config, 'issuer' | 'apiAudience' | 'clientAuthThrottle'>;
  orm: MikroORM;
  providers: Pick<ProviderHolder, 'current'>;
  verifier: TokenVerifier;
  revocation: RevocationService;
  revokeGrant: GrantRevoker;
  clientRegistry: ClientRegistry;
  selfService: SelfService;
  emailVerification: EmailVerificationService;
  passwordReset: PasswordResetService;
}

/** A refused mail request (verification resend, forgotten password) as this API's 429. */
function throttledProblem(error: RequestThrottled): AppError {
  return new AppError('request.rate_limited', 'Too many links asked for; wait before asking again', { headers: { 'Retry-After': String(error.retryAfterSeconds) } });
}

export function authRoutes(deps: AuthRoutesDependencies) {
  const { config } = deps;
  const drive = (ctx: Context, form: Record<string, string>) => callTokenEndpoint(
    deps.providers.current, OIDC_ROUTES.token, form, callerClient(ctx), { ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined },
  );

  /**
   * Without a requested scope the password grant asks for all of the client's scopes; this answer
   * carries no ID token (LoginResponse), so `openid` is left out rather than an RS256 ID token being
   * signed and dropped on every sign-in. The tokens and the user are the same.
   */
  const scopeWithoutIdToken = async (clientId: string) => {
    const registered = await deps.clientRegistry.find(clientId);
    const scope = registered?.metadata.scope;
    return typeof scope === 'string' ? scope.split(' ').filter((name) => name && name !== 'openid').join(' ') : undefined;
  };

  /** The answer of a completed sign-in: the tokens and the user they act for. */
  const signedIn = async (answer: TokenEndpointAnswer) => {
    // The token just minted names its user; reading it back keeps the grant the single source.
    const principal = await deps.verifier.verify({ scheme: 'Bearer', value: String(answer.body.access_token), method: 'POST', url: config.issuer });
    const user = principal.userId ? await findActiveProfile(deps.orm, principal.userId) : undefined;
    assertThat(user, 'auth.invalid_credentials', 'The email, username or password is not right');
    return { status: 200, body: { ...tokenPair(answer.body), user }, headers: { 'Cache-Control': 'no-store' } };
  };

  const signOutDeps = {
    orm: deps.orm, revocation: deps.revocation, revokeGrant: deps.revokeGrant,
    tokens: {
      findRefreshToken: (value: string) => deps.providers.current.RefreshToken.find(value),
      destroyClientCredentials: async (id: string) => { await (await deps.providers.current.ClientCredentials.find(id))?.destroy(); },
    },
  };

  return [
    defineRoute({
      method: 'post', path: '/auth/login', tag: 'Auth', authenticated: false,
      summary: 'Sign in with email or username and password (the password grant of a first-party client)',
      body: LoginBody, responses: { 200: LoginResponse },
      errors: ['auth.invalid_credentials', 'auth.invalid_client', 'auth.client_not_allowed', 'auth.email_not_verified', 'auth.mfa_required', 'auth.mfa_enrollment_required', 'request.rate_limited'],
      handler: async ({ body, ctx }) => {
        const form: Record<string, string> = { grant_type: 'password', username: (body.email ?? body.username)!, password: body.password, resource: config.apiAudience };
        if (body.organization_slug) form.organization = body.organization_slug;
        const scope = body.scope ?? await scopeWithoutIdToken(callerClient(ctx).clientId);
        if (scope) form.scope = scope;
        const answer = await drive(ctx, form);
        if (answer.status !== 200) throw problemFor(answer, 'password', config.clientAuthThrottle.windowSeconds);
        return signedIn(answer);
      },
    }),

    defineRoute({
      method: 'post', path: '/auth/mfa', tag: 'Auth', authenticated: false,
      summary: 'Complete a sign-in that answered auth.mfa_required: its mfa_token and a TOTP or recovery code (same answer as /auth/login)',
      body: MfaLoginBody, responses: { 200: LoginResponse },
      errors: ['auth.invalid_mfa_token', 'auth.invalid_mfa_code', 'auth.invalid_client', 'auth.client_not_allowed', 'request.rate_limited'],
      handler: async ({ body, ctx }) => {
        if (!classifyCode(body.code)) {
          throw fieldError(['body', 'code'], 'must be the 6 digits of an authenticator app or a recovery code (xxxx-xxxx-xxxx)', 'invalid_code');
        }
        const answer = await drive(ctx, { grant_type: MFA_GRANT, mfa_token: body.mfa_token, code: body.code });
        if (answer.status !== 200) throw problemFor(answer, 'mfa', config.clientAuthThrottle.windowSeconds);
        return signedIn(answer);
      },
    }),

    defineRoute({
      method: 'post', path: '/auth/refresh', tag: 'Auth', authenticated: false,
      summary: 'Exchange a refresh token for a new pair (the old refresh token stops working)',
      body: RefreshBody, responses: { 200: TokenPairResponse },
      errors: ['auth.invalid_refresh_token', 'auth.invalid_client'],
      handler: async ({ body, ctx }) => {
        const answer = await drive(ctx, { grant_type: 'refresh_token', refresh_token: body.refresh_token, resource: config.apiAudience });
        if (answer.status !== 200) throw problemFor(answer, 'refresh_token', config.clientAuthThrottle.windowSeconds);
        return { status: 200, body: tokenPair(answer.body), headers: { 'Cache-Control': 'no-store' } };
      },
    }),

    defineRoute({
      method: 'post', path: '/auth/logout', tag: 'Auth',
      summary: 'End the grant behind the presented access token (and refresh token, if given)',
      body: LogoutBody, responses: { 204: null },
      handler: async (input) => {
        await signOut(signOutDeps, input.actor, input.auth, input.body.refresh_token);
        return { status: 204 };
      },
    }),

    defineRoute({
      method: 'post', path: '/auth/register', tag: 'Auth', authenticated: false,
      summary: 'Create a basic_user account and its personal OAuth client (the secret is shown once)',
      body: RegisterBody, responses: { 201: RegisterResponse },
      errors: ['user.email_taken', 'user.username_taken', 'organization.max_users_reached', 'request.validation_failed'],
      handler: async ({ body, ctx }) => {
        const { email, password, username, full_name, first_name, last_name, organization_slug, organization_id, ...attributes } = body;
        const names = nameChanges({ full_name, first_name, last_name });
        const registered = await signUp(deps.orm, deps.clientRegistry, deps.emailVerification, {
          email, password, username, firstName: names.firstName ?? '', lastName: names.lastName ?? '', attributes,
          organizationSlug: organization_slug, organizationId: organization_id, ip: ctx.ip, userAgent: ctx.get('user-agent'),
        });
        return {
          status: 201,
          body: { user: registered.user, client: { client_id: registered.clientId, client_secret: registered.clientSecret } },
          headers: { 'Cache-Control': 'no-store' },
        };
      },
    }),

    defineRoute({
      method: 'post', path: '/auth/verify-email', tag: 'Auth', authenticated: false,
      summary: 'Verify an e-mail address with the token of the link mailed to it (the link works once)',
      body: VerifyEmailBody, responses: { 200: VerifyEmailResponse },
      errors: [...LINK_TOKEN_ERRORS],
      handler: async ({ body, ctx }) => {
        const verified = await deps.emailVerification.verify(body.token, { ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined });
        return { status: 200, body: { user_id: verified.userId, email: verified.email, is_verified: true as const }, headers: { 'Cache-Control': 'no-store' } };
      },
    }),

    defineRoute({
      method: 'post', path: '/auth/verify-email/resend', tag: 'Auth', authenticated: false,
      summary: 'Mail a new verification link to an unverified account (always 202: the answer never tells whether the address has an account)',
      body: VerificationResendBody, responses: { 202: AcceptedResponse },
      errors: ['request.rate_limited'],
      handler: async ({ body, ctx }) => {
        try {
          await deps.emailVerification.resend({
            identifier: body.email, organizationSlug: body.organization_slug, ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined,
          });
        } catch (error) {
          if (error instanceof RequestThrottled) throw throttledProblem(error);
          throw error;
        }
        return { status: 202, body: { detail: 'If an unverified account has this address, a new link is on its way.' } };
      },
    }),

    defineRoute({
      method: 'post', path: '/auth/forgot-password', tag: 'Auth', authenticated: false,
      summary: 'Mail a link to choose a new password (always 202, in the same time: the answer never tells whether the address has an account)',
      body: ForgotPasswordBody, responses: { 202: AcceptedResponse },
      errors: ['request.rate_limited'],
      handler: async ({ body, ctx }) => {
        try {
          await deps.passwordReset.request({
            email: body.email, organizationSlug: body.organization ?? body.organization_slug, ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined,
          });
        } catch (error) {
          if (error instanceof RequestThrottled) throw throttledProblem(error);
          throw error;
        }
        return { status: 202, body: { detail: 'If an account has this address, a link to choose a new password is on its way.' } };
      },
    }),

    defineRoute({
      method: 'post', path: '/auth/reset-password', tag: 'Auth', authenticated: false,
      summary: 'Set a new password with the token of the mailed reset link; every grant and token of the user ends',
      body: ResetPasswordBody, responses: { 204: null },
      errors: [...LINK_TOKEN_ERRORS, 'request.validation_failed'],
      handler: async ({ body, ctx }) => {
        await deps.passwordReset.reset(body.token, body.new_password, { ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined });
        return { status: 204, headers: { 'Cache-Control': 'no-store' } };
      },
    }),

    defineRoute({
      method: 'post', path: '/auth/change-password', tag: 'Auth',
      summary: 'Change the password; the user\'s other grants end',
      body: ChangePasswordBody, responses: { 204: null },
      errors: ['auth.wrong_password', 'auth.user_required', 'resource.not_found', 'request.validation_failed'],
      handler: async ({ body, auth, actor }) => {
        await deps.selfService.changePassword(actor, body.current_password, body.new_password, auth.grantId);
        return { status: 204 };
      },
    }),
  ];
}
