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

/** What assertAllowed saw, so that a success clears only what is there. */
export interface SignInStanding {
  accountHasFailures: boolean;
}

export class SignInThrottle {
  readonly #accountFailures: RateLimiterAbstract;
  readonly #accountLocks: RateLimiterAbstract;
  readonly #ipFailures: RateLimiterAbstract;
  /** The Redis store when there is one: its counters are read in one MGET on the way in. */
  readonly #redis: RedisStore | undefined;

  constructor(store: KeyValueStore) {
    this.#accountFailures = limiter(store, 'account-failures', Number.MAX_SAFE_INTEGER, FAILURE_MEMORY_SECONDS);
    this.#accountLocks = limiter(store, 'account-lock', 1, MAX_LOCK_SECONDS);
    this.#ipFailures = limiter(store, 'ip-failures', IP_FAILURES_PER_MINUTE, IP_FAILURE_WINDOW_SECONDS);
    this.#redis = store instanceof RedisStore ? store : undefined;
  }

  /**
   * Points consumed under the account's lock and failure count and the address's failures. On
   * Redis, one MGET of the limiters' own keys (each holds its consumed points) instead of one
   * MULTI per limiter: a sign-in's way in is one round trip. Absent is 0.
   */
  async #consumedPoints(accountKey: string, ip: string): Promise<{ lock: number; failures: number; ipFailures: number }> {
    if (this.#redis) {
      const [lock, failures, ipFailures] = await this.#redis.getMany([
        this.#accountLocks.getKey(accountKey), this.#accountFailures.getKey(accountKey), this.#ipFailures.getKey(ip),
      ]);
      return { lock: Number(lock ?? 0), failures: Number(failures ?? 0), ipFailures: Number(ipFailures ?? 0) };
    }
    const [lock, failures, ipFailures] = await Promise.all([this.#accountLocks.get(accountKey), this.#accountFailures.get(accountKey), this.#ipFailures.get(ip)]);
    return { lock: lock?.consumedPoints ?? 0, failures: failures?.consumedPoints ?? 0, ipFailures: ipFailures?.consumedPoints ?? 0 };
  }

  static accountKey(identifier: string, organizationSlug?: string): string {
    return `${organizationSlug?.toLowerCase() ?? '*'}:${identifier.trim().toLowerCase()}`;
  }

  /** Throws SignInThrottled while the account is locked or the IP is over its limit. */
  async assertAllowed(accountKey: string, ip: string): Promise<SignInStanding> {
    const consumed = await storeCall(() => this.#consumedPoints(accountKey, ip));
    // Refused: the limiter itself says how long is left (rare, so its own read is fine here).
    if (consumed.lock > 0) {
      const lock = await storeCall(() => this.#accountLocks.get(accountKey));
      if (lock && lock.consumedPoints > 0 && lock.msBeforeNext > 0) throw new SignInThrottled(Math.ceil(lock.msBeforeNext / 1000), 'account');
    }
    if (consumed.ipFailures >= IP_FAILURES_PER_MINUTE) {
      const ipFailuresLastMinute = await storeCall(() => this.#ipFailures.get(ip));
      if (ipFailuresLastMinute && ipFailuresLastMinute.consumedPoints >= IP_FAILURES_PER_MINUTE) throw new SignInThrottled(Math.ceil(ipFailuresLastMinute.msBeforeNext / 1000), 'ip');
    }
    return { accountHasFailures: consumed.failures > 0 || consumed.lock > 0 };
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

  /** Clears the account's failures; with the standing read on the way in, only when it had any. */
  async recordSuccess(accountKey: string, standing?: SignInStanding): Promise<void> {
    if (standing && !standing.accountHasFailures) return;
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
