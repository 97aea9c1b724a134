// The revocation state that lets a resource server refuse a still-unexpired token on its next
// call (API.md section 2): revoked grants and token ids, and a generation number per user and per
// client. Tokens carry the generations current when they were minted; bumping one ends every
// older token of that user or client. The state lives in the store and is cached in each process,
// kept fresh through pub/sub.
import { boundedLruCache } from '../platform/lru-cache.ts';

import type { KeyValueStore } from '../platform/store.ts';

const CHANNEL = 'revocation';
/** How long a sign-in session at the provider lasts (its Session TTL, oidc/provider.ts). */
export const SESSION_LIFETIME_SECONDS = 14 * 24 * 3600;

export interface TokenFacts {
  jti?: string;
  grantId?: string;
  clientId?: string;
  userId?: string;
  /** Generations recorded in the token when it was minted. */
  userGeneration?: number;
  clientGeneration?: number;
}

export type RevocationReason = 'token' | 'grant' | 'user' | 'client';

const keyOf = {
  jti: (id: string) => `revocation:jti:${id}`,
  grant: (id: string) => `revocation:grant:${id}`,
  user: (id: string) => `revocation:user:${id}`,
  client: (id: string) => `revocation:client:${id}`,
  sessions: (id: string) => `revocation:sessions:${id}`,
};

export class RevocationService {
  readonly #store: KeyValueStore;
  /** Long enough for any token signed before a revocation to have expired. */
  readonly #memorySeconds: number;
  // Values are the stored strings; '' marks a key known to be absent.
  readonly #cache = boundedLruCache<string, string>({ maxEntries: 100_000, ttlMs: 60_000 });

  constructor(store: KeyValueStore, maxTokenLifetimeSeconds: number) {
    this.#store = store;
    this.#memorySeconds = maxTokenLifetimeSeconds + 60;
  }

  async start(): Promise<void> {
    await this.#store.subscribe(CHANNEL, (message) => {
      const [key, value] = message.split(' ');
      if (key && value !== undefined) this.#cache.set(key, value);
    }, () => this.#cache.clear());
  }

  async #remember(key: string, value: string): Promise<void> {
    await this.#store.set(key, value, this.#memorySeconds);
    this.#cache.set(key, value);
    await this.#store.publish(CHANNEL, `${key} ${value}`);
  }

  async #bump(key: string): Promise<number> {
    const generation = await this.#store.increment(key, this.#memorySeconds);
    this.#cache.set(key, String(generation));
    await this.#store.publish(CHANNEL, `${key} ${generation}`);
    return generation;
  }

  revokeGrant(grantId: string) { return this.#remember(keyOf.grant(grantId), '1'); }

  revokeTokenId(jti: string) { return this.#remember(keyOf.jti(jti), '1'); }

  /** Ends every token minted for the user so far (logout everywhere, disable, demote, password reset). */
  revokeUserTokens(userId: string) { return this.#bump(keyOf.user(userId)); }

  /**
   * Ends every sign-in session of the user at the provider made until now (a password reset): the
   * next authorization request on such a session asks for the password again. Remembered as long
   * as a session can live.
   */
  async endUserSessions(userId: string): Promise<void> {
    const key = keyOf.sessions(userId);
    const value = String(Math.floor(Date.now() / 1000));
    await this.#store.set(key, value, SESSION_LIFETIME_SECONDS + 60);
    this.#cache.set(key, value);
    await this.#store.publish(CHANNEL, `${key} ${value}`);
  }

  /** When the user's sessions were last ended (epoch seconds), if within a session's lifetime. */
  async sessionsEndedAt(userId: string): Promise<number | undefined> {
    const [value] = await this.#read([keyOf.sessions(userId)]);
    return value ? Number(value) : undefined;
  }

  /** Ends every token minted for the client so far (deletion, secret rotation). */
  revokeClientTokens(clientId: string) { return this.#bump(keyOf.client(clientId)); }

  /** Generations to stamp on a token being minted. */
  async currentGenerations(facts: { userId?: string; clientId?: string }): Promise<{ userGeneration?: number; clientGeneration?: number }> {
    const [user, client] = await this.#read([
      facts.userId ? keyOf.user(facts.userId) : undefined,
      facts.clientId ? keyOf.client(facts.clientId) : undefined,
    ]);
    return {
      userGeneration: facts.userId ? Number(user || 0) : undefined,
      clientGeneration: facts.clientId ? Number(client || 0) : undefined,
    };
  }

  /** Why the token is no longer good, or undefined when it still is. */
  async check(token: TokenFacts): Promise<RevocationReason | undefined> {
    const [jti, grant, user, client] = await this.#read([
      token.jti ? keyOf.jti(token.jti) : undefined,
      token.grantId ? keyOf.grant(token.grantId) : undefined,
      token.userId ? keyOf.user(token.userId) : undefined,
      token.clientId ? keyOf.client(token.clientId) : undefined,
    ]);
    if (jti) return 'token';
    if (grant) return 'grant';
    // A missing generation in the token counts as 0; a lapsed key reads as 0 only once every
    // token minted before its last bump has expired.
    if (user && (token.userGeneration ?? 0) < Number(user)) return 'user';
    if (client && (token.clientGeneration ?? 0) < Number(client)) return 'client';
    return undefined;
  }

  async #read(keys: (string | undefined)[]): Promise<(string | undefined)[]> {
    const missing = keys.filter((key): key is string => key !== undefined && !this.#cache.has(key));
    if (missing.length > 0) {
      const values = await this.#store.getMany(missing);
      missing.forEach((key, index) => this.#cache.set(key, values[index] ?? ''));
    }
    return keys.map((key) => (key === undefined ? undefined : this.#cache.get(key) || undefined));
  }
}
