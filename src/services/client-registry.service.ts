// The OAuth client registry (API.md "Applications"). node-oidc-provider looks a client up on every
// token request, so records are cached in-process; any change is announced on a channel and every
// process drops its copy before the next request.
import type { MikroORM } from '@mikro-orm/postgresql';
import { LRUCache } from 'lru-cache';

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

interface ClientRow {
  client_id: string;
  metadata: Record<string, unknown>;
  kind: ClientRecord['kind'];
  first_party: boolean;
  organization_id: string | null;
  owner_id: string | null;
  owner_organization_id: string | null;
  owner_active: boolean | null;
  owner_roles: string[];
}

export class ClientRegistry {
  readonly #orm: MikroORM;
  readonly #store: KeyValueStore;
  readonly #revocation: RevocationService;
  // `null` caches "no such client", so probing unknown ids does not reach the database each time.
  readonly #cache = new LRUCache<string, ClientRecord | 'absent'>({ max: 10_000, ttl: 60_000 });

  constructor(orm: MikroORM, store: KeyValueStore, revocation: RevocationService) {
    this.#orm = orm;
    this.#store = store;
    this.#revocation = revocation;
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
              u.organization_id as owner_organization_id, u.is_active as owner_active,
              coalesce(array_agg(r.name order by r.name) filter (where r.name is not null), '{}') as owner_roles
         from oauth_client c
         left join app_user u on u.id = c.owner_id
         left join user_role ur on ur.user_id = u.id
         left join role r on r.id = ur.role_id
        where c.client_id = ?
        group by c.client_id, u.id`,
      [clientId],
    );
    const record: ClientRecord | undefined = row && {
      clientId: row.client_id,
      metadata: row.metadata,
      kind: row.kind,
      firstParty: row.first_party,
      organizationId: row.organization_id,
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
    // A disabled owner's personal client cannot authenticate at all.
    if (record.owner && !record.owner.isActive) return undefined;
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

  /** Deleting a client ends its tokens at the next call on every process. */
  async remove(clientId: string, audit?: AuditEntry): Promise<void> {
    await this.#orm.em.fork().transactional(async (em) => {
      await executeStatement(em, 'delete from oauth_client where client_id = ?', [clientId]);
      if (audit) recordAudit(em, audit);
    });
    await this.#revocation.revokeClientTokens(clientId);
    await this.invalidate(clientId);
  }
}
