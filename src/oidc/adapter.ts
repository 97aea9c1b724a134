// Storage for node-oidc-provider (API.md section 2, "Storage"): short-lived artefacts in the
// key-value store, keys namespaced by model; clients, grants and refresh tokens in PostgreSQL.
import type { MikroORM } from '@mikro-orm/postgresql';
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';

import { executeStatement, queryOne } from '../platform/database.ts';
import type { KeyValueStore } from '../platform/store.ts';
import type { ClientRegistry } from '../services/client-registry.service.ts';
import type { RevocationService } from '../services/revocation.service.ts';

const DATABASE_MODELS = new Set(['Grant', 'RefreshToken', 'InitialAccessToken', 'RegistrationAccessToken']);
const TOKEN_MODELS = new Set(['AccessToken', 'ClientCredentials']);
const CONSUMABLE_MODELS = new Set(['AuthorizationCode', 'DeviceCode', 'PushedAuthorizationRequest', 'BackchannelAuthenticationRequest', 'PreAuthorizedCode']);
// How long a consumption marker outlives anything it can mark (codes and device codes live minutes).
const CONSUMED_MARKER_TTL = 24 * 60 * 60;

export interface AdapterDependencies {
  store: KeyValueStore;
  orm: MikroORM;
  clientRegistry: ClientRegistry;
  revocation: RevocationService;
}

type Payload = AdapterPayload & Record<string, unknown>;

function alreadyConsumed(model: string): never {
  throw new errors.InvalidGrant(`${model === 'RefreshToken' ? 'refresh token' : 'grant source'} already consumed`);
}

/** Short-lived artefacts: Session, Interaction, AuthorizationCode, DeviceCode, PAR, ReplayDetection, AccessToken, ClientCredentials. */
class StoreAdapter implements Adapter {
  readonly #model: string;
  readonly #deps: AdapterDependencies;

  constructor(model: string, deps: AdapterDependencies) {
    this.#model = model;
    this.#deps = deps;
  }

  // A code or request and its consumption marker are read together (one MGET): the hash tag
  // (`{id}`) keeps the two in one Redis Cluster slot. Nothing else is tagged, by grant or
  // otherwise: a token's key must follow from its id alone, and a grant's artefacts are only
  // ever deleted together, which the store does key by key on a cluster.
  #key(id: string) { return CONSUMABLE_MODELS.has(this.#model) ? `oidc:${this.#model}:{${id}}` : `oidc:${this.#model}:${id}`; }

  async upsert(id: string, payload: Payload, expiresIn: number) {
    const { store } = this.#deps;
    const key = this.#key(id);
    const grantId = payload.grantId as string | undefined;
    // Written together (one round trip where the store pipelines): an index entry for a key not
    // written yet, or not written at all after a failure, points at nothing and harms nothing.
    const lookups: Promise<void>[] = [store.set(key, JSON.stringify(payload), expiresIn)];
    if (grantId) lookups.push(store.addToSet(`oidc:grant:${grantId}`, key, expiresIn));
    if (payload.userCode) lookups.push(store.set(`oidc:${this.#model}:userCode:${payload.userCode as string}`, id, expiresIn));
    if (payload.uid) lookups.push(store.set(`oidc:${this.#model}:uid:${payload.uid as string}`, id, expiresIn));
    await Promise.all(lookups);
  }

  async find(id: string): Promise<Payload | undefined> {
    const key = this.#key(id);
    // Only codes and requests are ever consumed; tokens and sessions need one read, not two.
    const [json, consumed] = CONSUMABLE_MODELS.has(this.#model)
      ? await this.#deps.store.getMany([key, `${key}:consumed`])
      : [await this.#deps.store.get(key), null];
    if (!json) return undefined;
    const payload = JSON.parse(json) as Payload;
    if (consumed) payload.consumed = Number(consumed);
    return payload;
  }

  async #findBy(kind: 'uid' | 'userCode', value: string) {
    const id = await this.#deps.store.get(`oidc:${this.#model}:${kind}:${value}`);
    return id ? this.find(id) : undefined;
  }

  findByUid(uid: string) { return this.#findBy('uid', uid); }

  findByUserCode(userCode: string) { return this.#findBy('userCode', userCode); }

  /** Atomic: of any number of concurrent redemptions exactly one succeeds (RFC 6749 section 4.1.2). */
  async consume(id: string) {
    const won = await this.#deps.store.setIfAbsent(`${this.#key(id)}:consumed`, String(Math.floor(Date.now() / 1000)), CONSUMED_MARKER_TTL);
    if (!won) {
      const payload = await this.find(id);
      if (payload?.grantId) await revokeGrantEverywhere(this.#deps, payload.grantId as string);
      alreadyConsumed(this.#model);
    }
  }

  // Consumption markers are never deleted early, only expire: a racer that read the payload
  // before it was destroyed must still find the marker and lose.
  async destroy(id: string) {
    // A destroyed access token (RFC 7009 revocation, sign-out) is also recorded as revoked, and
    // that is announced: resource servers keep verified tokens in memory (oidc/access-tokens.ts)
    // and learn of the revocation from the record, not from the key being gone.
    if (TOKEN_MODELS.has(this.#model)) await this.#deps.revocation.revokeTokenId(id);
    await this.#deps.store.delete(this.#key(id));
  }

  async revokeByGrantId(grantId: string) {
    const { store, revocation } = this.#deps;
    // The provider calls this for every model of a revoked grant; AccessToken is always among them.
    if (this.#model === 'AccessToken') await revocation.revokeGrant(grantId);
    const setKey = `oidc:grant:${grantId}`;
    const keys = (await store.setMembers(setKey)).filter((key) => key.startsWith(`oidc:${this.#model}:`));
    await store.delete(...keys);
  }
}

/** Grants, refresh tokens and registration-related tokens: long-lived, kept in PostgreSQL. */
class DatabaseAdapter implements Adapter {
  readonly #model: string;
  readonly #deps: AdapterDependencies;

  constructor(model: string, deps: AdapterDependencies) {
    this.#model = model;
    this.#deps = deps;
  }

  async upsert(id: string, payload: Payload, expiresIn?: number) {
    const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000) : null;
    await executeStatement(
      this.#deps.orm.em,
      `insert into oidc_artifact (model, id, grant_id, account_id, client_id, payload, expires_at, created_at)
       values (?, ?, ?, ?, ?, ?, ?, now())
       on conflict (model, id) do update set payload = excluded.payload, expires_at = excluded.expires_at,
         grant_id = excluded.grant_id, account_id = excluded.account_id, client_id = excluded.client_id`,
      [this.#model, id, payload.grantId ?? null, payload.accountId ?? null, payload.clientId ?? null, JSON.stringify(payload), expiresAt],
    );
  }

  async find(id: string): Promise<Payload | undefined> {
    const row = await queryOne<{ payload: Payload; consumed_at: Date | null }>(
      this.#deps.orm.em,
      `select payload, consumed_at from oidc_artifact
       where model = ? and id = ? and (expires_at is null or expires_at > now())`,
      [this.#model, id],
    );
    if (!row) return undefined;
    return row.consumed_at ? { ...row.payload, consumed: Math.floor(new Date(row.consumed_at).getTime() / 1000) } : row.payload;
  }

  async findByUid() { return undefined; }

  async findByUserCode() { return undefined; }

  /** Atomic through the row update: a refresh token or initial access token is used once. */
  async consume(id: string) {
    const updated = await executeStatement(
      this.#deps.orm.em,
      'update oidc_artifact set consumed_at = now() where model = ? and id = ? and consumed_at is null',
      [this.#model, id],
    );
    if (updated === 0) {
      const payload = await this.find(id);
      if (payload?.grantId) await revokeGrantEverywhere(this.#deps, payload.grantId as string);
      alreadyConsumed(this.#model);
    }
  }

  async destroy(id: string) {
    if (this.#model === 'Grant') await this.#deps.revocation.revokeGrant(id);
    await executeStatement(this.#deps.orm.em, 'delete from oidc_artifact where model = ? and id = ?', [this.#model, id]);
  }

  async revokeByGrantId(grantId: string) {
    await executeStatement(this.#deps.orm.em, 'delete from oidc_artifact where model = ? and grant_id = ?', [this.#model, grantId]);
  }
}

/** The client registry, read through an in-process cache that every process invalidates together. */
class ClientAdapter implements Adapter {
  readonly #deps: AdapterDependencies;

  constructor(deps: AdapterDependencies) {
    this.#deps = deps;
  }

  async find(id: string) { return this.#deps.clientRegistry.findMetadata(id) as Promise<Payload | undefined>; }

  async upsert(id: string, payload: Payload) { await this.#deps.clientRegistry.saveDynamicClient(id, payload); }

  async destroy(id: string) { await this.#deps.clientRegistry.remove(id); }

  async findByUid() { return undefined; }

  async findByUserCode() { return undefined; }

  async consume() {}

  async revokeByGrantId() {}
}

/** A replayed code or refresh token ends its whole grant (RFC 9700 section 4.14.2). */
export async function revokeGrantEverywhere(deps: AdapterDependencies, grantId: string): Promise<void> {
  await deps.revocation.revokeGrant(grantId);
  const setKey = `oidc:grant:${grantId}`;
  const keys = await deps.store.setMembers(setKey);
  await deps.store.delete(...keys, setKey);
  await executeStatement(
    deps.orm.em,
    'delete from oidc_artifact where (model = ? and id = ?) or grant_id = ?',
    ['Grant', grantId, grantId],
  );
}

export function createAdapterFactory(deps: AdapterDependencies) {
  return (model: string): Adapter => {
    if (model === 'Client') return new ClientAdapter(deps);
    if (DATABASE_MODELS.has(model)) return new DatabaseAdapter(model, deps);
    return new StoreAdapter(model, deps);
  };
}
