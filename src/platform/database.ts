import type { MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';

/** Where the database runs: a PostgreSQL server, or PGlite inside this process. */
export type DatabaseMode = 'postgres' | 'embedded';

/** How long a query waits for a pooled connection (or for a new one to open) before failing as an outage. */
export const DEFAULT_ACQUIRE_TIMEOUT_MS = 5000;

/**
 * A pooled `pg` client that gives its pool slot back the moment its connection is lost.
 *
 * kysely releases a transaction's connection only after a COMMIT or ROLLBACK that succeeds, and
 * MikroORM's `transactional` swallows a failed ROLLBACK, so a connection that dies inside a
 * transaction (a PostgreSQL restart) was never returned: each one leaked a slot of the pool for
 * good, until every request queued behind a full pool. pg-pool hands each checkout its own
 * `client.release`; holding it here lets the client return itself, with the error (so the pool
 * discards it), whatever its holder does next, and makes the holder's own later release a no-op.
 */
export class PooledClient extends pg.Client {
  #releaseToPool: ((error?: Error | boolean) => void) | undefined;

  /**
   * Refuses text PostgreSQL cannot store faithfully before anything is sent: it rejects U+0000 in
   * text, and pg would encode an unpaired surrogate as U+FFFD without a word. MikroORM inlines
   * parameters into the SQL text, where a NUL would even cut the protocol message short and cost
   * the connection (08P01). The widened signature only inspects the call and hands it on as is.
   */
  override query(...args: unknown[]): never {
    // pg takes (text, values?, callback?), or a query config or a submittable (a cursor) carrying both.
    const [statement, second] = args;
    const query = (typeof statement === 'string' ? { text: statement } : statement ?? {}) as { text?: unknown; values?: unknown; submit?: unknown; handleError?: (error: Error) => void };
    if (isStorableText(query.text) && isStorableText(Array.isArray(second) ? second : query.values)) return Reflect.apply(super.query, this, args) as never;
    // Reported the way pg reports any failed query: to the submittable, the callback or the promise.
    const error = new UnstorableTextError();
    if (typeof query.submit === 'function') {
      process.nextTick(() => query.handleError?.(error));
      return statement as never;
    }
    const callback = args.findLast((arg) => typeof arg === 'function') as ((error: Error) => void) | undefined;
    if (callback) {
      process.nextTick(callback, error);
      return undefined as never;
    }
    return Promise.reject(error) as never;
  }

  constructor(config?: string | pg.ClientConfig) {
    super(config);
    // 'error' is pg's signal that the socket is dead; 'end' covers a close without one.
    this.on('error', (error: Error) => this.#giveBack(error));
    this.on('end', () => this.#giveBack(new Error('Connection terminated')));
  }

  get release(): (error?: Error | boolean) => void {
    return (error) => this.#giveBack(error);
  }

  set release(releaseToPool: (error?: Error | boolean) => void) {
    this.#releaseToPool = releaseToPool;
  }

  #giveBack(error?: Error | boolean): void {
    const releaseToPool = this.#releaseToPool;
    this.#releaseToPool = undefined;
    releaseToPool?.(error);
  }
}

/** A string PostgreSQL cannot store as given: a NUL character or an unpaired UTF-16 surrogate. */
export function isStorableText(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return !value.includes('\u0000') && value.isWellFormed();
  if (depth > 32 || value === null || typeof value !== 'object' || value instanceof Date || Buffer.isBuffer(value)) return true;
  const entries = Array.isArray(value) ? value : Object.entries(value).flat();
  return entries.every((entry) => isStorableText(entry, depth + 1));
}

/** SQLSTATE 22021 (character_not_in_repertoire), what PostgreSQL itself answers for a NUL in text. */
export class UnstorableTextError extends Error {
  readonly code = '22021';
  constructor() {
    super('text must not contain NUL (U+0000) characters or unpaired surrogates');
    this.name = 'UnstorableTextError';
  }
}

/** A unique index caught what a lookup could not (a concurrent writer): MikroORM's wrapper or the raw driver error (23505 unique_violation). */
export function isUniqueViolation(error: unknown): boolean {
  return (error as Error | undefined)?.name === 'UniqueConstraintViolationException' || (error as { code?: string } | undefined)?.code === '23505';
}

/** Whether PostgreSQL (or the guard above) refused text a client sent: the client's fault, not an outage. */
export function isUnstorableText(error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth += 1) {
    // 22P05 untranslatable_character: PostgreSQL's answer to \u0000 inside jsonb.
    const code = (current as { code?: unknown }).code;
    if (code === '22021' || code === '22P05') return true;
  }
  return false;
}

// SQLSTATE classes and codes that mean "the database is not reachable right now", not "this query
// is wrong" (PostgreSQL, Appendix A): class 08 connection exceptions; 57P01-57P03 shutdown and
// start-up; 53300 too many connections.
const UNAVAILABLE_SQLSTATES = /^(08...|57P0[123]|53300)$/;
const NETWORK_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
// pg and pg-pool report a lost or unobtainable connection with these messages and no code at all
// (pg/lib/client.js, pg-pool/index.js); kysely's after the pool is closed at shutdown.
const CONNECTION_MESSAGES = /^(Connection terminated( unexpectedly| due to connection timeout)?|Client has encountered a connection error and is not queryable|Client was closed and is not queryable|timeout exceeded when trying to connect|timeout expired|Cannot use a pool after calling end on the pool|driver has already been destroyed)\b/;

/** Whether an error (or one it wraps) says PostgreSQL is unreachable, as opposed to a failed statement. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (UNAVAILABLE_SQLSTATES.test(code) || NETWORK_ERRNOS.has(code))) return true;
    if (current.name === 'ConnectionException' || CONNECTION_MESSAGES.test(current.message)) return true;
  }
  return false;
}


/** What raw statements need of a connection: MikroORM's own, or a replica's that falls back (read-replicas.ts). */
export type SqlConnection = Pick<ReturnType<MikroORM['em']['getConnection']>, 'execute' | 'stream'>;

/** An entity manager (inside its transaction when it has one), or a read target from ReadReplicas. */
export interface SqlExecutor {
  getConnection(): SqlConnection;
  getTransactionContext(): ReturnType<MikroORM['em']['getTransactionContext']>;
}

type Executor = SqlExecutor;
type OrmConnection = ReturnType<MikroORM['em']['getConnection']>;

const pools = new WeakMap<OrmConnection, pg.Pool>();

/**
 * One statement outside a transaction, on one of MikroORM's own connections, goes straight to the
 * pool MikroORM made (same connections, type parsers and parameter formatting): its query logger
 * and kysely's executor around a single statement cost a resource read more than the statement's
 * own driver work (bench/README.md). A replica's fallback wrapper keeps its own `execute`.
 */
async function runAlone(connection: SqlConnection, sql: string, params: unknown[]): Promise<pg.QueryResult | undefined> {
  if (!('getNativeClient' in connection)) return undefined;
  const orm = connection as OrmConnection;
  let pool = pools.get(orm);
  if (!pool) {
    pool = await orm.getNativeClient() as pg.Pool;
    pools.set(orm, pool);
  }
  return pool.query(orm.getPlatform().formatQuery(sql, params));
}

/** Raw SQL for hot paths and set-based statements; runs inside `em`'s transaction when it has one. */
export async function queryRows<T>(em: Executor, sql: string, params: unknown[] = []): Promise<T[]> {
  const transaction = em.getTransactionContext();
  const connection = em.getConnection();
  const alone = transaction ? undefined : await runAlone(connection, sql, params);
  if (alone) return alone.rows as T[];
  return (await connection.execute(sql, params, 'all', transaction)) as unknown as T[];
}

export async function queryOne<T>(em: Executor, sql: string, params: unknown[] = []): Promise<T | undefined> {
  return (await queryRows<T>(em, sql, params))[0];
}

/** Runs a statement and answers how many rows it touched. */
export async function executeStatement(em: Executor, sql: string, params: unknown[] = []): Promise<number> {
  const transaction = em.getTransactionContext();
  const connection = em.getConnection();
  const alone = transaction ? undefined : await runAlone(connection, sql, params);
  if (alone) return alone.rowCount ?? 0;
  const result = (await connection.execute(sql, params, 'run', transaction)) as unknown as { affectedRows: number };
  return result.affectedRows;
}

/** An ILIKE pattern matching `search` literally anywhere (%, _ and \ escaped; \ is PostgreSQL's default LIKE escape). */
export function containsPattern(search: string): string {
  return `%${search.replace(/[%_\\]/g, '\\$&')}%`;
}
