// The resource-owner password grant (RFC 6749 section 4.3), registered as a custom grant for
// first-party clients only: RFC 9700 section 2.4 forbids it for everyone else. Tokens are the
// provider's own models, saved through its adapter, exactly as its built-in grants do.
//
// A user with a second factor gets no tokens from the password alone: the answer is
// 403 {"error":"mfa_required","mfa_token":...}, and the MFA grant below (the mfa_token and a TOTP
// or recovery code) completes the same request. A user whom a policy asks to enrol a factor gets
// 403 mfa_enrollment_required (enrolment happens on the sign-in pages).
import { errors, type KoaContextWithOIDC, type Provider, type ResourceServer } from 'oidc-provider';

import type { Clock } from '../../platform/clock.ts';
import { EmailNotVerified, SignInFailed, type AccountsService } from '../../services/accounts.service.ts';
import {
  ACR_MFA, ACR_PASSWORD, AMR_MFA, AMR_OTP, AMR_PASSWORD, MFA_TOKEN_TTL_SECONDS, SecondFactorRejected, type MfaService,
} from '../../services/mfa.service.ts';
import { SignInThrottled } from '../../services/sign-in-throttle.ts';
import { API_SCOPES, OIDC_SCOPES } from '../../services/scopes.ts';

export const PASSWORD_GRANT = 'password';
/** Completes a password sign-in that answered mfa_required (Latchkey's own grant type). */
export const MFA_GRANT = 'urn:latchkey:grant-type:mfa';
const PARAMETERS = ['username', 'password', 'scope', 'resource', 'organization'];
const MFA_PARAMETERS = ['mfa_token', 'code'];
/** The descriptions of the MFA grant's invalid_grant answers, which /api/v1/auth/mfa tells apart. */
export const INVALID_MFA_TOKEN = 'the mfa_token is invalid, expired or already used';
export const INVALID_MFA_CODE = 'the second-factor code is not right';

/** Who signed in and how: the ID token's `amr` and `acr` (RFC 8176) and `auth_time`. */
interface Authentication {
  amr: string[];
  acr: string;
  authTime: number;
}

class TooManyAttempts extends errors.CustomOIDCProviderError {
  constructor(retryAfterSeconds: number) {
    super('invalid_grant', `too many failed sign-ins; retry in ${retryAfterSeconds} s`);
    this.status = 429;
    this.statusCode = 429;
  }
}

/** The error_description of the invalid_grant that REQUIRE_VERIFIED_EMAIL answers to an unverified account's right password. */
export const EMAIL_NOT_VERIFIED_DESCRIPTION = 'the e-mail address of this account is not verified; follow the link mailed to it';

/** invalid_grant with a description of our own (the provider's InvalidGrant keeps a fixed one). */
class MfaGrantRefused extends errors.CustomOIDCProviderError {
  constructor(description: string) {
    super('invalid_grant', description);
  }
}

export interface PasswordGrantDependencies {
  accounts: AccountsService;
  mfa: MfaService;
  /** The sign-in time (auth_time) comes from the same clock as the "recent sign-in" rule reads. */
  clock: Clock;
  apiAudience: string;
  apiResource: ResourceServer;
  /** The API scopes the user's roles allow. */
  apiScopesOf(ctx: KoaContextWithOIDC, userId: string): Promise<Set<string>>;
  claimsOf(userId: string): Promise<Record<string, unknown>>;
}

type ProviderClient = InstanceType<Provider['Client']>;
type GrantParams = Record<string, string | undefined>;

export function registerPasswordGrant(provider: Provider, deps: PasswordGrantDependencies): void {
  function checkRequest(client: ProviderClient, params: GrantParams): void {
    if (client.metadata().first_party !== true) {
      throw new errors.UnauthorizedClient('the password grant is only for first-party clients');
    }
    if (!params.username || !params.password) throw new errors.InvalidRequest('username and password are required');
    if (params.resource && params.resource !== deps.apiAudience) throw new errors.InvalidTarget('unknown resource indicator');
  }

  async function signIn(ctx: KoaContextWithOIDC, client: ProviderClient, params: GrantParams) {
    try {
      return await deps.accounts.signIn({
        identifier: params.username!,
        password: params.password!,
        organizationSlug: params.organization || undefined,
        ip: ctx.ip,
        userAgent: ctx.get('user-agent') || undefined,
        clientId: client.clientId,
        via: 'password_grant',
      });
    } catch (error) {
      if (error instanceof SignInFailed) throw new errors.InvalidGrant('invalid credentials');
      // RFC 6749 section 5.2 has no code of its own for this: invalid_grant, with a description that says why.
      if (error instanceof EmailNotVerified) throw new errors.CustomOIDCProviderError('invalid_grant', EMAIL_NOT_VERIFIED_DESCRIPTION);
      throw asThrottled(ctx, error);
    }
  }

  function asThrottled(ctx: KoaContextWithOIDC, error: unknown): unknown {
    if (!(error instanceof SignInThrottled)) return error;
    ctx.set('Retry-After', String(error.retryAfterSeconds));
    return new TooManyAttempts(error.retryAfterSeconds);
  }

  /** What was asked (or, if nothing, everything) within the client's registration and the user's roles. */
  async function grantedScopes(ctx: KoaContextWithOIDC, client: ProviderClient, params: GrantParams, userId: string): Promise<{ oidcScopes: string[]; apiScopes: string[] }> {
    const clientScopes = new Set(String(client.scope ?? '').split(' ').filter(Boolean));
    const roleScopes = await deps.apiScopesOf(ctx, userId);
    const requested = params.scope ? params.scope.split(' ').filter(Boolean) : [...clientScopes];
    const unknown = requested.filter((scope) => !clientScopes.has(scope));
    if (params.scope && unknown.length > 0) throw new errors.InvalidScope('requested scope is not allowed for this client', unknown.join(' '));
    return {
      oidcScopes: requested.filter((scope) => (OIDC_SCOPES as readonly string[]).includes(scope)),
      apiScopes: requested.filter((scope) => (API_SCOPES as readonly string[]).includes(scope) && roleScopes.has(scope)),
    };
  }

  async function issueTokens(
    ctx: KoaContextWithOIDC, client: ProviderClient, userId: string, { oidcScopes, apiScopes }: { oidcScopes: string[]; apiScopes: string[] },
    authentication: Authentication,
  ): Promise<Record<string, unknown>> {
    // extraTokenClaims (provider.ts) gives the access token this sign-in's auth_time.
    (ctx.state as { authTime?: number }).authTime = authentication.authTime;
    const grant = new provider.Grant({ accountId: userId, clientId: client.clientId });
    if (oidcScopes.length > 0) grant.addOIDCScope(oidcScopes.join(' '));
    if (apiScopes.length > 0) grant.addResourceScope(deps.apiAudience, apiScopes.join(' '));
    const grantId = await grant.save();

    const accessToken = new provider.AccessToken({ accountId: userId, client, grantId, gty: PASSWORD_GRANT, scope: apiScopes.join(' ') });
    accessToken.resourceServer = new provider.ResourceServer(deps.apiAudience, deps.apiResource);
    ctx.oidc.entity('AccessToken', accessToken);
    const accessTokenValue = await accessToken.save();

    let refreshTokenValue: string | undefined;
    if (client.grantTypeAllowed('refresh_token')) {
      const refreshToken = new provider.RefreshToken({
        accountId: userId, client, grantId, gty: PASSWORD_GRANT, rotations: 0,
        scope: [...oidcScopes, ...apiScopes].join(' '), resource: deps.apiAudience,
        amr: authentication.amr, acr: authentication.acr, authTime: authentication.authTime,
      });
      ctx.oidc.entity('RefreshToken', refreshToken);
      refreshTokenValue = await refreshToken.save();
    }
    return {
      access_token: accessTokenValue,
      expires_in: accessToken.expiration,
      token_type: accessToken.tokenType,
      refresh_token: refreshTokenValue,
      id_token: oidcScopes.includes('openid') ? await idToken(ctx, userId, oidcScopes, authentication) : undefined,
      scope: accessToken.scope || undefined,
    };
  }

  async function idToken(ctx: KoaContextWithOIDC, userId: string, oidcScopes: string[], authentication: Authentication): Promise<string> {
    // The provider's IdToken filters these claims down to the granted scope; acr, amr and auth_time always pass.
    const token = new provider.IdToken({
      ...(await deps.claimsOf(userId)), acr: authentication.acr, amr: authentication.amr, auth_time: authentication.authTime,
    }, { ctx });
    (token as unknown as { scope: string }).scope = oidcScopes.join(' ');
    return await token.issue({ use: 'idtoken' }) as string;
  }

  function answerTokens(ctx: KoaContextWithOIDC, body: Record<string, unknown>): void {
    ctx.body = Object.fromEntries(Object.entries(body).filter(([, value]) => value !== undefined));
  }

  /**
   * The refusals that carry more than RFC 6749 section 5.2's members (the mfa_token) are written
   * here rather than thrown: the provider's error answer keeps only error and error_description.
   */
  function answerRefusal(ctx: KoaContextWithOIDC, status: number, body: Record<string, string>): void {
    ctx.status = status;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = body;
  }

  const now = () => Math.floor(deps.clock.now() / 1000);

  async function passwordGrant(ctx: KoaContextWithOIDC): Promise<void> {
    const { client, params } = ctx.oidc as unknown as { client: ProviderClient; params: GrantParams };
    checkRequest(client, params);
    const { userId, secondFactor } = await signIn(ctx, client, params);
    if (secondFactor.hasFactor) {
      const request = Object.fromEntries(['scope', 'resource'].flatMap((name) => (params[name] ? [[name, params[name]!]] : [])));
      const mfaToken = await deps.mfa.issueMfaToken({ userId, clientId: client.clientId, params: request });
      return answerRefusal(ctx, 403, {
        error: 'mfa_required',
        error_description: `a second factor is required: send the mfa_token with a code (grant_type ${MFA_GRANT}) within ${MFA_TOKEN_TTL_SECONDS / 60} minutes`,
        mfa_token: mfaToken,
      });
    }
    if (secondFactor.required) {
      return answerRefusal(ctx, 403, {
        error: 'mfa_enrollment_required',
        error_description: 'this account must enrol a second factor first: sign in once through the browser sign-in page to set one up',
      });
    }
    const scopes = await grantedScopes(ctx, client, params, userId);
    answerTokens(ctx, await issueTokens(ctx, client, userId, scopes, { amr: [AMR_PASSWORD], acr: ACR_PASSWORD, authTime: now() }));
  }

  /** The second half of a password sign-in: the mfa_token it answered and a TOTP or recovery code. */
  async function mfaGrant(ctx: KoaContextWithOIDC): Promise<void> {
    const { client, params } = ctx.oidc as unknown as { client: ProviderClient; params: GrantParams };
    if (client.metadata().first_party !== true) {
      throw new errors.UnauthorizedClient('the MFA grant is only for first-party clients');
    }
    if (!params.mfa_token || !params.code) throw new errors.InvalidRequest('mfa_token and code are required');
    const pending = await deps.mfa.claimMfaToken(params.mfa_token);
    if (!pending) throw new MfaGrantRefused(INVALID_MFA_TOKEN);
    let signedIn = false;
    try {
      // The token is bound to the client that asked for it.
      if (pending.clientId !== client.clientId) throw new MfaGrantRefused(INVALID_MFA_TOKEN);
      await deps.mfa.verifySignInCode({
        userId: pending.userId, code: params.code, ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined, clientId: client.clientId, via: 'password_grant',
      });
      signedIn = true;
    } catch (error) {
      if (error instanceof SecondFactorRejected) throw new MfaGrantRefused(INVALID_MFA_CODE);
      throw asThrottled(ctx, error);
    } finally {
      // A wrong code does not spend the token; a good one does.
      await (signedIn ? deps.mfa.finishMfaToken(params.mfa_token) : deps.mfa.releaseMfaToken(params.mfa_token));
    }
    const scopes = await grantedScopes(ctx, client, pending.params, pending.userId);
    answerTokens(ctx, await issueTokens(ctx, client, pending.userId, scopes, { amr: [AMR_PASSWORD, AMR_OTP, AMR_MFA], acr: ACR_MFA, authTime: now() }));
  }

  provider.registerGrantType(PASSWORD_GRANT, passwordGrant, PARAMETERS);
  provider.registerGrantType(MFA_GRANT, mfaGrant, MFA_PARAMETERS);
}
