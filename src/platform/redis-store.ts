import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

import type { RedisConnection } from './config.ts';
import type { Logger } from './logger.ts';
import { StoreUnavailableError, type KeyValueStore } from './store.ts';

const COMMAND_TIMEOUT_MS = 2000;

/** What the rate limiters and tests are handed: one Redis connection, or a cluster of them. */
export type RedisClient = Redis | Cluster;

/**
 * Redis behind the store contract: one server (REDIS_URL), a Sentinel-managed primary, or a
 * Redis Cluster. Commands fail fast while Redis is down or switching over (no offline queue,
 * bounded timeouts) so requests answer 503 instead of hanging.
 *
 * On a cluster a command that names several keys must keep them in one hash slot (CROSSSLOT
 * otherwise). The only such commands are MGET and DEL in `getMany` and `delete`. Keys that share
 * a hash tag (`oidc:AuthorizationCode:{id}` and its `:consumed` marker) still go out as one
 * command; unrelated keys (a token's revocation markers, a grant's artefacts) go out one per
 * command, and auto-pipelining sends all the commands bound for one node in one write. Every
 * MULTI and script touches one key. REDIS_KEY_PREFIX cannot hold a brace, so the prefix never
 * tags every key into one slot.
 */
export class RedisStore implements KeyValueStore {
  readonly kind = 'redis';
  readonly client: RedisClient;
  #subscriber?: RedisClient;
  readonly #handlers = new Map<string, { onMessage: (message: string) => void; onResync?: () => void }>();
  readonly #prefix: string;
  readonly #logger: Logger;

  private constructor(client: RedisClient, prefix: string, logger: Logger) {
    this.client = client;
    this.#prefix = prefix;
    this.#logger = logger;
  }

  /** `connection` is REDIS_URL's value or the parsed Sentinel or Cluster settings. */
  static async connect(connection: string | RedisConnection, prefix: string, logger: Logger): Promise<RedisStore> {
    const target: RedisConnection = typeof connection === 'string' ? { mode: 'standalone', url: connection } : connection;
    const client = RedisStore.#create(target, prefix);
    client.on('error', (error: Error) => logger.warn({ err: error.message }, 'redis connection error'));
    if (client instanceof Cluster) client.on('node error', (error: Error, node: string) => logger.warn({ err: error.message, node }, 'redis cluster node error'));
    await RedisStore.#ready(client, RedisStore.#describe(target));
    return new RedisStore(client, prefix, logger);
  }

  static #create(target: RedisConnection, prefix: string): RedisClient {
    if (target.mode === 'cluster') {
      const options: ClusterOptions = {
        keyPrefix: prefix,
        lazyConnect: true,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        // Every read goes to the slot's master: a replica may lag behind a revocation.
        scaleReads: 'master',
        clusterRetryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
        slotsRefreshTimeout: COMMAND_TIMEOUT_MS,
        redisOptions: { ...target.auth, maxRetriesPerRequest: 1, commandTimeout: COMMAND_TIMEOUT_MS, connectTimeout: COMMAND_TIMEOUT_MS },
      };
      return new Cluster(target.nodes, options);
    }
    const options = RedisStore.#options(prefix);
    if (target.mode === 'sentinel') {
      // At start, sentinels that do not answer (or know no such master) are a setting to report,
      // as an unreachable REDIS_URL is; once connected, they are asked again until they answer.
      let connectedOnce = false;
      const client: Redis = new Redis({
        ...options,
        ...target.auth,
        sentinels: target.sentinels,
        name: target.name,
        sentinelPassword: target.sentinelPassword,
        sentinelCommandTimeout: COMMAND_TIMEOUT_MS,
        sentinelRetryStrategy: (attempt: number) => (connectedOnce ? Math.min(attempt * 200, 2000) : null),
        // A primary that is demoted drops its clients (Redis sentinel-clients guide, "Sentinel
        // failover disconnection"); should a write still meet a replica, ask the sentinels again.
        // Not ioredis's failoverDetector: its +switch-master message can arrive while the client
        // is reconnecting and end the client for good (it then answers "Connection is closed").
        reconnectOnError: (error: Error) => error.message.startsWith('READONLY'),
      });
      client.once('ready', () => { connectedOnce = true; });
      return client;
    }
    return new Redis(target.url, options);
  }

  static #options(prefix?: string): RedisOptions {
    return {
      keyPrefix: prefix,
      lazyConnect: true,
      enableOfflineQueue: false,
      // Commands issued in the same tick share one write: fewer syscalls under load.
      enableAutoPipelining: true,
      maxRetriesPerRequest: 1,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: COMMAND_TIMEOUT_MS,
      retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
    };
  }

  static #describe(target: RedisConnection): string {
    const list = (endpoints: { host: string; port: number }[]) => endpoints.map(({ host, port }) => `${host}:${port}`).join(',');
    if (target.mode === 'cluster') return `Redis Cluster at ${list(target.nodes)}`;
    if (target.mode === 'sentinel') return `Redis master "${target.name}" through the sentinels at ${list(target.sentinels)}`;
    const url = new URL(target.url);
    return `Redis at ${url.hostname}:${url.port || 6379}`;
  }

  static async #ready(client: RedisClient, description: string): Promise<void> {
    try {
      await client.connect();
    } catch (error) {
      client.disconnect();
      throw new StoreUnavailableError(error, `cannot connect to ${description}`);
    }
  }

  async #run<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw new StoreUnavailableError(error);
    }
  }

  get(key: string) { return this.#run(() => this.client.get(key)); }

  getMany(keys: string[]) {
    if (keys.length === 0) return Promise.resolve([]);
    const client = this.client;
    if (client instanceof Cluster && !sameSlot(keys)) return this.#run(() => Promise.all(keys.map((key) => client.get(key))));
    return this.#run(() => client.mget(keys));
  }

  async set(key: string, value: string, ttlSeconds?: number) {
    await this.#run(() => (ttlSeconds === undefined
      ? this.client.set(key, value)
      : this.client.set(key, value, 'EX', Math.max(1, Math.ceil(ttlSeconds)))));
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number) {
    const result = await this.#run(() => this.client.set(key, value, 'EX', Math.max(1, Math.ceil(ttlSeconds)), 'NX'));
    return result === 'OK';
  }

  async delete(...keys: string[]) {
    if (keys.length === 0) return;
    const client = this.client;
    if (client instanceof Cluster && !sameSlot(keys)) await this.#run(() => Promise.all(keys.map((key) => client.del(key))));
    else await this.#run(() => client.del(...keys));
  }

  async increment(key: string, ttlSeconds: number) {
    const [[incrError, value] = [], [expireError] = []] = (await this.#run(() => this.client
      .multi().incr(key).expire(key, Math.max(1, Math.ceil(ttlSeconds))).exec())) ?? [];
    if (incrError || expireError) throw new StoreUnavailableError(incrError ?? expireError);
    return Number(value);
  }

  async addToSet(key: string, member: string, ttlSeconds: number) {
    const seconds = Math.max(1, Math.ceil(ttlSeconds));
    // EXPIRE GT never sets a TTL on a key that has none: NX gives a fresh set its first one, then
    // GT only ever lengthens it. One transaction, one round trip.
    await this.#run(() => this.client.multi().sadd(key, member).expire(key, seconds, 'NX').expire(key, seconds, 'GT').exec());
  }

  setMembers(key: string) { return this.#run(() => this.client.smembers(key)); }

  async publish(channel: string, message: string) {
    await this.#run(() => this.client.publish(this.#prefix + channel, message));
  }

  async subscribe(channel: string, onMessage: (message: string) => void, onResync?: () => void) {
    this.#subscriber ??= await this.#openSubscriber();
    this.#handlers.set(this.#prefix + channel, { onMessage, onResync });
    await this.#run(() => this.#subscriber!.subscribe(this.#prefix + channel));
  }

  /**
   * One connection carries every subscription. On one server or Sentinel it is a second
   * connection made like the first, so it too finds the current primary after a failover and
   * subscribes again. A cluster already keeps a subscriber connection of its own to one node
   * (channel messages reach every node) and moves it when that node goes.
   */
  async #openSubscriber(): Promise<RedisClient> {
    const resync = () => { for (const handler of this.#handlers.values()) handler.onResync?.(); };
    const subscriber = this.client instanceof Cluster
      ? this.client
      : this.client.duplicate({ ...RedisStore.#options(), keyPrefix: undefined });
    subscriber.on('message', (fullChannel: string, message: string) => {
      this.#handlers.get(fullChannel)?.onMessage(message);
    });
    // After a reconnect we may have missed messages: every cache fed by them starts over. A
    // cluster says nothing when it moves its subscriber connection, so a node leaving (its
    // connection ended) counts as a reconnect too.
    let connectedOnce = subscriber === this.client;
    subscriber.on('ready', () => {
      if (connectedOnce) resync();
      connectedOnce = true;
    });
    if (subscriber instanceof Cluster) {
      subscriber.on('-node', resync);
      return subscriber;
    }
    subscriber.on('error', (error: Error) => this.#logger.warn({ err: error.message }, 'redis subscriber error'));
    await RedisStore.#ready(subscriber, 'the Redis subscriber connection');
    return subscriber;
  }

  async ping() { await this.#run(() => this.client.ping()); }

  async close() {
    const subscriber = this.#subscriber === this.client ? undefined : this.#subscriber;
    await Promise.allSettled([this.client.quit(), subscriber?.quit()]);
  }
}

/** The part of a key that Redis Cluster hashes when the key has a hash tag (cluster spec, "Hash tags"). */
function hashTag(key: string): string | undefined {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : undefined;
}

/** True when the keys are sure to share one slot: one key, or one hash tag in all of them. */
function sameSlot(keys: string[]): boolean {
  const tag = hashTag(keys[0]!);
  return keys.length === 1 || (tag !== undefined && keys.every((key) => hashTag(key) === tag));
}
