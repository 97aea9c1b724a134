// The OAuth client registry as administrators manage it (API.md "Applications"). Metadata is
// RFC 7591's; it passes Latchkey's rules first (client-metadata.ts), then node-oidc-provider's own
// validation, so nothing the provider would later refuse is stored.
// Organization-scoped: an org admin sees and changes the clients of their organization (or of its
// users); a super admin every client. Another organization's client is as invisible as a missing one.
import type { MikroORM } from '@mikro-orm/postgresql';

import { AppError, assertThat, fieldError } from '../platform/errors.ts';
import { executeStatement, queryOne } from '../platform/database.ts';
import { auditEntry, recordAudit, type AuditEntry } from './audit.service.ts';
import { FIRST_PARTY_CLIENT_ID } from './bootstrap.service.ts';
import {
  OPTIONAL_METADATA, SECRET_AUTH_METHODS, defaultScope, fieldOfProviderError, metadataProblems, normalizeScope, responseTypesFor, stringsIn,
  type ApplicationMetadata, type OptionalField,
} from './client-metadata.ts';
import type { ApplicationRow, ClientRecord, ClientRegistry } from './client-registry.service.ts';
import { generateClientSecret, hashClientSecret, isHashedClientSecret } from './client-secrets.ts';
import { isSuperAdmin, ownOrganization, type Actor } from './tenancy.ts';

// src/oidc/provider.ts still reads these here; the metadata policy lives in client-metadata.ts.
export { CLIENT_AUTH_SIGNING_ALGS, ID_TOKEN_SIGNING_ALGS, SOFTWARE_METADATA } from './client-metadata.ts';

export const INITIAL_ACCESS_TOKEN_TTL = { default: 3600, min: 60, max: 30 * 24 * 3600 } as const;

// Changing any of these changes what the client may get or how it proves itself: its tokens end.
const AUTHORITY_FIELDS = ['grant_types', 'scope', 'token_endpoint_auth_method', 'token_endpoint_auth_signing_alg', 'jwks', 'jwks_uri'];

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
  clientRegistry: ClientRegistry;
  revokeGrant(grantId: string): Promise<void>;
  provider: ProviderClientModels;
}

/** Stored metadata with a PATCH applied (`null` removes a field), grant-derived fields made to agree. */
function patchedMetadata(stored: Record<string, unknown>, patch: ApplicationPatch): Record<string, unknown> {
  const metadata = { ...stored };
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
  return metadata;
}

/**
 * A secret-based client keeps its secret hash, or gets a new secret (returned, shown once) when it
 * had none; any other client has no secret to expire. Sets `client_secret` on the metadata.
 */
function keepOrMakeSecret(metadata: Record<string, unknown>, secretHash: unknown): string | undefined {
  if (!SECRET_AUTH_METHODS.has(String(metadata.token_endpoint_auth_method ?? 'client_secret_basic'))) {
    delete metadata.client_secret_expires_at;
    return undefined;
  }
  if (isHashedClientSecret(secretHash)) {
    metadata.client_secret = secretHash;
    return undefined;
  }
  const clientSecret = generateClientSecret();
  metadata.client_secret = hashClientSecret(clientSecret);
  return clientSecret;
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
    this.#clients = deps.clientRegistry;
    this.#revokeGrant = deps.revokeGrant;
    this.#provider = deps.provider;
  }

  async list(actor: Actor, filters: ApplicationFilters): Promise<{ count: number; rows: ApplicationRow[] }> {
    if (isSuperAdmin(actor)) return this.#clients.listApplications(filters);
    const own = ownOrganization(actor);
    // An org admin's filter for another organization finds nothing, as if it had no clients.
    if (filters.organizationId && filters.organizationId !== own) return { count: 0, rows: [] };
    return this.#clients.listApplications({ ...filters, organizationId: own });
  }

  /** The client, or 404 when it does not exist or belongs to another organization. */
  async get(actor: Actor, clientId: string): Promise<ApplicationRow> {
    const organizationId = isSuperAdmin(actor) ? undefined : ownOrganization(actor);
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

    const { client_secret: secretHash, first_party: _firstParty, ...stored } = current.metadata;
    const metadata = patchedMetadata(stored, patch);
    this.#assertResponseTypes(patch.response_types, stringsIn(metadata.grant_types));
    await this.#check(metadata, firstParty);
    const clientSecret = keepOrMakeSecret(metadata, secretHash);
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

  /** The caller's organization, or (super admins only) another existing one. */
  async #targetOrganization(actor: Actor, requested: string | undefined): Promise<string | null> {
    if (requested === undefined || requested === actor.organizationId) {
      return isSuperAdmin(actor) ? actor.organizationId ?? null : ownOrganization(actor);
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
