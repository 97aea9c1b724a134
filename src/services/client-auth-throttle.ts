// Failed client authentication (a wrong secret or assertion at the token, introspection,
// revocation, PAR and device endpoints) is counted per address and per client id in Redis (or in
// process in embedded mode) via rate-limiter-flexible, as the sign-in throttle counts passwords.
//
// - An address past its limit is refused outright for the rest of a window, its right
//   credentials included: that is what stops one host guessing.
// - A client id past its limit gets 429 instead of 401 for each further failure, from any
//   address, but its right credentials keep working: client ids are public, so a hard lock would
//   let anyone lock any client out, and its secrets are 256-bit random values nobody guesses.
//
// Only failures touch the store. A request that authenticates costs no store call: blocks are kept
// in process, and announced on a channel so that every process knows them at once.
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';

import { boundedLruCache } from '../platform/lru-cache.ts';
import { RedisStore } from '../platform/redis-store.ts';
import { StoreUnavailableError, type KeyValueStore } from '../platform/store.ts';

const CHANNEL = 'client-auth-blocks';
const MAX_KNOWN_BLOCKS = 100_000;

export interface ClientAuthThrottleSettings {
  /** Failures an address may have in a window before it is refused; 0 turns the limit off. */
  perAddress: number;
  /** Failures a client id may have in a window before further failures answer 429; 0 turns it off. */
  perClient: number;
  windowSeconds: number;
}

/** What a failure leads to: a 429 with Retry-After, or (undefined) the usual 401. */
export interface Throttled {
  retryAfterSeconds: number;
  scope: 'address' | 'client';
}

function limiter(store: KeyValueStore, keyPrefix: string, points: number, duration: number): RateLimiterAbstract {
  return store instanceof RedisStore
    ? new RateLimiterRedis({ storeClient: store.client, keyPrefix: `throttle:${keyPrefix}`, points, duration, useRedisPackage: false })
    : new RateLimiterMemory({ keyPrefix, points, duration });
}

export class ClientAuthThrottle {
  readonly #store: KeyValueStore;
  readonly #settings: ClientAuthThrottleSettings;
  readonly #addressFailures?: RateLimiterAbstract;
  readonly #clientFailures?: RateLimiterAbstract;
  /** Address -> blocked until (epoch ms). */
  readonly #blockedAddresses = boundedLruCache<string, number>({ maxEntries: MAX_KNOWN_BLOCKS });

  constructor(store: KeyValueStore, settings: ClientAuthThrottleSettings) {
    this.#store = store;
    this.#settings = settings;
    if (settings.perAddress > 0) this.#addressFailures = limiter(store, 'client-auth-address', settings.perAddress, settings.windowSeconds);
    if (settings.perClient > 0) this.#clientFailures = limiter(store, 'client-auth-client', settings.perClient, settings.windowSeconds);
  }

  get enabled(): boolean {
    return this.#addressFailures !== undefined || this.#clientFailures !== undefined;
  }

  async start(): Promise<void> {
    if (!this.#addressFailures) return;
    await this.#store.subscribe(CHANNEL, (message) => {
      const separator = message.indexOf(' ');
      const until = Number(message.slice(0, separator));
      if (separator > 0 && Number.isFinite(until)) this.#block(message.slice(separator + 1), until);
    });
  }

  /** Seconds the address must still wait, from this process's memory only (no store call). */
  addressBlocked(address: string): number | undefined {
    const until = this.#blockedAddresses.get(address);
    if (until === undefined) return undefined;
    const remaining = until - Date.now();
    if (remaining <= 0) {
      this.#blockedAddresses.delete(address);
      return undefined;
    }
    return Math.ceil(remaining / 1000);
  }

  /**
   * Counts one failed authentication. `clientId` is given only for a registered client (an
   * unknown id is counted against the address alone, so made-up ids cannot fill the store).
   */
  async recordFailure(address: string, clientId?: string): Promise<Throttled | undefined> {
    const [byAddress, byClient] = await storeCall(() => Promise.all([
      this.#addressFailures?.penalty(address, 1),
      clientId ? this.#clientFailures?.penalty(clientId, 1) : undefined,
    ]));
    let throttled: Throttled | undefined;
    if (byAddress && byAddress.consumedPoints >= this.#settings.perAddress) {
      const until = Date.now() + this.#settings.windowSeconds * 1000;
      const fresh = this.addressBlocked(address) === undefined;
      this.#block(address, until);
      if (fresh) await storeCall(() => this.#store.publish(CHANNEL, `${until} ${address}`));
      // The failure that reached the limit is answered as usual; the ones past it are 429s.
      if (byAddress.consumedPoints > this.#settings.perAddress) throttled = { retryAfterSeconds: this.#settings.windowSeconds, scope: 'address' };
    }
    if (!throttled && byClient && byClient.consumedPoints > this.#settings.perClient) {
      throttled = { retryAfterSeconds: Math.max(1, Math.ceil(byClient.msBeforeNext / 1000)), scope: 'client' };
    }
    return throttled;
  }

  #block(address: string, until: number): void {
    if (until > Date.now()) this.#blockedAddresses.set(address, until, { ttl: until - Date.now() });
  }
}

/** rate-limiter-flexible rejects with the Redis error itself; the HTTP layer answers those 503. */
async function storeCall<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof Error && !(error instanceof StoreUnavailableError)) throw new StoreUnavailableError(error);
    throw error;
  }
}
