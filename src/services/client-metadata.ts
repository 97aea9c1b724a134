// Latchkey's policy over RFC 7591 client metadata, shared by the admin API (services/applications
// and its schemas) and dynamic registration (oidc/registration.ts): exact, https-or-loopback
// redirect URIs, no password grant outside first-party clients, no client_credentials without
// credentials, the algorithms and limits the provider is configured with.
import type { ValidationIssue } from '../platform/errors.ts';
import type { ClientRecord } from './client-registry.service.ts';
import { API_SCOPES, OIDC_SCOPES } from './scopes.ts';
import { ACCESS_TOKEN_ALG, ID_TOKEN_ALG } from './signing-keys.service.ts';

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

const SUPPORTED_SCOPES = new Set<string>([...OIDC_SCOPES, ...API_SCOPES]);
export const SECRET_AUTH_METHODS = new Set<string>(['client_secret_basic', 'client_secret_post']);
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);
const FORBIDDEN_SCHEMES = new Set(['javascript:', 'data:', 'vbscript:', 'file:', 'blob:', 'about:']);
// RFC 8252 section 7.1: a private-use scheme is a reverse domain name the app controls.
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9+-]*(?:\.[a-z0-9+-]+)+:$/;
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

export type OptionalField = (typeof OPTIONAL_METADATA)[number];

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

export function stringsIn(value: unknown): string[] {
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
export function fieldOfProviderError(description: string): (string | number)[] {
  const first = description.split(/[\s.[]/)[0] ?? '';
  if (METADATA_FIELDS.has(first)) return [first];
  if (description.startsWith('client JSON Web Key Set')) return ['jwks'];
  return [];
}

