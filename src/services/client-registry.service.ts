// The OAuth client registry (API.md "Applications"). node-oidc-provider looks a client up on every
// token request, so records are cached in-process; any change is announced on a channel and every
// process drops its copy before the next request.
import type { MikroORM } from '@mikro-orm/postgresql';

import { boundedLruCache } from '../platform/lru-cache.ts';
import { executeStatement, queryOne, queryRows } from '../platform/database.ts';
import type { KeyValueStore } from '../platform/store.ts';
import { generateClientId, generateClientSecret, hashClientSecret, isHashedClientSecret } from './client-secrets.ts';
import { recordAudit, type AuditEntry } from './audit.service.ts';
import type { RevocationService } from './revocation.service.ts';

const CHANNEL = 'clients';
const EVERY_CLIENT = '*';

export interface ClientRecord {
  clientId: string;
  metadata: Record<string, unknown>;
  kind: 'application' | 'personal' | 'dynamic';
  firstParty: boolean;
  organizationId: string | null;
  /** The user a personal client acts for. */
  owner: { id: string; organizationId: string; isActive: boolean; roles: string[] } | null;
  /** False while the client's organization is disabled. */
  organizationActive: boolean;
}

export interface OwnedClient {
  clientId: string;
  clientName: string;
  scope: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewClient {
  metadata: Record<string, unknown>;
  kind: ClientRecord['kind'];
  firstParty?: boolean;
  organizationId?: string | null;
  ownerId?: string | null;
  clientIdPrefix?: string;
}

/** A client as its administrators see it (API.md "Applications"); `metadata` still holds the secret's hash. */
export interface ApplicationRow {
  clientId: string;
  kind: ClientRecord['kind'];
  firstParty: boolean;
  organizationId: string | null;
  ownerId: string | null;
  metadata: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

export interface ApplicationFilter {
  clientId?: string;
  /** Clients of the organization, or owned by one of its users. */
  organizationId?: string;
  kind?: ClientRecord['kind'];
  /** Part of the client_id or client_name, case-insensitive. */
  search?: string;
  limit: number;
  offset: number;
}

export interface ClientChange {
  metadata: Record<string, unknown>;
  firstParty: boolean;
  /** The hash the change was computed from: a concurrent secret rotation makes the update miss. */
  previousSecretHash: string | null;
  /** Ends the client's tokens (what it may get, or how it proves itself, changed). */
  endTokens: boolean;
}

interface ClientRow {
  client_id: string;
  metadata: Record<string, unknown>;
  kind: ClientRecord['kind'];
  first_party: boolean;
  organization_id: string | null;
  owner_id: string | null;
  owner_organization_id: string | null;
  owner_active: boolean | null;
  organization_active: boolean;
  owner_roles: string[];
}

export class ClientRegistry {
  readonly #orm: MikroORM;
  readonly #store: KeyValueStore;
  readonly #revocation: RevocationService;
  // `null` caches "no such client", so probing unknown ids does not reach the database each time.
  readonly #cache = boundedLruCache<string, ClientRecord | 'absent'>({ maxEntries: 10_000, ttlMs: 60_000 });

  readonly #requireVerifiedEmail: boolean;

  /**
   * `requireVerifiedEmail` (REQUIRE_VERIFIED_EMAIL): a personal client authenticates only once its
   * owner's address is verified, so the client handed out at registration does not get round the
   * rule that refuses the owner's sign-in.
   */
  constructor(orm: MikroORM, store: KeyValueStore, revocation: RevocationService, options: { requireVerifiedEmail?: boolean } = {}) {
    this.#orm = orm;
    this.#store = store;
    this.#revocation = revocation;
    this.#requireVerifiedEmail = options.requireVerifiedEmail ?? false;
  }

  async start(): Promise<void> {
    await this.#store.subscribe(CHANNEL, (clientId) => {
      if (clientId === EVERY_CLIENT) this.#cache.clear();
      else this.#cache.delete(clientId);
    }, () => this.#cache.clear());
  }

  /** Drops cached copies in every process (after any change to a client or its owner). */
  async invalidate(clientId: string = EVERY_CLIENT): Promise<void> {
    if (clientId === EVERY_CLIENT) this.#cache.clear();
    else this.#cache.delete(clientId);
    await this.#store.publish(CHANNEL, clientId);
  }

  async find(clientId: string): Promise<ClientRecord | undefined> {
    const cached = this.#cache.get(clientId);
    if (cached) return cached === 'absent' ? undefined : cached;
    const row = await queryOne<ClientRow>(
      this.#orm.em,
      `select c.client_id, c.metadata, c.kind, c.first_party, c.organization_id, c.owner_id,
              u.organization_id as owner_organization_id,
              -- An owner counts as active only while their organization is too (and, when the
              -- configuration requires it, once their address is verified).
              (u.is_active and ou.is_active and (u.is_verified or not ?::boolean)) as owner_active,
              coalesce(co.is_active, true) as organization_active,
              coalesce(array_agg(r.key order by r.key) filter (where r.key is not null), '{}') as owner_roles
         from oauth_client c
         left join organization co on co.id = c.organization_id
         left join app_user u on u.id = c.owner_id
         left join organization ou on ou.id = u.organization_id
         left join user_role ur on ur.user_id = u.id
         left join role r on r.id = ur.role_id
        where c.client_id = ?
        group by c.client_id, u.id, ou.id, co.id`,
      [this.#requireVerifiedEmail, clientId],
    );
    const record: ClientRecord | undefined = row && {
      clientId: row.client_id,
      metadata: row.metadata,
      kind: row.kind,
      firstParty: row.first_party,
      organizationId: row.organization_id,
      organizationActive: row.organization_active,
      owner: row.owner_id
        ? { id: row.owner_id, organizationId: row.owner_organization_id!, isActive: !!row.owner_active, roles: row.owner_roles }
        : null,
    };
    this.#cache.set(clientId, record ?? 'absent');
    return record;
  }

  /** What node-oidc-provider sees: RFC 7591 metadata, the secret only as its hash. */
  async findMetadata(clientId: string): Promise<Record<string, unknown> | undefined> {
    const record = await this.find(clientId);
    if (!record) return undefined;
    // A disabled owner's personal client, or any client of a disabled organization, cannot authenticate.
    if ((record.owner && !record.owner.isActive) || !record.organizationActive) return undefined;
    return { ...record.metadata, client_id: record.clientId };
  }

  /**
   * Creates a client and returns its secret, which exists nowhere else afterwards. Pass the
   * transaction's connection context as `em` so the row commits with the caller's change.
   */
  async create(input: NewClient, em = this.#orm.em.fork()): Promise<{ clientId: string; clientSecret?: string }> {
    const clientId = generateClientId(input.clientIdPrefix);
    const isPublic = input.metadata.token_endpoint_auth_method === 'none';
    const clientSecret = isPublic || input.metadata.token_endpoint_auth_method === 'private_key_jwt' ? undefined : generateClientSecret();
    const metadata = {
      ...input.metadata,
      client_id: clientId,
      ...(input.firstParty ? { first_party: true } : {}),
      ...(clientSecret ? { client_secret: hashClientSecret(clientSecret) } : {}),
    };
    await executeStatement(
      em,
      `insert into oauth_client (client_id, organization_id, owner_id, kind, first_party, metadata, created_at, updated_at)
       values (?, ?, ?, ?, ?, ?, now(), now())`,
      [clientId, input.organizationId ?? null, input.ownerId ?? null, input.kind, input.firstParty ?? false, JSON.stringify(metadata)],
    );
    return { clientId, clientSecret };
  }

  /** Dynamic registration (RFC 7591) writes through the provider adapter; secrets are hashed on the way in. */
  async saveDynamicClient(clientId: string, payload: Record<string, unknown>): Promise<void> {
    const metadata = { ...payload };
    if (typeof metadata.client_secret === 'string' && !isHashedClientSecret(metadata.client_secret)) {
      metadata.client_secret = hashClientSecret(metadata.client_secret);
    }
    await executeStatement(
      this.#orm.em,
      `insert into oauth_client (client_id, kind, metadata, created_at, updated_at) values (?, 'dynamic', ?, now(), now())
       on conflict (client_id) do update set metadata = excluded.metadata, updated_at = now()`,
      [clientId, JSON.stringify(metadata)],
    );
    await this.invalidate(clientId);
  }

  /** Personal clients of a user, newest first; never their secrets. */
  async listOwned(ownerId: string, page: { limit: number; offset: number } = { limit: 100, offset: 0 }): Promise<{ count: number; clients: OwnedClient[] }> {
    const [rows, total] = await Promise.all([
      queryRows<{ client_id: string; metadata: Record<string, unknown>; created_at: Date; updated_at: Date }>(
        this.#orm.em,
        `select client_id, metadata, created_at, updated_at from oauth_client
          where owner_id = ? and kind = 'personal' order by created_at desc, client_id limit ? offset ?`,
        [ownerId, page.limit, page.offset],
      ),
      queryOne<{ count: number }>(this.#orm.em, `select count(*)::int as count from oauth_client where owner_id = ? and kind = 'personal'`, [ownerId]),
    ]);
    return { count: total?.count ?? 0, clients: rows.map((row) => ({
      clientId: row.client_id,
      clientName: String(row.metadata.client_name ?? ''),
      scope: String(row.metadata.scope ?? ''),
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    })) };
  }

  /** A new secret for a confidential client; tokens minted with the old one stop at the next call. */
  async rotateSecret(clientId: string, audit?: AuditEntry): Promise<string> {
    const secret = generateClientSecret();
    await this.#orm.em.fork().transactional(async (em) => {
      const updated = await executeStatement(
        em,
        `update oauth_client set metadata = jsonb_set(metadata, '{client_secret}', to_jsonb(?::text)), updated_at = now()
          where client_id = ? and metadata->>'client_secret' is not null`,
        [hashClientSecret(secret), clientId],
      );
      if (updated === 0) throw new Error(`client ${clientId} has no secret to rotate`);
      if (audit) recordAudit(em, audit);
    });
    await this.#revocation.revokeClientTokens(clientId);
    await this.invalidate(clientId);
    return secret;
  }

  /**
   * Deleting a client ends its tokens at the next call on every process, and drops its grants,
   * refresh tokens and registration access token. Answers the ids of the grants it ended, whose
   * short-lived artefacts (codes, opaque tokens) the caller revokes in the key-value store.
   */
  async remove(clientId: string, audit?: AuditEntry): Promise<string[]> {
    const grantIds = await this.#orm.em.fork().transactional(async (em) => {
      await executeStatement(em, 'delete from oauth_client where client_id = ?', [clientId]);
      const artefacts = await queryRows<{ model: string; id: string; grant_id: string | null }>(
        em, 'delete from oidc_artifact where client_id = ? returning model, id, grant_id', [clientId],
      );
      if (audit) recordAudit(em, audit);
      return [...new Set(artefacts.map((row) => (row.model === 'Grant' ? row.id : row.grant_id)).filter((id): id is string => !!id))];
    });
    await this.#revocation.revokeClientTokens(clientId);
    await this.invalidate(clientId);
    return grantIds;
  }

  /** Clients for the admin API, newest first, with the organization boundary applied in SQL. */
  async listApplications(filter: ApplicationFilter): Promise<{ count: number; rows: ApplicationRow[] }> {
    const search = filter.search ? `%${filter.search.replace(/[\\%_]/g, '\\$&')}%` : null;
    const organizationId = filter.organizationId ?? null;
    const where = `where (?::text is null or c.client_id = ?)
        and (?::uuid is null or c.organization_id = ?::uuid or u.organization_id = ?::uuid)
        and (?::text is null or c.kind = ?)
        and (?::text is null or c.client_id ilike ? or c.metadata->>'client_name' ilike ?)`;
    const params = [
      filter.clientId ?? null, filter.clientId ?? null,
      organizationId, organizationId, organizationId,
      filter.kind ?? null, filter.kind ?? null,
      search, search, search,
    ];
    const [rows, total] = await Promise.all([
      queryRows<{ client_id: string; kind: ClientRecord['kind']; first_party: boolean; organization_id: string | null; owner_id: string | null; metadata: Record<string, unknown>; created_at: Date; updated_at: Date }>(
        this.#orm.em,
        `select c.client_id, c.kind, c.first_party, c.organization_id, c.owner_id, c.metadata, c.created_at, c.updated_at
           from oauth_client c left join app_user u on u.id = c.owner_id
           ${where}
          order by c.created_at desc, c.client_id limit ? offset ?`,
        [...params, filter.limit, filter.offset],
      ),
      queryOne<{ count: number }>(
        this.#orm.em,
        `select count(*)::int as count from oauth_client c left join app_user u on u.id = c.owner_id ${where}`,
        params,
      ),
    ]);
    return {
      count: total?.count ?? 0,
      rows: rows.map((row) => ({
        clientId: row.client_id,
        kind: row.kind,
        firstParty: row.first_party,
        organizationId: row.organization_id,
        ownerId: row.owner_id,
        metadata: row.metadata,
        createdAt: new Date(row.created_at),
        updatedAt: new Date(row.updated_at),
      })),
    };
  }

  /** Replaces a client's metadata; false when its secret changed meanwhile (the caller retries). */
  async update(clientId: string, change: ClientChange, audit?: AuditEntry): Promise<boolean> {
    const updated = await this.#orm.em.fork().transactional(async (em) => {
      const count = await executeStatement(
        em,
        `update oauth_client set metadata = ?, first_party = ?, updated_at = now()
          where client_id = ? and (metadata->>'client_secret') is not distinct from ?`,
        [JSON.stringify(change.metadata), change.firstParty, clientId, change.previousSecretHash],
      );
      if (count > 0 && audit) recordAudit(em, audit);
      return count > 0;
    });
    if (!updated) return false;
    if (change.endTokens) await this.#revocation.revokeClientTokens(clientId);
    await this.invalidate(clientId);
    return true;
  }

  /**
   * A client registered through RFC 7591 joins the organization of the admin who issued the
   * initial access token it was registered with.
   */
  async adoptDynamicClient(clientId: string, initialAccessTokenId: string, audit: Omit<AuditEntry, 'organizationId'>): Promise<string | null> {
    const organizationId = await this.#orm.em.fork().transactional(async (em) => {
      const row = await queryOne<{ organization_id: string | null }>(
        em,
        `update oauth_client set kind = 'dynamic', updated_at = now(), organization_id = (
            select organization_id from oidc_artifact where model = 'InitialAccessToken' and id = ?)
          where client_id = ? returning organization_id`,
        [initialAccessTokenId, clientId],
      );
      recordAudit(em, { ...audit, organizationId: row?.organization_id ?? null });
      return row?.organization_id ?? null;
    });
    await this.invalidate(clientId);
    return organizationId;
  }
}
