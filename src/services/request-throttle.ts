// Limits on requests that send mail to an address someone types (API.md section 4: "send the link
// again", forgotten password): so many per address and so many per client IP in a window, counted
// in Redis (or in process in embedded mode) through rate-limiter-flexible, as the sign-in
// throttle is. Every request counts, whether or not the address belongs to anyone, so being
// refused says nothing about whether an account exists.
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

import { RedisStore } from '../platform/redis-store.ts';
import { StoreUnavailableError, type KeyValueStore } from '../platform/store.ts';

export interface RequestLimit {
  /** Requests allowed in each window. */
  points: number;
  windowSeconds: number;
}

export interface RequestThrottleOptions {
  /** Names the counters: `throttle:<name>-address:*`, `throttle:<name>-ip:*`. */
  name: string;
  perAddress: RequestLimit;
  perIp: RequestLimit;
}

export class RequestThrottled extends Error {
  readonly retryAfterSeconds: number;
  readonly scope: 'address' | 'ip';
  constructor(retryAfterSeconds: number, scope: 'address' | 'ip') {
    super(`too many requests; retry in ${retryAfterSeconds} s`);
    this.name = 'RequestThrottled';
    this.retryAfterSeconds = retryAfterSeconds;
    this.scope = scope;
  }
}

function limiter(store: KeyValueStore, keyPrefix: string, limit: RequestLimit): RateLimiterAbstract {
  return store instanceof RedisStore
    ? new RateLimiterRedis({ storeClient: store.client, keyPrefix: `throttle:${keyPrefix}`, points: limit.points, duration: limit.windowSeconds, useRedisPackage: false })
    : new RateLimiterMemory({ keyPrefix, points: limit.points, duration: limit.windowSeconds });
}

export class RequestThrottle {
  readonly #perAddress: RateLimiterAbstract;
  readonly #perIp: RateLimiterAbstract;

  constructor(store: KeyValueStore, options: RequestThrottleOptions) {
    this.#perAddress = limiter(store, `${options.name}-address`, options.perAddress);
    this.#perIp = limiter(store, `${options.name}-ip`, options.perIp);
  }

  /** Counts one request for the address (compared in lower case) and the IP; throws RequestThrottled past either limit. */
  async consume(address: string, ip: string): Promise<void> {
    const [byIp, byAddress] = await Promise.allSettled([this.#perIp.consume(ip), this.#perAddress.consume(address.trim().toLowerCase())]);
    for (const [outcome, scope] of [[byIp, 'ip'], [byAddress, 'address']] as const) {
      if (outcome.status === 'fulfilled') continue;
      // rate-limiter-flexible refuses with a RateLimiterRes, and fails with the store's own error.
      if (outcome.reason instanceof RateLimiterRes) throw new RequestThrottled(Math.max(1, Math.ceil(outcome.reason.msBeforeNext / 1000)), scope);
      throw outcome.reason instanceof Error ? new StoreUnavailableError(outcome.reason) : outcome.reason;
    }
  }
}
