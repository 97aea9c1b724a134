// node-oidc-provider, configured for API.md section 2. All tokens are minted here.
import type { MikroORM } from '@mikro-orm/postgresql';
import { Provider, errors, interactionPolicy, type Configuration, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import type { JWK } from 'jose';

import type { Clock } from '../platform/clock.ts';
import type { Config } from '../platform/config.ts';
import { queryOne } from '../platform/database.ts';
import type { Logger } from '../platform/logger.ts';
import type { KeyValueStore } from '../platform/store.ts';
import type { AccountsService } from '../services/accounts.service.ts';
import { CLIENT_AUTH_SIGNING_ALGS, ID_TOKEN_SIGNING_ALGS, SOFTWARE_METADATA } from '../services/applications.service.ts';
import type { ClientAuthThrottle } from '../services/client-auth-throttle.ts';
import type { ClientRegistry } from '../services/client-registry.service.ts';
import { recordAudit } from '../services/audit.service.ts';
import { ACR_MFA, ACR_PASSWORD, type MfaService } from '../services/mfa.service.ts';
import { verifyClientSecret } from '../services/client-secrets.ts';
import type { PermissionResolver } from '../services/rbac.service.ts';
import { SESSION_LIFETIME_SECONDS, type RevocationService } from '../services/revocation.service.ts';
import type { EmailVerificationService } from '../services/email-verification.service.ts';
import { API_SCOPES, OIDC_SCOPES } from '../services/scopes.ts';
import { ACCESS_TOKEN_ALG, ID_TOKEN_ALG } from '../services/signing-keys.service.ts';
import type { PasskeyService } from '../services/passkeys.service.ts';
import { findAccount } from './accounts.ts';
import { MFA_GRANT, PASSWORD_GRANT, registerPasswordGrant } from './grants/password.ts';
import { createAdapterFactory } from './adapter.ts';
import { throttleClientAuthentication } from './client-auth-throttle.ts';
import { defaultToRegisteredScope } from './default-scope.ts';
import { loadExistingGrant } from './interactions/consent.ts';
import { deviceFlowPages, logoutPages, renderErrorPage } from './interactions/provider-pages.ts';
import { outboundFetch } from './outbound-fetch.ts';
import type { ProviderHolder } from './provider-holder.ts';
import { registrationFeature, registrationSteps } from './registration.ts';


export const OIDC_ROUTES = {
  authorization: '/oauth/authorize',
  token: '/oauth/token',
  jwks: '/oauth/jwks',
  introspection: '/oauth/introspect',
  revocation: '/oauth/revoke',
  userinfo: '/oauth/userinfo',
  end_session: '/oauth/logout',
  device_authorization: '/oauth/device/auth',
  code_verification: '/oauth/device',
  pushed_authorization_request: '/oauth/par',
  registration: '/oauth/reg',
} as const;

export interface ProviderDependencies {
  config: Config;
  orm: MikroORM;
  store: KeyValueStore;
  clientRegistry: ClientRegistry;
  accounts: AccountsService;
  mfa: MfaService;
  clock: Clock;
  permissionResolver: PermissionResolver;
  revocation: RevocationService;
  clientAuthThrottle: ClientAuthThrottle;
  logger: Logger;
  signingKeys: JWK[];
  cookieKeys: string[];
}

/** What the sign-in pages (interactions/interaction.routes.ts) use: some of the provider's own dependencies and the live provider. */
export interface InteractionPagesDependencies extends Pick<ProviderDependencies, 'config' | 'orm' | 'accounts' | 'mfa' | 'store' | 'permissionResolver'> {
  providers: ProviderHolder;
  /** "Sign in with a passkey", and a passkey as the second factor. */
  passkeys: PasskeyService;
  /** "Send the link again" on the sign-in page (REQUIRE_VERIFIED_EMAIL). */
  emailVerification: EmailVerificationService;
}

async function userFacts(orm: MikroORM, userId: string): Promise<{ organizationId: string; roles: string[] } | undefined> {
  const row = await queryOne<{ organization_id: string; roles: string[] }>(
    orm.em,
    `select u.organization_id, coalesce(array_agg(r.key order by r.key) filter (where r.key is not null), '{}') as roles
       from app_user u left join user_role ur on ur.user_id = u.id left join role r on r.id = ur.role_id
      where u.id = ? group by u.id`,
    [userId],
  );
  return row && { organizationId: row.organization_id, roles: row.roles };
}

type UserFacts = Awaited<ReturnType<typeof userFacts>>;

/**
 * A user's organization and roles, read once per request: the password grant asks for them, then
 * each token it mints does (its claims). The request's own state holds them, so nothing outlives it.
 */
function userFactsOnce(orm: MikroORM, ctx: KoaContextWithOIDC, userId: string): Promise<UserFacts> {
  const state = ctx.state as { userFacts?: Map<string, Promise<UserFacts>> };
  state.userFacts ??= new Map();
  let facts = state.userFacts.get(userId);
  if (!facts) {
    facts = userFacts(orm, userId);
    state.userFacts.set(userId, facts);
  }
  return facts;
}

/** Claims Latchkey adds to every access token: who it acts for, and the generations to check. */
async function tokenClaims(deps: ProviderDependencies, ctx: KoaContextWithOIDC, token: { accountId?: string; clientId?: string; grantId?: string; kind: string }) {
  const client = token.clientId ? await deps.clientRegistry.find(token.clientId) : undefined;
  let userId = token.accountId;
  let organizationId: string | undefined;
  let roles: string[] | undefined;
  if (userId) {
    const account = await userFactsOnce(deps.orm, ctx, userId);
    organizationId = account?.organizationId;
    roles = account?.roles;
  } else if (client?.owner) {
    // A personal client's client_credentials token acts for its owner (API.md section 2).
    userId = client.owner.id;
    organizationId = client.owner.organizationId;
    roles = client.owner.roles;
  } else {
    organizationId = client?.organizationId ?? undefined;
  }
  const generations = await deps.revocation.currentGenerations({ userId, clientId: token.clientId });
  const authTime = token.accountId ? authTimeOf(ctx) : undefined;
  return {
    // When the user signed in (OIDC Core section 2 auth_time; RFC 9068 section 2.2.1): how
    // /api/v1 knows that a sign-in is recent enough to remove a factor.
    ...(authTime !== undefined ? { auth_time: authTime } : {}),
    // RFC 9068 JWTs carry no grant id of their own; the resource server needs it to honour grant revocation.
    ...(token.grantId ? { grant_id: token.grantId } : {}),
    ...(token.kind === 'ClientCredentials' && userId ? { user_id: userId } : {}),
    ...(organizationId ? { org_id: organizationId } : {}),
    ...(roles ? { roles } : {}),
    ...(generations.userGeneration !== undefined ? { user_gen: generations.userGeneration } : {}),
    ...(generations.clientGeneration !== undefined ? { client_gen: generations.clientGeneration } : {}),
  };
}

/**
 * The sign-in time behind a user's token: the code's, device code's or refresh token's own
 * `authTime` (the provider copies the session's into each), or, for the password and MFA grants,
 * the moment they checked the credentials (set on the request's state).
 */
function authTimeOf(ctx: KoaContextWithOIDC): number | undefined {
  const entities = (ctx.oidc?.entities ?? {}) as Record<string, { authTime?: unknown } | undefined>;
  for (const name of ['AuthorizationCode', 'DeviceCode', 'RefreshToken']) {
    const value = entities[name]?.authTime;
    if (typeof value === 'number') return value;
  }
  const signedIn = (ctx.state as { authTime?: unknown } | undefined)?.authTime;
  return typeof signedIn === 'number' ? signedIn : undefined;
}

/**
 * The sign-in policy: the provider's own prompts, and one more login check. A browser session
 * that has not passed a second factor is asked for one (the sign-in page then asks for the factor
 * alone, interactions/interaction.routes.ts) when the request says `acr_values=urn:latchkey:mfa`
 * (step-up), and when its user has a factor or a policy requires one: a session from before the
 * user enrolled, or before their organization turned on `mfa_required`. Only sessions without the
 * MFA acr pay the lookup.
 */
export const STEP_UP_REASON = 'mfa_step_up';

function interactionPolicyWithStepUp(mfa: MfaService) {
  const policy = interactionPolicy.base();
  policy.get('login')!.checks.add(new interactionPolicy.Check(STEP_UP_REASON, 'a second factor is required', 'login_required', async (ctx) => {
    const accountId = ctx.oidc.session?.accountId;
    if (!accountId || ctx.oidc.acr === ACR_MFA) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    if (String(ctx.oidc.params?.acr_values ?? '').split(' ').includes(ACR_MFA)) return interactionPolicy.Check.REQUEST_PROMPT;
    const standing = await mfa.standing(accountId);
    return standing.hasFactor || standing.required ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT;
  }));
  return policy;
}

/** The built-in API, `ISSUER/api` (API.md section 2, "Audience"). */
export function apiResourceServer(config: Config): ResourceServer {
  return {
    scope: API_SCOPES.join(' '),
    audience: config.apiAudience,
    accessTokenTTL: config.tokens.accessTokenTtl,
    accessTokenFormat: config.tokens.accessTokenFormat,
    jwt: { sign: { alg: ACCESS_TOKEN_ALG } },
  };
}

export function providerConfiguration(deps: ProviderDependencies): Configuration {
  const { config } = deps;
  const apiResource = apiResourceServer(config);
  return {
    adapter: createAdapterFactory(deps),
    findAccount: (ctx, sub) => findAccount(deps.orm, sub),
    jwks: { keys: deps.signingKeys },
    cookies: {
      keys: deps.cookieKeys,
      long: { signed: true, secure: config.secureCookies, sameSite: 'lax' },
      short: { signed: true, secure: config.secureCookies, sameSite: 'lax' },
    },
    routes: OIDC_ROUTES,
    scopes: [...OIDC_SCOPES, ...API_SCOPES],
    claims: {
      // Every ID token says how and when the user signed in (RFC 8176 amr, acr, auth_time), not
      // only one that asked for them with the claims parameter.
      openid: ['sub', 'acr', 'amr', 'auth_time'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username', 'updated_at'],
      email: ['email', 'email_verified'],
    },
    responseTypes: ['code'],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    enabledJWA: {
      idTokenSigningAlgValues: [...ID_TOKEN_SIGNING_ALGS],
      userinfoSigningAlgValues: [ID_TOKEN_ALG, ACCESS_TOKEN_ALG],
      introspectionSigningAlgValues: [ID_TOKEN_ALG, ACCESS_TOKEN_ALG],
      clientAuthSigningAlgValues: [...CLIENT_AUTH_SIGNING_ALGS],
      dPoPSigningAlgValues: ['ES256', 'EdDSA', 'RS256', 'PS256'],
      requestObjectSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'],
    },
    // PKCE is required of every client using the authorization endpoint; only S256 exists in v9.
    pkce: { required: () => true },
    ttl: {
      AccessToken: config.tokens.accessTokenTtl,
      ClientCredentials: config.tokens.accessTokenTtl,
      RefreshToken: config.tokens.refreshTokenTtl,
      Grant: config.tokens.refreshTokenTtl,
      DeviceCode: config.tokens.deviceCodeTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      Session: SESSION_LIFETIME_SECONDS,
    },
    // Every refresh rotates (API.md section 2); a replay of the old one revokes the grant.
    rotateRefreshToken: true,
    extraTokenClaims: (ctx, token) => tokenClaims(deps, ctx, token as unknown as { accountId?: string; clientId?: string; grantId?: string; kind: string }),
    extraClientMetadata: {
      // RFC 7591 section 2's software_id and software_version are kept, not ignored, so an
      // administrator sees which software registered (Latchkey's rules bound their size).
      properties: ['first_party', ...SOFTWARE_METADATA],
      validator(ctx, key, value) {
        if (key === 'first_party' && value !== undefined && typeof value !== 'boolean') {
          throw new errors.InvalidClientMetadata('first_party must be a boolean');
        }
        if ((SOFTWARE_METADATA as readonly string[]).includes(key) && value !== undefined && (typeof value !== 'string' || value === '')) {
          throw new errors.InvalidClientMetadata(`${key} must be a non-empty string if provided`);
        }
      },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}`, policy: interactionsPolicy(deps.mfa, deps.revocation) },
    // RFC 8176 amr values and these acr values reach ID tokens from the sign-in (interaction.routes.ts, grants/password.ts).
    acrValues: [ACR_PASSWORD, ACR_MFA],
    // A consent is remembered per client across sessions (src/oidc/interactions/consent.ts).
    loadExistingGrant: loadExistingGrant({ orm: deps.orm, scopePolicy: deps.permissionResolver, apiAudience: config.apiAudience }),
    // Back-channel logout and jwks_uri calls refuse private addresses unless allowed (API.md section 1).
    fetch: outboundFetch({ allowPrivate: config.outboundAllowPrivate }),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // A client may introspect its own tokens, or any token when it is a first-party client. A
        // public client (`none`, such as the built-in `latchkey`) proves nothing about who calls:
        // RFC 7662 section 4 wants the caller authenticated, so it introspects nothing.
        allowedPolicy: async (ctx, client, token) => client.clientAuthMethod !== 'none'
          && (client.clientId === (token as { clientId?: string }).clientId || !!client.first_party),
      },
      // RFC 7009 section 2.1: a client revokes only the tokens issued to it.
      revocation: { enabled: true, allowedPolicy: async (ctx, client, token) => client.clientId === (token as { clientId?: string }).clientId },
      userinfo: { enabled: true },
      pushedAuthorizationRequests: { enabled: true },
      dPoP: { enabled: true },
      rpInitiatedLogout: { enabled: true, ...logoutPages },
      backchannelLogout: { enabled: true },
      deviceFlow: { enabled: true, ...deviceFlowPages },
      // RFC 7591/7592, open only with an admin's single-use initial access token (src/oidc/registration.ts).
      registration: registrationFeature(),
      registrationManagement: { enabled: true, rotateRegistrationAccessToken: true },
      resourceIndicators: {
        enabled: true,
        // Without `resource`, tokens are for the built-in API, except that an `openid` code or
        // device exchange gets a userinfo token (useGrantedResource false) (API.md "Audience").
        defaultResource: async (ctx, client, oneOf) => (oneOf ? oneOf : config.apiAudience),
        useGrantedResource: async () => false,
        getResourceServerInfo: async (ctx, resourceIndicator) => {
          if (resourceIndicator === config.apiAudience) return apiResource;
          throw new errors.InvalidTarget('unknown resource indicator');
        },
      },
    },
    clientBasedCORS: (ctx, origin, client) => {
      const redirectUris = (client.redirectUris ?? []) as string[];
      return redirectUris.some((uri) => new URL(uri).origin === origin);
    },
    conformIdTokenClaims: true,
    allowOmittingSingleRegisteredRedirectUri: false,
    renderError: renderErrorPage,
  };
}

/**
 * RFC 6749 section 5.2 names the error for "the authenticated client is not authorized to use
 * this grant type" `unauthorized_client`; node-oidc-provider answers `invalid_request`.
 */
async function answerUnauthorizedClient(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
  await next();
  const body = ctx.body as { error?: string; error_description?: string } | undefined;
  if (ctx.oidc?.route === 'token' && ctx.status === 400 && body?.error === 'invalid_request'
    && body.error_description === 'requested grant type is not allowed for this client') {
    body.error = 'unauthorized_client';
  }
}

const MACHINE_GRANTS = new Set(['client_credentials', 'refresh_token']);

/**
 * With AUDIT_TOKEN_ISSUES=true, machine token issues (client_credentials, refresh) are written to
 * the audit trail too (API.md "Audit"); off by default so the token endpoint never waits on an insert.
 */
function auditMachineTokenIssues(deps: ProviderDependencies) {
  return async function recordTokenIssue(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
    await next();
    const grantType = String((ctx.oidc?.params as { grant_type?: unknown } | undefined)?.grant_type ?? '');
    if (ctx.oidc?.route !== 'token' || ctx.status !== 200 || !MACHINE_GRANTS.has(grantType)) return;
    const clientId = ctx.oidc.client?.clientId;
    const record = clientId ? await deps.clientRegistry.find(clientId) : undefined;
    const em = deps.orm.em.fork();
    recordAudit(em, {
      action: 'token.issue', resource: 'token', actorClientId: clientId ?? null,
      actorId: ctx.oidc.entities.Account?.accountId ?? record?.owner?.id ?? null,
      organizationId: record?.owner?.organizationId ?? record?.organizationId ?? null,
      ip: ctx.ip, userAgent: ctx.get('user-agent') || null, details: { grant_type: grantType },
    });
    await em.flush();
  };
}

/**
 * node-oidc-provider's Client.find serializes and SHA-256-hashes the adapter's metadata on every
 * call to notice a changed client (JSON.stringify + hash on every token request). The registry
 * already knows: it replaces a client's cached record whenever the client, its owner or its
 * organization changes (and at least every minute), so the provider's Client built from a record
 * is reused for as long as that same record object is current.
 */
function memoizeClientInstances(provider: Provider, clientRegistry: ClientRegistry): void {
  const findClient = provider.Client.find.bind(provider.Client);
  const clientsByRecord = new WeakMap<object, Awaited<ReturnType<typeof findClient>>>();
  provider.Client.find = async function findClientOfRecord(id: string) {
    const record = typeof id === 'string' && id ? await clientRegistry.find(id) : undefined;
    if (!record) return findClient(id);
    let client = clientsByRecord.get(record);
    if (!client) {
      client = await findClient(id);
      if (client) clientsByRecord.set(record, client);
    }
    return client;
  };
}

/**
 * The provider's prompts (with the second-factor check above), and one more reason to ask for the
 * password: the user's sessions were ended after this one signed in (a password reset,
 * services/password-reset.service.ts), so a browser still holding the session cookie gets no new
 * code or token without the new password.
 */
function interactionsPolicy(mfa: MfaService, revocation: Pick<RevocationService, 'sessionsEndedAt'>) {
  const policy = interactionPolicyWithStepUp(mfa);
  policy.get('login')!.checks.add(new interactionPolicy.Check('sessions_ended', 'The sessions of this account were ended after this sign-in', async (ctx) => {
    const { session, result } = ctx.oidc;
    if (!session?.accountId || result?.login) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    const endedAt = await revocation.sessionsEndedAt(session.accountId);
    const signedInAt = session.authTime();
    return endedAt !== undefined && (signedInAt === undefined || signedInAt <= endedAt)
      ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT;
  }));
  return policy;
}

export function createProvider(deps: ProviderDependencies): Provider {
  const provider = new Provider(deps.config.issuer, providerConfiguration(deps));
  provider.proxy = deps.config.trustProxy;
  defaultToRegisteredScope(provider);
  // Client secrets are stored as hashes (API.md section 2): compare the presented secret's hash
  // in constant time instead of the provider's plaintext comparison.
  memoizeClientInstances(provider, deps.clientRegistry);
  provider.Client.prototype.compareClientSecret = async function compareHashedSecret(this: { clientSecret?: string }, actual: string) {
    return verifyClientSecret(actual, this.clientSecret);
  };
  // Back-Channel Logout 1.0 section 2.1: as discovery says backchannel_logout_session_supported,
  // every ID token issued within a session carries `sid`, not only those of clients that asked
  // for it in their logout tokens (backchannel_logout_session_required).
  provider.Client.prototype.includeSid = function includeSidAlways() {
    return true;
  };
  // The MFA grant is the second half of a password sign-in: a client allowed the one may complete it.
  const grantTypeAllowed = provider.Client.prototype.grantTypeAllowed;
  provider.Client.prototype.grantTypeAllowed = function allowMfaWithPassword(this: InstanceType<Provider['Client']>, type: string) {
    return grantTypeAllowed.call(this, type === MFA_GRANT ? PASSWORD_GRANT : type);
  };
  provider.on('server_error', (ctx, error) => deps.logger.error({ err: error, route: ctx.oidc?.route }, 'oidc provider error'));
  // A client that misses a logout notification keeps its own session: say so in the log.
  provider.on('backchannel.error', (ctx, error, client) => deps.logger.warn({ err: (error as Error).message, clientId: client.clientId }, 'back-channel logout failed'));
  provider.use(throttleClientAuthentication(deps.clientAuthThrottle, OIDC_ROUTES, deps.logger));
  provider.use(answerUnauthorizedClient);
  if (deps.config.auditTokenIssues) provider.use(auditMachineTokenIssues(deps));
  provider.use(registrationSteps(provider, OIDC_ROUTES.registration, deps));
  registerPasswordGrant(provider, {
    accounts: deps.accounts,
    mfa: deps.mfa,
    clock: deps.clock,
    apiAudience: deps.config.apiAudience,
    apiResource: apiResourceServer(deps.config),
    apiScopesOf: async (ctx, userId) => {
      const facts = await userFactsOnce(deps.orm, ctx, userId);
      return facts ? deps.permissionResolver.apiScopesOf(facts.organizationId, facts.roles) : new Set<string>();
    },
    claimsOf: async (userId) => (await (await findAccount(deps.orm, userId))?.claims('id_token', 'openid profile email', {}, [])) ?? {},
  });
  return provider;
}
