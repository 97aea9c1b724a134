// PostgreSQL read replicas (DATABASE_REPLICA_URLS): streaming replicas serve list and report reads,
// never a decision about access. Reads go to a replica only when a service asks for one through
// `ReadReplicas.for(actor)`; everything else (token, client, grant and revocation lookups, reads
// inside a transaction, sign-in) stays on the primary, because MikroORM is configured with
// `preferReadReplicas: false` (db/orm.ts).
//
// A replica replays the primary's WAL a little late. Two rules keep that lag out of sight:
//   - read-your-writes: after a caller's own write (any successful mutating API request), that
//     caller's reads stay on the primary for `stickySeconds`, in every process (the mark is in the
//     key-value store);
//   - a replica that cannot be reached is skipped: the read is made on the primary instead, so a
//     replica outage costs capacity, not availability.
import type { MikroORM } from '@mikro-orm/postgresql';

import type { Actor } from './actor.ts';
import { isDatabaseUnavailable, type SqlConnection, type SqlExecutor } from './database.ts';
import type { KeyValueStore } from './store.ts';

/** Where a read was served: a replica, the primary on purpose, or the primary because the replica failed. */
export type ReadTarget = 'replica' | 'primary' | 'fallback';

export interface ReadReplicaOptions {
  /** How many replicas the ORM was given; 0 sends every read to the primary. */
  replicas: number;
  /** Seconds a caller's reads stay on the primary after its own write; 0 turns read-your-writes off. */
  stickySeconds: number;
  onRead?: (target: ReadTarget) => void;
  onFallback?: (error: unknown) => void;
}

type Caller = Pick<Actor, 'userId' | 'clientId'>;

export class ReadReplicas {
  readonly #orm: MikroORM;
  readonly #store: KeyValueStore;
  readonly #options: ReadReplicaOptions;
  readonly #primary: SqlExecutor;
  readonly #replica: SqlExecutor;

  constructor(orm: MikroORM, store: KeyValueStore, options: ReadReplicaOptions) {
    this.#orm = orm;
    this.#store = store;
    this.#options = options;
    const counted = (target: ReadTarget, connection: () => SqlConnection): SqlExecutor => ({
      getTransactionContext: () => undefined,
      getConnection: () => {
        options.onRead?.(target);
        return connection();
      },
    });
    this.#primary = counted('primary', () => orm.em.getConnection('write'));
    this.#replica = counted('replica', () => this.#replicaConnection());
  }

  get enabled(): boolean {
    return this.#options.replicas > 0;
  }

  /**
   * Where this caller's list and report reads go now: a replica, or the primary when there is
   * none or the caller wrote within the last `stickySeconds`. Only for reads that decide nothing
   * about access: the rows a caller may see are still chosen from its verified token.
   */
  async for(caller: Caller): Promise<SqlExecutor> {
    if (!this.enabled) return this.#primary;
    if (this.#options.stickySeconds > 0) {
      try {
        if (await this.#store.get(stickyKey(caller)) !== null) return this.#primary;
      } catch {
        // Without the mark, the primary is the read that cannot be stale.
        return this.#primary;
      }
    }
    return this.#replica;
  }

  /** Called after a caller's successful write: its next reads see it (read-your-writes). */
  async noteWrite(caller: Caller): Promise<void> {
    if (!this.enabled || this.#options.stickySeconds === 0) return;
    await this.#store.set(stickyKey(caller), '1', this.#options.stickySeconds);
  }

  /** A replica's connection whose failures to connect fall back to the primary (statement errors do not). */
  #replicaConnection(): SqlConnection {
    const replica = this.#orm.em.getConnection('read');
    const primary = this.#orm.em.getConnection('write');
    const fallback = (error: unknown) => {
      this.#options.onFallback?.(error);
      this.#options.onRead?.('fallback');
    };
    return {
      async execute(...args: Parameters<SqlConnection['execute']>) {
        try {
          return await replica.execute(...args);
        } catch (error) {
          if (!isDatabaseUnavailable(error)) throw error;
          fallback(error);
          return primary.execute(...args);
        }
      },
      // The first batch decides: a replica that cannot be reached before any row was sent is
      // replaced by the primary; a failure later ends the stream as it would on the primary.
      stream: async function* stream(...args: Parameters<SqlConnection['stream']>) {
        const rows = replica.stream(...args);
        try {
          let first: IteratorResult<unknown>;
          try {
            first = await rows.next();
          } catch (error) {
            if (!isDatabaseUnavailable(error)) throw error;
            fallback(error);
            yield* primary.stream(...args);
            return;
          }
          if (first.done) return;
          yield first.value;
          yield* rows;
        } finally {
          await rows.return?.(undefined);
        }
      } as SqlConnection['stream'],
    };
  }
}

function stickyKey(caller: Caller): string {
  return `replica:wrote:${caller.userId ? `user:${caller.userId}` : `client:${caller.clientId}`}`;
}
