// The OAuth client registry as administrators manage it (API.md "Applications"). Metadata is
// RFC 7591's; it passes Latchkey's rules first (exact, https-or-loopback redirect URIs, no
// password grant outside first-party clients, no client_credentials without credentials), then
// node-oidc-provider's own validation, so nothing the provider would later refuse is stored.
// Organization-scoped: an org admin sees and changes the clients of their organization (or of its
// users); a super admin every client. Another organization's client is as invisible as a missing one.
import type { MikroORM } from '@mikro-orm/postgresql';

import { AppError, assertThat, fieldError, type ValidationIssue } from '../platform/errors.ts';
import { executeStatement, queryOne } from '../platform/database.ts';
import { auditEntry, recordAudit, type AuditEntry } from './audit.service.ts';
import { FIRST_PARTY_CLIENT_ID } from './bootstrap.service.ts';
import type { ApplicationRow, ClientRecord, ClientRegistry } from './client-registry.service.ts';
import { generateClientSecret, hashClientSecret, isHashedClientSecret } from './client-secrets.ts';
import { API_SCOPES, OIDC_SCOPES } from './scopes.ts';
import { ACCESS_TOKEN_ALG, ID_TOKEN_ALG } from './signing-keys.service.ts';
import { isSuperAdmin, type Actor } from './tenancy.ts';

export const GRANT_TYPES = [
  'authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code', 'password',
] as const;
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
export const APPLICATION_TYPES = ['web', 'native'] as const;
export const CLIENT_KINDS = ['application', 'personal', 'dynamic'] as const satisfies readonly ClientRecord['kind'][];
export const CLIENT_LIMITS = {
  clientName: 100, uris: 20, uriLength: 2000, scopeLength: 1000, jwksKeys: 10, contacts: 10, contactLength: 254, softwareField: 200,
  // Ten years: past that a max_age means nothing but an error someone made.
  defaultMaxAge: 10 * 365 * 24 * 3600,
} as const;
/** The algorithms node-oidc-provider is configured with (src/oidc/provider.ts enabledJWA), so the admin API offers exactly those. */
export const CLIENT_AUTH_SIGNING_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
export const ID_TOKEN_SIGNING_ALGS = [ID_TOKEN_ALG, ACCESS_TOKEN_ALG] as const;
/** Pairwise identifiers are not offered (OpenID Connect Core 1.0 section 8). */
export const SUBJECT_TYPES = ['public'] as const;
/** Registration metadata of RFC 7591 the provider does not know; it keeps them as extra client metadata. */
export const SOFTWARE_METADATA = ['software_id', 'software_version'] as const;
export const INITIAL_ACCESS_TOKEN_TTL = { default: 3600, min: 60, max: 30 * 24 * 3600 } as const;

const SUPPORTED_SCOPES = new Set<string>([...OIDC_SCOPES, ...API_SCOPES]);
const SECRET_AUTH_METHODS = new Set<string>(['client_secret_basic', 'client_secret_post']);
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);
const FORBIDDEN_SCHEMES = new Set(['javascript:', 'data:', 'vbscript:', 'file:', 'blob:', 'about:']);
// RFC 8252 section 7.1: a private-use scheme is a reverse domain name the app controls.
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9+-]*(?:\.[a-z0-9+-]+)+:$/;
// Changing any of these changes what the client may get or how it proves itself: its tokens end.
const AUTHORITY_FIELDS = ['grant_types', 'scope', 'token_endpoint_auth_method', 'token_endpoint_auth_signing_alg', 'jwks', 'jwks_uri'];
/** URIs the server calls, or shows to users beside the client's name: https, or http on loopback. */
const WEB_URI_FIELDS = ['jwks_uri', 'backchannel_logout_uri', 'client_uri', 'logo_uri', 'policy_uri', 'tos_uri', 'initiate_login_uri'] as const;
/**
 * Optional RFC 7591 / OpenID Connect Dynamic Client Registration 1.0 metadata that the provider
 * supports as configured, beside the core fields every client has; `null` in a PATCH removes one.
 */
export const OPTIONAL_METADATA = [
  'jwks', 'jwks_uri', 'backchannel_logout_uri', 'backchannel_logout_session_required', 'client_uri', 'logo_uri', 'policy_uri', 'tos_uri',
  'initiate_login_uri', 'contacts', 'token_endpoint_auth_signing_alg', 'id_token_signed_response_alg', 'subject_type', 'default_max_age',
  'require_auth_time', ...SOFTWARE_METADATA,
] as const;
const METADATA_FIELDS = new Set<string>([
  'client_name', 'application_type', 'redirect_uris', 'post_logout_redirect_uris', 'grant_types', 'response_types',
  'token_endpoint_auth_method', 'scope', 'first_party', ...OPTIONAL_METADATA,
]);

export interface ApplicationMetadata {
  client_name: string;
  application_type: (typeof APPLICATION_TYPES)[number];
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: (typeof GRANT_TYPES)[number][];
  /** Follows from grant_types; when given it must agree. */
  response_types?: string[];
  token_endpoint_auth_method: (typeof AUTH_METHODS)[number];
  jwks?: { keys: Record<string, unknown>[] };
  jwks_uri?: string;
  backchannel_logout_uri?: string;
  /** Back-Channel Logout 1.0 section 2.2: the logout token must then carry `sid`. */
  backchannel_logout_session_required?: boolean;
  client_uri?: string;
  logo_uri?: string;
  policy_uri?: string;
  tos_uri?: string;
  initiate_login_uri?: string;
  contacts?: string[];
  token_endpoint_auth_signing_alg?: (typeof CLIENT_AUTH_SIGNING_ALGS)[number];
  id_token_signed_response_alg?: (typeof ID_TOKEN_SIGNING_ALGS)[number];
  subject_type?: (typeof SUBJECT_TYPES)[number];
  default_max_age?: number;
  require_auth_time?: boolean;
  software_id?: string;
  software_version?: string;
  scope?: string;
}

type OptionalField = (typeof OPTIONAL_METADATA)[number];

export interface ApplicationInput extends ApplicationMetadata {
  first_party: boolean;
  organization_id?: string;
}

/** A PATCH: any field; `null` removes an optional one. */
export type ApplicationPatch = Partial<Omit<ApplicationMetadata, OptionalField>>
  & { [Field in OptionalField]?: ApplicationMetadata[Field] | null }
  & { first_party?: boolean };

export interface ApplicationFilters {
  kind?: ClientRecord['kind'];
  search?: string;
  organizationId?: string;
  limit: number;
  offset: number;
}

/** What this service needs of node-oidc-provider (wired in src/oidc/registration.ts). */
export interface ProviderClientModels {
  /** The provider's own client validation: its RFC 7591 error when it refuses, else undefined. */
  checkClientMetadata(metadata: Record<string, unknown>): Promise<{ error: string; description: string } | undefined>;
  issueInitialAccessToken(expiresIn: number): Promise<{ value: string; id: string; expiresAt: Date }>;
  discardInitialAccessToken(id: string): Promise<void>;
}

export interface ApplicationsDependencies {
  orm: MikroORM;
  clients: ClientRegistry;
  revokeGrant(grantId: string): Promise<void>;
  provider: ProviderClientModels;
}

function isLoopback(url: URL): boolean {
  return LOOPBACK_HOSTS.has(url.hostname);
}

/** RFC 6749 section 3.1.2, RFC 8252 sections 7.1 to 7.3, RFC 9700 section 2.1. */
function redirectUriProblem(uri: string, applicationType: unknown): string | undefined {
  if (uri.length > CLIENT_LIMITS.uriLength) return `must be at most ${CLIENT_LIMITS.uriLength} characters`;
  const url = URL.parse(uri);
  if (!url) return 'must be an absolute URI';
  if (uri.includes('#')) return 'must not contain a fragment (RFC 6749 section 3.1.2)';
  if (FORBIDDEN_SCHEMES.has(url.protocol)) return `must not use the ${url.protocol.slice(0, -1)} scheme`;
  // Redirect URIs are compared exactly (RFC 9700 section 4.1.3): a pattern is never one.
  if (url.hostname.includes('*')) return 'must be exact: wildcards are not allowed (RFC 9700 section 4.1.3)';
  if (url.username || url.password) return 'must not contain credentials';
  if (url.protocol === 'https:') {
    return applicationType === 'native' && isLoopback(url)
      ? 'of a native app uses http, not https, on loopback (RFC 8252 section 7.3)'
      : undefined;
  }
  if (url.protocol === 'http:') {
    return isLoopback(url) ? undefined : 'must use https; plain http only on loopback: 127.0.0.1, [::1] or localhost (RFC 9700 section 2.1)';
  }
  if (applicationType !== 'native') return 'must use https (or http on loopback); private-use schemes are for native apps (RFC 8252 section 7.1)';
  if (!PRIVATE_USE_SCHEME.test(url.protocol)) return 'must use a reverse-domain private-use scheme such as com.example.app:/callback (RFC 8252 section 7.1)';
  return undefined;
}

/** URIs the server itself calls (jwks_uri, backchannel_logout_uri). */
function webUriProblem(uri: string): string | undefined {
  if (uri.length > CLIENT_LIMITS.uriLength) return `must be at most ${CLIENT_LIMITS.uriLength} characters`;
  const url = URL.parse(uri);
  if (!url) return 'must be an absolute URI';
  if (uri.includes('#')) return 'must not contain a fragment';
  if (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url))) return undefined;
  return 'must use https (plain http only on loopback)';
}

function stringsIn(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** Space-separated, each once; undefined for nothing. */
export function normalizeScope(scope: unknown): string | undefined {
  if (typeof scope !== 'string') return undefined;
  const values = [...new Set(scope.split(/\s+/).filter(Boolean))];
  return values.length > 0 ? values.join(' ') : undefined;
}

/**
 * RFC 7591 section 2 lets the server choose the scopes of a client that names none. An empty scope
 * would let node-oidc-provider grant every scope, so a client always gets at least OpenID's;
 * API scopes are only ever given explicitly.
 */
export function defaultScope(grantTypes: readonly string[]): string {
  return ['openid', 'profile', 'email', ...(grantTypes.includes('refresh_token') ? ['offline_access'] : [])].join(' ');
}

/** RFC 7591 section 2.1: with only `code` supported, response_types follows from grant_types. */
export function responseTypesFor(grantTypes: readonly string[]): string[] {
  return grantTypes.includes('authorization_code') ? ['code'] : [];
}

/**
 * Latchkey's rules over RFC 7591 metadata, for the admin API and for dynamic registration alike.
 * Values of the wrong type are left to the schema (admin API) or the provider (registration).
 */
export function metadataProblems(metadata: Record<string, unknown>, options: { firstParty: boolean }): ValidationIssue[] {
  const problems: ValidationIssue[] = [];
  const problem = (path: (string | number)[], message: string, code = 'invalid') => { problems.push({ path, message, code }); };
  const applicationType = metadata.application_type ?? 'web';
  // RFC 7591 section 2 defaults.
  const grantTypes = Array.isArray(metadata.grant_types) ? stringsIn(metadata.grant_types) : ['authorization_code'];
  const authMethod = metadata.token_endpoint_auth_method ?? 'client_secret_basic';

  if (typeof metadata.client_name === 'string' && metadata.client_name.length > CLIENT_LIMITS.clientName) {
    problem(['client_name'], `must be at most ${CLIENT_LIMITS.clientName} characters`, 'too_big');
  }
  for (const field of ['redirect_uris', 'post_logout_redirect_uris']) {
    const uris = metadata[field];
    if (!Array.isArray(uris)) continue;
    if (uris.length > CLIENT_LIMITS.uris) problem([field], `must have at most ${CLIENT_LIMITS.uris} entries`, 'too_big');
    uris.forEach((uri, index) => {
      const message = typeof uri === 'string' ? redirectUriProblem(uri, applicationType) : undefined;
      if (message) problem([field, index], message, 'invalid_redirect_uri');
    });
  }
  for (const field of WEB_URI_FIELDS) {
    const uri = metadata[field];
    const message = typeof uri === 'string' ? webUriProblem(uri) : undefined;
    if (message) problem([field], message, 'invalid_uri');
  }
  // Only pairwise subject identifiers use it (OpenID Connect Core 1.0 section 8.1), and registering
  // one would make the provider fetch it.
  if (metadata.sector_identifier_uri !== undefined) {
    problem(['sector_identifier_uri'], `is only for pairwise subject identifiers; subject_types_supported is ${JSON.stringify(SUBJECT_TYPES)}`, 'unsupported');
  }
  for (const field of SOFTWARE_METADATA) {
    const value = metadata[field];
    if (value !== undefined && (typeof value !== 'string' || value.length === 0 || value.length > CLIENT_LIMITS.softwareField)) {
      problem([field], `must be a string of 1 to ${CLIENT_LIMITS.softwareField} characters (RFC 7591 section 2)`, 'invalid_string');
    }
  }
  if (Array.isArray(metadata.contacts) && metadata.contacts.length > CLIENT_LIMITS.contacts) {
    problem(['contacts'], `must have at most ${CLIENT_LIMITS.contacts} entries`, 'too_big');
  }

  grantTypes.forEach((grant, index) => {
    if (!(GRANT_TYPES as readonly string[]).includes(grant)) problem(['grant_types', index], `"${grant}" is not supported here`, 'invalid_value');
  });
  // RFC 9700 section 2.4: the resource-owner password grant MUST NOT be used, but by the server's own apps.
  if (grantTypes.includes('password') && !options.firstParty) {
    problem(['grant_types'], 'may include "password" only for a first-party client (RFC 9700 section 2.4)', 'password_not_allowed');
  }
  // A public client has nothing to prove who it is with (RFC 6749 sections 2.1 and 4.4).
  if (authMethod === 'none') {
    for (const grant of ['client_credentials', 'password']) {
      if (grantTypes.includes(grant)) problem(['grant_types'], `a public client (token_endpoint_auth_method "none") cannot use ${grant}`, 'public_client');
    }
  }
  if (grantTypes.includes('authorization_code') && stringsIn(metadata.redirect_uris).length === 0) {
    problem(['redirect_uris'], 'needs at least one redirect URI for the authorization_code grant', 'too_small');
  }

  if (metadata.jwks !== undefined && metadata.jwks_uri !== undefined) {
    problem(['jwks_uri'], 'give jwks or jwks_uri, not both (RFC 7591 section 2)', 'conflict');
  }
  if (authMethod === 'private_key_jwt' && metadata.jwks === undefined && metadata.jwks_uri === undefined) {
    problem(['jwks'], 'jwks or jwks_uri is required for private_key_jwt (RFC 7523 section 2.2)', 'required');
  }
  const keys = (metadata.jwks as { keys?: unknown } | undefined)?.keys;
  if (Array.isArray(keys) && keys.length > CLIENT_LIMITS.jwksKeys) problem(['jwks', 'keys'], `must have at most ${CLIENT_LIMITS.jwksKeys} keys`, 'too_big');

  if (typeof metadata.scope === 'string') {
    if (metadata.scope.length > CLIENT_LIMITS.scopeLength) problem(['scope'], `must be at most ${CLIENT_LIMITS.scopeLength} characters`, 'too_big');
    const unknown = metadata.scope.split(/\s+/).filter((scope) => scope && !SUPPORTED_SCOPES.has(scope));
    if (unknown.length > 0) problem(['scope'], `includes unknown scopes: ${unknown.join(' ')}`, 'invalid_scope');
  }
  return problems;
}

/** Which body field a provider refusal is about ("redirect_uris must not ..."), for the problem's path. */
function fieldOfProviderError(description: string): (string | number)[] {
  const first = description.split(/[\s.[]/)[0] ?? '';
  if (METADATA_FIELDS.has(first)) return [first];
  if (description.startsWith('client JSON Web Key Set')) return ['jwks'];
  return [];
}

function withoutUndefined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}

export class ApplicationsService {
  readonly #orm: MikroORM;
  readonly #clients: ClientRegistry;
  readonly #revokeGrant: (grantId: string) => Promise<void>;
  readonly #provider: ProviderClientModels;

  constructor(deps: ApplicationsDependencies) {
    this.#orm = deps.orm;
    this.#clients = deps.clients;
    this.#revokeGrant = deps.revokeGrant;
    this.#provider = deps.provider;
  }

  async list(actor: Actor, filters: ApplicationFilters): Promise<{ count: number; rows: ApplicationRow[] }> {
    if (isSuperAdmin(actor)) return this.#clients.listApplications(filters);
    const own = this.#organizationOf(actor);
    // An org admin's filter for another organization finds nothing, as if it had no clients.
    if (filters.organizationId && filters.organizationId !== own) return { count: 0, rows: [] };
    return this.#clients.listApplications({ ...filters, organizationId: own });
  }

  /** The client, or 404 when it does not exist or belongs to another organization. */
  async get(actor: Actor, clientId: string): Promise<ApplicationRow> {
    const organizationId = isSuperAdmin(actor) ? undefined : this.#organizationOf(actor);
    const { rows } = await this.#clients.listApplications({ clientId, organizationId, limit: 1, offset: 0 });
    assertThat(rows[0], 'resource.not_found', 'No such client');
    return rows[0];
  }

  /** Creates a client; its secret (for secret-based authentication) exists nowhere else afterwards. */
  async create(actor: Actor, input: ApplicationInput): Promise<{ row: ApplicationRow; clientSecret?: string }> {
    const organizationId = await this.#targetOrganization(actor, input.organization_id);
    if (input.first_party) this.#assertMayMakeFirstParty(actor);
    const grantTypes = [...new Set(input.grant_types)];
    const metadata = withoutUndefined({
      client_name: input.client_name,
      application_type: input.application_type,
      redirect_uris: [...new Set(input.redirect_uris)],
      post_logout_redirect_uris: [...new Set(input.post_logout_redirect_uris)],
      grant_types: grantTypes,
      response_types: responseTypesFor(grantTypes),
      token_endpoint_auth_method: input.token_endpoint_auth_method,
      ...Object.fromEntries(OPTIONAL_METADATA.map((field) => [field, field === 'contacts' && input.contacts ? [...new Set(input.contacts)] : input[field]])),
      scope: normalizeScope(input.scope) ?? defaultScope(grantTypes),
    });
    this.#assertResponseTypes(input.response_types, grantTypes);
    await this.#check(metadata, input.first_party);
    const created = await this.#orm.em.fork().transactional(async (em) => {
      const client = await this.#clients.create({ kind: 'application', organizationId, firstParty: input.first_party, metadata }, em);
      recordAudit(em, this.#audit(actor, 'client.create', client.clientId, organizationId, {
        kind: 'application', client_name: input.client_name, first_party: input.first_party,
      }));
      return client;
    });
    return { row: await this.get(actor, created.clientId), clientSecret: created.clientSecret };
  }

  /**
   * Changes any metadata but the secret. A client moved to secret-based authentication gets a new
   * secret (answered once, as RFC 7592 section 2.2 does); one moved away from it loses its secret.
   */
  async update(actor: Actor, clientId: string, patch: ApplicationPatch): Promise<{ row: ApplicationRow; clientSecret?: string }> {
    const current = await this.get(actor, clientId);
    this.#assertNotBuiltin(clientId);
    const firstParty = patch.first_party ?? current.firstParty;
    if (firstParty && !current.firstParty) this.#assertMayMakeFirstParty(actor);

    const { client_secret: secretHash, first_party: _firstParty, ...metadata } = current.metadata;
    for (const [field, value] of Object.entries(patch)) {
      if (field === 'first_party' || value === undefined) continue;
      if (value === null) delete metadata[field];
      else metadata[field] = value;
    }
    // The assertion algorithm belongs to private_key_jwt: a client moved off it drops it, unless
    // the change names one (which the provider then refuses, as it should).
    if (metadata.token_endpoint_auth_method !== 'private_key_jwt' && patch.token_endpoint_auth_signing_alg === undefined) {
      delete metadata.token_endpoint_auth_signing_alg;
    }
    const grantTypes = stringsIn(metadata.grant_types ?? ['authorization_code']);
    metadata.grant_types = [...new Set(grantTypes)];
    metadata.response_types = responseTypesFor(grantTypes);
    metadata.scope = normalizeScope(metadata.scope) ?? defaultScope(grantTypes);
    this.#assertResponseTypes(patch.response_types, grantTypes);
    await this.#check(metadata, firstParty);

    let clientSecret: string | undefined;
    if (SECRET_AUTH_METHODS.has(String(metadata.token_endpoint_auth_method ?? 'client_secret_basic'))) {
      if (isHashedClientSecret(secretHash)) {
        metadata.client_secret = secretHash;
      } else {
        clientSecret = generateClientSecret();
        metadata.client_secret = hashClientSecret(clientSecret);
      }
    } else {
      delete metadata.client_secret_expires_at;
    }
    if (firstParty) metadata.first_party = true;

    const endTokens = (current.firstParty && !firstParty)
      || AUTHORITY_FIELDS.some((field) => JSON.stringify(current.metadata[field]) !== JSON.stringify(metadata[field]));
    const updated = await this.#clients.update(clientId, {
      metadata, firstParty, previousSecretHash: isHashedClientSecret(secretHash) ? secretHash : null, endTokens,
    }, this.#audit(actor, 'client.update', clientId, current.organizationId, { fields: Object.keys(patch).sort(), tokens_ended: endTokens }));
    if (!updated) throw new AppError('request.conflict', 'The client\'s secret changed while this update was prepared; retry');
    return { row: await this.get(actor, clientId), clientSecret };
  }

  /** Deletes the client and ends its grants and tokens on every process (API.md "Applications"). */
  async remove(actor: Actor, clientId: string): Promise<void> {
    const current = await this.get(actor, clientId);
    this.#assertNotBuiltin(clientId);
    const grantIds = await this.#clients.remove(clientId, this.#audit(actor, 'client.delete', clientId, current.organizationId, {
      kind: current.kind, client_name: current.metadata.client_name ?? null,
    }));
    for (const grantId of grantIds) await this.#revokeGrant(grantId);
  }

  /** A new secret, answered once; tokens minted under the old one stop at the next call. */
  async rotateSecret(actor: Actor, clientId: string): Promise<string> {
    const current = await this.get(actor, clientId);
    this.#assertNotBuiltin(clientId);
    assertThat(isHashedClientSecret(current.metadata.client_secret), 'client.no_secret',
      'This client authenticates without a secret (token_endpoint_auth_method "none" or "private_key_jwt")');
    return this.#clients.rotateSecret(clientId, this.#audit(actor, 'client.rotate_secret', clientId, current.organizationId, { kind: current.kind }));
  }

  /**
   * An initial access token (RFC 7591 section 3): one registration at /oauth/reg, whose client
   * joins the organization recorded here. The token value is answered once and never logged.
   */
  async issueInitialAccessToken(actor: Actor, input: { expiresIn: number; organizationId?: string }): Promise<{ value: string; expiresAt: Date }> {
    const organizationId = await this.#targetOrganization(actor, input.organizationId);
    const token = await this.#provider.issueInitialAccessToken(input.expiresIn);
    try {
      await this.#orm.em.fork().transactional(async (em) => {
        await executeStatement(em, `update oidc_artifact set organization_id = ? where model = 'InitialAccessToken' and id = ?`, [organizationId, token.id]);
        recordAudit(em, this.#audit(actor, 'client.issue_initial_access_token', null, organizationId, {
          expires_at: token.expiresAt.toISOString(),
        }));
      });
    } catch (error) {
      // A token without its organization would register clients nobody but a super admin sees.
      await this.#provider.discardInitialAccessToken(token.id);
      throw error;
    }
    return { value: token.value, expiresAt: token.expiresAt };
  }

  #organizationOf(actor: Actor): string {
    assertThat(actor.organizationId, 'auth.forbidden', 'This token belongs to no organization');
    return actor.organizationId;
  }

  /** The caller's organization, or (super admins only) another existing one. */
  async #targetOrganization(actor: Actor, requested: string | undefined): Promise<string | null> {
    if (requested === undefined || requested === actor.organizationId) {
      return isSuperAdmin(actor) ? actor.organizationId ?? null : this.#organizationOf(actor);
    }
    assertThat(isSuperAdmin(actor), 'auth.forbidden', 'Only a super admin places a client in another organization');
    const found = await queryOne<{ found: number }>(this.#orm.em, 'select 1 as found from organization where id = ?', [requested]);
    if (!found) throw fieldError(['body', 'organization_id'], 'names no organization', 'not_found');
    return requested;
  }

  /**
   * A first-party client may take any user's password and skips consent (API.md section 2), across
   * organizations: only a super admin makes one.
   */
  #assertMayMakeFirstParty(actor: Actor): void {
    assertThat(isSuperAdmin(actor), 'auth.forbidden', 'Only a super admin makes a client first-party');
  }

  #assertNotBuiltin(clientId: string): void {
    assertThat(clientId !== FIRST_PARTY_CLIENT_ID, 'client.builtin', 'The built-in first-party client is Latchkey\'s own sign-in; it cannot be changed here');
  }

  #assertResponseTypes(given: string[] | undefined, grantTypes: readonly string[]): void {
    if (!given) return;
    const expected = responseTypesFor(grantTypes);
    if (given.length !== expected.length || !given.every((type) => expected.includes(type))) {
      throw fieldError(['body', 'response_types'], `follows from grant_types and must be ${JSON.stringify(expected)} (RFC 7591 section 2.1)`, 'inconsistent');
    }
  }

  /** Latchkey's rules, then the provider's: a client it would refuse at the token endpoint is never stored. */
  async #check(metadata: Record<string, unknown>, firstParty: boolean): Promise<void> {
    const problems = metadataProblems(metadata, { firstParty });
    if (problems.length > 0) {
      throw new AppError('request.validation_failed', 'The client metadata is not valid', {
        errors: problems.map((problem) => ({ ...problem, path: ['body', ...problem.path] })),
      });
    }
    const refusal = await this.#provider.checkClientMetadata({ ...metadata, ...(firstParty ? { first_party: true } : {}) });
    if (refusal) throw fieldError(['body', ...fieldOfProviderError(refusal.description)], refusal.description, refusal.error);
  }

  #audit(actor: Actor, action: string, clientId: string | null, organizationId: string | null, details: Record<string, unknown>): AuditEntry {
    return auditEntry(actor, { action, resource: 'client', resourceId: clientId, organizationId: organizationId ?? actor.organizationId ?? null, details });
  }
}
