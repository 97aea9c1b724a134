// The in-process caches (revocation state, clients, permissions, blocked addresses) are bounded
// LRU maps. lru-cache's `max` option allocates its arrays for that many entries when the cache is
// made (about 28 bytes per entry, 44 with a TTL: 4.4 MB for a 100,000-entry cache that is still
// empty, in every process). Counting each entry as 1 against `maxSize` keeps the same bound and
// the same eviction order, while the arrays grow with what the cache really holds.
import { LRUCache } from 'lru-cache';

export function boundedLruCache<K extends NonNullable<unknown>, V extends NonNullable<unknown>>(options: { maxEntries: number; ttlMs?: number }): LRUCache<K, V> {
  return new LRUCache<K, V>({ maxSize: options.maxEntries, sizeCalculation: () => 1, ttl: options.ttlMs ?? 0 });
}
