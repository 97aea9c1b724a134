// Consent: what a client asks for, what the user's roles let it have, and the provider Grant
// that remembers the decision for every later sign-in (API.md section 2, ASVS 10.7.3).
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client, KoaContextWithOIDC, Provider } from 'oidc-provider';

import { queryOne } from '../../platform/database.ts';
import { API_SCOPES } from '../../services/scopes.ts';
import { findActiveProfile } from '../../services/users.service.ts';

type Grant = InstanceType<Provider['Grant']>;

/** What the consent page shows for each scope. */
export const SCOPE_DESCRIPTIONS: Record<string, string> = {
  openid: 'Sign you in with your Latchkey account',
  profile: 'See your name and username',
  email: 'See your email address',
  offline_access: 'Stay connected when you are not using it',
  'crm:read': 'Read customers and their interactions',
  'crm:write': 'Create and change customers and interactions',
  'users:read': 'See the users of your organization',
  'users:write': 'Manage the users of your organization',
  'rbac:read': 'See roles and permissions',
  'rbac:write': 'Change roles and permissions',
  'audit:read': 'Read the audit log',
};

/** The consent prompt's `details`, split by what the user's roles allow. */
export interface ConsentRequest {
  oidcScopes: string[];
  /**
   * API scopes the request also named as OpenID scopes (the provider's `scopes` lists both kinds).
   * They reach tokens through the API resource only, so the grant's OpenID part refuses them.
   */
  apiScopesAsOidc: string[];
  claims: string[];
  /** Resource indicator -> scopes the user may give. */
  resourceScopes: Record<string, string[]>;
  /** Resource indicator -> scopes beyond the user's roles: refused without asking. */
  withheldScopes: Record<string, string[]>;
}

const words = (value: string | undefined) => (value ?? '').split(' ').filter(Boolean);
const isApiScope = (scope: string) => (API_SCOPES as readonly string[]).includes(scope);
const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []);

export function isFirstParty(client: Client): boolean {
  return client.metadata().first_party === true;
}

/** Which API scopes roles allow: the rule the password grant applies too (PermissionResolver). */
export interface ApiScopePolicy {
  apiScopesOf(organizationId: string | undefined, roles: readonly string[]): Promise<Set<string>>;
}

export interface ConsentDependencies {
  orm: MikroORM;
  scopePolicy: ApiScopePolicy;
  apiAudience: string;
}

/** API scopes the user's current roles allow; none for a user that is gone or disabled. */
export async function allowedApiScopes(deps: Pick<ConsentDependencies, 'orm' | 'scopePolicy'>, accountId: string): Promise<Set<string>> {
  const profile = await findActiveProfile(deps.orm, accountId);
  return profile ? deps.scopePolicy.apiScopesOf(profile.organization.id, profile.roles) : new Set();
}

/** Reads the consent prompt's details (node-oidc-provider lib/helpers/interaction_policy/prompts/consent.js). */
export function consentRequest(details: Record<string, unknown>, apiAudience: string, allowed: Set<string>): ConsentRequest {
  const missingOidc = strings(details.missingOIDCScope);
  const request: ConsentRequest = {
    oidcScopes: missingOidc.filter((scope) => !isApiScope(scope)),
    apiScopesAsOidc: missingOidc.filter(isApiScope),
    claims: strings(details.missingOIDCClaims),
    resourceScopes: {},
    withheldScopes: {},
  };
  const missing = (details.missingResourceScopes ?? {}) as Record<string, unknown>;
  for (const [indicator, value] of Object.entries(missing)) {
    const scopes = strings(value);
    // Only the built-in API's scopes map to roles; a token never carries more than they allow.
    const limited = indicator === apiAudience ? scopes.filter((scope) => isApiScope(scope) && !allowed.has(scope)) : [];
    const given = scopes.filter((scope) => !limited.includes(scope));
    if (given.length > 0) request.resourceScopes[indicator] = given;
    if (limited.length > 0) request.withheldScopes[indicator] = limited;
  }
  return request;
}

/**
 * Grants are only ever refused for the user's roles, never by the user scope by scope, so a
 * refusal the roles no longer require is dropped: the scope is then asked for again.
 */
function forgetRefusal(grant: Grant, indicator: string, scopes: readonly string[]): void {
  const refused = grant.rejected?.resources?.[indicator];
  if (!refused) return;
  // Grant.save() drops the entry when it ends up empty (lib/models/grant.js clean()).
  grant.rejected!.resources![indicator] = words(refused).filter((scope) => !scopes.includes(scope)).join(' ');
}

/**
 * Adds what the user allowed to the grant (new, or the one the interaction already has), fits
 * the whole grant to the user's current roles, and saves it.
 */
export async function saveConsent(
  provider: Provider,
  target: { accountId: string; clientId: string; grantId?: string },
  request: ConsentRequest,
  roles: { apiAudience: string; allowed: Set<string> },
): Promise<string> {
  const existing = target.grantId ? await provider.Grant.find(target.grantId) : undefined;
  const grant = existing ?? new provider.Grant({ accountId: target.accountId, clientId: target.clientId });
  if (request.oidcScopes.length > 0) grant.addOIDCScope(request.oidcScopes);
  if (request.apiScopesAsOidc.length > 0) grant.rejectOIDCScope(request.apiScopesAsOidc);
  if (request.claims.length > 0) grant.addOIDCClaims(request.claims);
  for (const [indicator, scopes] of Object.entries(request.resourceScopes)) {
    forgetRefusal(grant, indicator, scopes);
    grant.addResourceScope(indicator, scopes);
  }
  // Refused scopes count as "encountered", so the provider does not prompt for them again.
  for (const [indicator, scopes] of Object.entries(request.withheldScopes)) grant.rejectResourceScope(indicator, scopes);
  fitToRoles(grant, roles.apiAudience, roles.allowed);
  return grant.save();
}

/** The newest live grant the account gave the client in any earlier session. */
async function findRememberedGrant(orm: MikroORM, provider: Provider, accountId: string, clientId: string): Promise<Grant | undefined> {
  const row = await queryOne<{ id: string }>(
    orm.em,
    `select id from oidc_artifact
      where model = 'Grant' and account_id = ? and client_id = ? and consumed_at is null
        and (expires_at is null or expires_at > now())
      order by created_at desc limit 1`,
    [accountId, clientId],
  );
  return row ? provider.Grant.find(row.id) : undefined;
}

/** Keeps a loaded grant within the roles the user holds now (a demotion narrows it at once). */
function fitToRoles(grant: Grant, apiAudience: string, allowed: Set<string>): void {
  const beyond = words(grant.getResourceScope(apiAudience)).filter((scope) => isApiScope(scope) && !allowed.has(scope));
  if (beyond.length > 0) grant.rejectResourceScope(apiAudience, beyond);
  const nowAllowed = words(grant.getRejectedResourceScope(apiAudience)).filter((scope) => allowed.has(scope));
  if (nowAllowed.length > 0) forgetRefusal(grant, apiAudience, nowAllowed);
}

/**
 * node-oidc-provider's `loadExistingGrant`: the grant of this interaction or session as by
 * default (lib/helpers/defaults.js), and otherwise the grant the account gave this client in an
 * earlier session, so a consent is asked once per client and scope, not once per browser.
 * First-party clients never need consent, so they do not look further than the session.
 */
export function loadExistingGrant(deps: ConsentDependencies) {
  return async function loadRememberedGrant(ctx: KoaContextWithOIDC): Promise<Grant | undefined> {
    const { oidc } = ctx;
    const client = oidc.client!;
    const accountId = oidc.account?.accountId;
    const knownGrantId = oidc.result?.consent?.grantId ?? oidc.session?.grantIdFor(client.clientId);
    let grant = knownGrantId ? await oidc.provider.Grant.find(knownGrantId) : undefined;
    if (!grant && accountId && !isFirstParty(client)) grant = await findRememberedGrant(deps.orm, oidc.provider, accountId, client.clientId);
    // Changes made here stay in memory: they shape this request's codes and tokens only.
    if (grant && accountId) fitToRoles(grant, deps.apiAudience, await allowedApiScopes(deps, accountId));
    return grant;
  };
}
