// The OAuth client registry (API.md "Applications"). node-oidc-provider looks a client up on every
// token request, so records are cached in-process; any change is announced on a channel and every
// process drops its copy before the next request.
import type { MikroORM } from '@mikro-orm/postgresql';
import { LRUCache } from 'lru-cache';

import { executeStatement, queryOne } from '../platform/database.ts';
import type { KeyValueStore } from '../platform/store.ts';
import { generateClientId, generateClientSecret, hashClientSecret, isHashedClientSecret } from './client-secrets.ts';
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
    const metadata = { ...input.metadata, client_id: clientId, ...(clientSecret ? { client_secret: hashClientSecret(clientSecret) } : {}) };
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

  /** Deleting a client ends its tokens at the next call on every process. */
  async remove(clientId: string): Promise<void> {
    await executeStatement(this.#orm.em, 'delete from oauth_client where client_id = ?', [clientId]);
    await this.#revocation.revokeClientTokens(clientId);
    await this.invalidate(clientId);
  }
}
