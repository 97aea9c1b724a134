import { Redis } from 'ioredis';

import type { Logger } from './logger.ts';
import { StoreUnavailableError, type KeyValueStore } from './store.ts';

const COMMAND_TIMEOUT_MS = 2000;

/**
 * Redis behind the store contract. Commands fail fast while Redis is down (no offline queue,
 * bounded timeouts) so requests answer 503 instead of hanging.
 */
export class RedisStore implements KeyValueStore {
  readonly kind = 'redis';
  readonly client: Redis;
  #subscriber?: Redis;
  readonly #handlers = new Map<string, { onMessage: (message: string) => void; onResync?: () => void }>();
  readonly #prefix: string;
  readonly #logger: Logger;

  private constructor(client: Redis, prefix: string, logger: Logger) {
    this.client = client;
    this.#prefix = prefix;
    this.#logger = logger;
  }

  static async connect(url: string, prefix: string, logger: Logger): Promise<RedisStore> {
    const client = new Redis(url, RedisStore.#options(prefix));
    client.on('error', (error) => logger.warn({ err: error.message }, 'redis connection error'));
    await RedisStore.#ready(client);
    return new RedisStore(client, prefix, logger);
  }

  static #options(prefix?: string) {
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

  static async #ready(client: Redis): Promise<void> {
    try {
      await client.connect();
    } catch (error) {
      client.disconnect();
      throw new StoreUnavailableError(error, `cannot connect to Redis at ${client.options.host}:${client.options.port}`);
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
    return keys.length === 0 ? Promise.resolve([]) : this.#run(() => this.client.mget(keys));
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
    if (keys.length > 0) await this.#run(() => this.client.del(...keys));
  }

  async increment(key: string, ttlSeconds: number) {
    const [[incrError, value] = [], [expireError] = []] = (await this.#run(() => this.client
      .multi().incr(key).expire(key, Math.max(1, Math.ceil(ttlSeconds))).exec())) ?? [];
    if (incrError || expireError) throw new StoreUnavailableError(incrError ?? expireError);
    return Number(value);
  }

  async addToSet(key: string, member: string, ttlSeconds: number) {
    await this.#run(() => this.client.multi().sadd(key, member).expire(key, Math.max(1, Math.ceil(ttlSeconds)), 'GT').exec());
    // EXPIRE GT never sets a TTL on a key that has none, so give a fresh set its first one.
    await this.#run(() => this.client.expire(key, Math.max(1, Math.ceil(ttlSeconds)), 'NX'));
  }

  setMembers(key: string) { return this.#run(() => this.client.smembers(key)); }

  async publish(channel: string, message: string) {
    await this.#run(() => this.client.publish(this.#prefix + channel, message));
  }

  async subscribe(channel: string, onMessage: (message: string) => void, onResync?: () => void) {
    if (!this.#subscriber) {
      const subscriber = this.client.duplicate({ ...RedisStore.#options(), keyPrefix: undefined });
      subscriber.on('error', (error) => this.#logger.warn({ err: error.message }, 'redis subscriber error'));
      subscriber.on('message', (fullChannel: string, message: string) => {
        this.#handlers.get(fullChannel)?.onMessage(message);
      });
      let connectedOnce = false;
      subscriber.on('ready', () => {
        // After a reconnect we may have missed messages: every cache fed by them starts over.
        if (connectedOnce) for (const handler of this.#handlers.values()) handler.onResync?.();
        connectedOnce = true;
      });
      await RedisStore.#ready(subscriber);
      this.#subscriber = subscriber;
    }
    this.#handlers.set(this.#prefix + channel, { onMessage, onResync });
    await this.#run(() => this.#subscriber!.subscribe(this.#prefix + channel));
  }

  async ping() { await this.#run(() => this.client.ping()); }

  async close() {
    await Promise.allSettled([this.client.quit(), this.#subscriber?.quit()]);
  }
}
