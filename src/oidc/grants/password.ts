// The resource-owner password grant (RFC 6749 section 4.3), registered as a custom grant for
// first-party clients only: RFC 9700 section 2.4 forbids it for everyone else. Tokens are the
// provider's own models, saved through its adapter, exactly as its built-in grants do.
import { errors, type KoaContextWithOIDC, type Provider, type ResourceServer } from 'oidc-provider';

import { EmailNotVerified, SignInFailed, type AccountsService } from '../../services/accounts.service.ts';
import { SignInThrottled } from '../../services/sign-in-throttle.ts';
import { API_SCOPES, OIDC_SCOPES } from '../../services/scopes.ts';

export const PASSWORD_GRANT = 'password';
const PARAMETERS = ['username', 'password', 'scope', 'resource', 'organization'];

class TooManyAttempts extends errors.CustomOIDCProviderError {
  constructor(retryAfterSeconds: number) {
    super('invalid_grant', `too many failed sign-ins; retry in ${retryAfterSeconds} s`);
    this.status = 429;
    this.statusCode = 429;
  }
}

/** The error_description of the invalid_grant that REQUIRE_VERIFIED_EMAIL answers to an unverified account's right password. */
export const EMAIL_NOT_VERIFIED_DESCRIPTION = 'the e-mail address of this account is not verified; follow the link mailed to it';

export interface PasswordGrantDependencies {
  accounts: AccountsService;
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

  async function signIn(ctx: KoaContextWithOIDC, client: ProviderClient, params: GrantParams): Promise<string> {
    try {
      const { userId } = await deps.accounts.signIn({
        identifier: params.username!,
        password: params.password!,
        organizationSlug: params.organization || undefined,
        ip: ctx.ip,
        userAgent: ctx.get('user-agent') || undefined,
        clientId: client.clientId,
        via: 'password_grant',
      });
      return userId;
    } catch (error) {
      if (error instanceof SignInFailed) throw new errors.InvalidGrant('invalid credentials');
      // RFC 6749 section 5.2 has no code of its own for this: invalid_grant, with a description that says why.
      if (error instanceof EmailNotVerified) throw new errors.CustomOIDCProviderError('invalid_grant', EMAIL_NOT_VERIFIED_DESCRIPTION);
      if (error instanceof SignInThrottled) {
        ctx.set('Retry-After', String(error.retryAfterSeconds));
        throw new TooManyAttempts(error.retryAfterSeconds);
      }
      throw error;
    }
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
  ): Promise<Record<string, unknown>> {
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
      });
      ctx.oidc.entity('RefreshToken', refreshToken);
      refreshTokenValue = await refreshToken.save();
    }
    return {
      access_token: accessTokenValue,
      expires_in: accessToken.expiration,
      token_type: accessToken.tokenType,
      refresh_token: refreshTokenValue,
      id_token: oidcScopes.includes('openid') ? await idToken(ctx, userId, oidcScopes) : undefined,
      scope: accessToken.scope || undefined,
    };
  }

  async function idToken(ctx: KoaContextWithOIDC, userId: string, oidcScopes: string[]): Promise<string> {
    // The provider's IdToken filters these claims down to the granted scope.
    const token = new provider.IdToken({ ...(await deps.claimsOf(userId)) }, { ctx });
    (token as unknown as { scope: string }).scope = oidcScopes.join(' ');
    return await token.issue({ use: 'idtoken' }) as string;
  }

  async function passwordGrant(ctx: KoaContextWithOIDC): Promise<void> {
    const { client, params } = ctx.oidc as unknown as { client: ProviderClient; params: GrantParams };
    checkRequest(client, params);
    const userId = await signIn(ctx, client, params);
    const body = await issueTokens(ctx, client, userId, await grantedScopes(ctx, client, params, userId));
    ctx.body = Object.fromEntries(Object.entries(body).filter(([, value]) => value !== undefined));
  }

  provider.registerGrantType(PASSWORD_GRANT, passwordGrant, PARAMETERS);
}
