// Brute-force limits on sign-in (API.md "Auth"): after 5 consecutive failures for one account a
// growing lock (1 s, 2 s, 4 s ... up to 15 min); per IP, 100 failures a minute. A success clears
// the account's count, and another account signing in from the same IP is unaffected below the
// IP limit. Counters live in Redis (or in process in embedded mode) via rate-limiter-flexible.
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract, type RateLimiterRes } from 'rate-limiter-flexible';

import { RedisStore } from '../platform/redis-store.ts';
import { StoreUnavailableError, type KeyValueStore } from '../platform/store.ts';

const FREE_FAILURES = 5;
const MAX_LOCK_SECONDS = 15 * 60;
const FAILURE_MEMORY_SECONDS = 24 * 60 * 60;
const IP_FAILURES_PER_MINUTE = 100;
/** The window of IP_FAILURES_PER_MINUTE: the longest an address waits once over it. */
export const IP_FAILURE_WINDOW_SECONDS = 60;

export class SignInThrottled extends Error {
  readonly retryAfterSeconds: number;
  readonly scope: 'account' | 'ip';
  constructor(retryAfterSeconds: number, scope: 'account' | 'ip') {
    super(`too many failed sign-ins; retry in ${retryAfterSeconds} s`);
    this.name = 'SignInThrottled';
    this.retryAfterSeconds = retryAfterSeconds;
    this.scope = scope;
  }
}

function limiter(store: KeyValueStore, keyPrefix: string, points: number, duration: number): RateLimiterAbstract {
  return store instanceof RedisStore
    ? new RateLimiterRedis({ storeClient: store.client, keyPrefix: `throttle:${keyPrefix}`, points, duration, useRedisPackage: false })
    : new RateLimiterMemory({ keyPrefix, points, duration });
}

export class SignInThrottle {
  readonly #accountFailures: RateLimiterAbstract;
  readonly #accountLocks: RateLimiterAbstract;
  readonly #ipFailures: RateLimiterAbstract;

  constructor(store: KeyValueStore) {
    this.#accountFailures = limiter(store, 'account-failures', Number.MAX_SAFE_INTEGER, FAILURE_MEMORY_SECONDS);
    this.#accountLocks = limiter(store, 'account-lock', 1, MAX_LOCK_SECONDS);
    this.#ipFailures = limiter(store, 'ip-failures', IP_FAILURES_PER_MINUTE, IP_FAILURE_WINDOW_SECONDS);
  }

  static accountKey(identifier: string, organizationSlug?: string): string {
    return `${organizationSlug?.toLowerCase() ?? '*'}:${identifier.trim().toLowerCase()}`;
  }

  /** Throws SignInThrottled while the account is locked or the IP is over its limit. */
  async assertAllowed(accountKey: string, ip: string): Promise<void> {
    const [lock, ipFailuresLastMinute] = await storeCall(() => Promise.all([this.#accountLocks.get(accountKey), this.#ipFailures.get(ip)]));
    if (lock && lock.consumedPoints > 0 && lock.msBeforeNext > 0) throw new SignInThrottled(Math.ceil(lock.msBeforeNext / 1000), 'account');
    if (ipFailuresLastMinute && ipFailuresLastMinute.consumedPoints >= IP_FAILURES_PER_MINUTE) throw new SignInThrottled(Math.ceil(ipFailuresLastMinute.msBeforeNext / 1000), 'ip');
  }

  async recordFailure(accountKey: string, ip: string): Promise<void> {
    await storeCall(async () => {
      await this.#ipFailures.penalty(ip, 1);
      const failures: RateLimiterRes = await this.#accountFailures.penalty(accountKey, 1);
      if (failures.consumedPoints >= FREE_FAILURES) {
        const seconds = Math.min(2 ** (failures.consumedPoints - FREE_FAILURES), MAX_LOCK_SECONDS);
        await this.#accountLocks.block(accountKey, seconds);
      }
    });
  }

  async recordSuccess(accountKey: string): Promise<void> {
    await storeCall(() => Promise.all([this.#accountFailures.delete(accountKey), this.#accountLocks.delete(accountKey)]));
  }
}

/** rate-limiter-flexible rejects with the Redis error itself; the HTTP layer answers those 503. */
async function storeCall<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof Error) throw new StoreUnavailableError(error);
    throw error;
  }
}
