import { EventEmitter } from 'node:events';

import type { KeyValueStore } from './store.ts';

interface Entry<T> { value: T; expiresAt: number }

/** In-process implementation of the store contract for the embedded mode. */
export class MemoryStore implements KeyValueStore {
  readonly kind = 'memory';
  readonly #values = new Map<string, Entry<string>>();
  readonly #sets = new Map<string, Entry<Set<string>>>();
  readonly #bus = new EventEmitter();
  readonly #sweeper: NodeJS.Timeout;
  readonly #prefix: string;

  constructor(prefix = '') {
    this.#prefix = prefix;
    this.#bus.setMaxListeners(0);
    this.#sweeper = setInterval(() => this.#sweep(), 30_000).unref();
  }

  #live<T>(map: Map<string, Entry<T>>, key: string): Entry<T> | undefined {
    const entry = map.get(this.#prefix + key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      map.delete(this.#prefix + key);
      return undefined;
    }
    return entry;
  }

  #sweep(): void {
    const now = Date.now();
    for (const map of [this.#values, this.#sets] as Map<string, Entry<unknown>>[]) {
      for (const [key, entry] of map) if (entry.expiresAt <= now) map.delete(key);
    }
  }

  static #expiry(ttlSeconds?: number): number {
    return ttlSeconds === undefined ? Number.POSITIVE_INFINITY : Date.now() + ttlSeconds * 1000;
  }

  async get(key: string) { return this.#live(this.#values, key)?.value ?? null; }

  async getMany(keys: string[]) { return keys.map((key) => this.#live(this.#values, key)?.value ?? null); }

  async set(key: string, value: string, ttlSeconds?: number) {
    this.#values.set(this.#prefix + key, { value, expiresAt: MemoryStore.#expiry(ttlSeconds) });
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number) {
    if (this.#live(this.#values, key)) return false;
    await this.set(key, value, ttlSeconds);
    return true;
  }

  async delete(...keys: string[]) {
    for (const key of keys) {
      this.#values.delete(this.#prefix + key);
      this.#sets.delete(this.#prefix + key);
    }
  }

  async increment(key: string, ttlSeconds: number) {
    const entry = this.#live(this.#values, key);
    const next = (entry ? Number(entry.value) : 0) + 1;
    this.#values.set(this.#prefix + key, { value: String(next), expiresAt: MemoryStore.#expiry(ttlSeconds) });
    return next;
  }

  async addToSet(key: string, member: string, ttlSeconds: number) {
    const entry = this.#live(this.#sets, key) ?? { value: new Set<string>(), expiresAt: 0 };
    entry.value.add(member);
    entry.expiresAt = Math.max(entry.expiresAt, MemoryStore.#expiry(ttlSeconds));
    this.#sets.set(this.#prefix + key, entry);
  }

  async setMembers(key: string) { return [...(this.#live(this.#sets, key)?.value ?? [])]; }

  async publish(channel: string, message: string) {
    // Delivered on a later tick, as Redis would, so publishers never re-enter their own handlers.
    queueMicrotask(() => this.#bus.emit(this.#prefix + channel, message));
  }

  async subscribe(channel: string, onMessage: (message: string) => void) {
    this.#bus.on(this.#prefix + channel, onMessage);
  }

  async ping() {}

  async close() {
    clearInterval(this.#sweeper);
    this.#bus.removeAllListeners();
    this.#values.clear();
    this.#sets.clear();
  }
}
