// The small key-value contract Latchkey needs from Redis: TTL keys, atomic counters and
// set-if-absent, sets, and pub/sub. Redis serves it in production; an in-process map serves it
// in the zero-setup embedded mode (one process only).

export interface KeyValueStore {
  readonly kind: 'redis' | 'memory';
  get(key: string): Promise<string | null>;
  getMany(keys: string[]): Promise<(string | null)[]>;
  set(key: string, value: string, ttlSeconds?: number): Promise<void>;
  /** Atomic: true when this call created the key (SET NX). */
  setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  delete(...keys: string[]): Promise<void>;
  /** Atomic counter; every increment pushes its expiry to `ttlSeconds` from now. */
  increment(key: string, ttlSeconds: number): Promise<number>;
  addToSet(key: string, member: string, ttlSeconds: number): Promise<void>;
  setMembers(key: string): Promise<string[]>;
  publish(channel: string, message: string): Promise<void>;
  /** `onResync` runs whenever messages may have been missed (a subscriber reconnect). */
  subscribe(channel: string, onMessage: (message: string) => void, onResync?: () => void): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Thrown for any store failure so that the HTTP layer answers 503 with Retry-After, never a hang. */
export class StoreUnavailableError extends Error {
  constructor(cause: unknown, summary = 'key-value store unavailable') {
    super(`${summary}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'StoreUnavailableError';
  }
}
