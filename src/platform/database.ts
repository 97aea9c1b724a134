import { mkdir, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { Migrator } from '@mikro-orm/migrations';
import { MikroORM, type Options } from '@mikro-orm/postgresql';
import pg from 'pg';

import { ENTITIES } from '../db/entities/index.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

export const MIGRATIONS_PATH = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface Database {
  orm: MikroORM;
  mode: 'postgres' | 'embedded';
  close(): Promise<void>;
}

/** A server URL, or the directory of a Unix socket (the embedded server's). */
export type ConnectionTarget = { url: string } | { socketDirectory: string };

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

export function ormOptions(target: ConnectionTarget | string, overrides: Partial<Options> = {}, acquireTimeoutMs = DEFAULT_ACQUIRE_TIMEOUT_MS): Options {
  const connection = typeof target === 'string' || 'url' in target
    ? { clientUrl: typeof target === 'string' ? target : target.url }
    : { host: target.socketDirectory, port: EMBEDDED_SOCKET_PORT, user: 'postgres', dbName: 'postgres' };
  return {
    ...connection,
    entities: ENTITIES,
    extensions: [Migrator],
    migrations: { path: MIGRATIONS_PATH, pathTs: MIGRATIONS_PATH, glob: '!(*.d).{js,ts}', silent: true, transactional: true, allOrNothing: true, snapshot: false },
    pool: { min: 0, max: 10 },
    // Passed to pg-pool. The acquire timeout bounds both the wait for a free slot and the opening
    // of a new connection, so no request queues without end while PostgreSQL is away.
    driverOptions: { Client: PooledClient, connectionTimeoutMillis: acquireTimeoutMs },
    // Identity-map forks are made per request; a global EM use would be a bug.
    allowGlobalContext: false,
    debug: false,
    ...overrides,
  };
}

// The embedded server listens on DATA_DIR/.s.PGSQL.5432, where PostgreSQL clients look for a
// socket in a directory: the CLI commands reach a running server's database through it.
const EMBEDDED_SOCKET_PORT = 5432;
const EMBEDDED_POOL = { min: 0, max: 4 };

function isListening(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

export class EmbeddedDatabaseBusyError extends Error {}

/**
 * Opens PostgreSQL: the server at DATABASE_URL, or an embedded PGlite (data under DATA_DIR) served
 * in-process over the PostgreSQL wire protocol, so one driver and one set of migrations serve both.
 * PGlite allows one process per data directory: with `joinRunningServer` (CLI commands, cluster
 * workers) a process connects to the one already serving it instead.
 */
export async function openDatabase(config: Pick<Config, 'database'>, logger: Logger, options: { joinRunningServer?: boolean } = {}): Promise<Database> {
  const { acquireTimeoutMs } = config.database;
  if (config.database.url) {
    const orm = await MikroORM.init(ormOptions(config.database.url, {}, acquireTimeoutMs));
    return { orm, mode: 'postgres', close: () => orm.close() };
  }

  const dataDir = path.resolve(config.database.dataDir);
  const socketPath = path.join(dataDir, `.s.PGSQL.${EMBEDDED_SOCKET_PORT}`);
  await mkdir(path.join(dataDir, 'pgdata'), { recursive: true });
  if (await isListening(socketPath)) {
    if (!options.joinRunningServer) {
      throw new EmbeddedDatabaseBusyError(`another Latchkey process is serving the embedded database in ${dataDir}; stop it first, or set DATABASE_URL`);
    }
    const orm = await MikroORM.init(ormOptions({ socketDirectory: dataDir }, { pool: EMBEDDED_POOL }, acquireTimeoutMs));
    return { orm, mode: 'embedded', close: () => orm.close() };
  }
  await rm(socketPath, { force: true });

  const pglite = await PGlite.create(path.join(dataDir, 'pgdata'));
  const server = new PGLiteSocketServer({ db: pglite, path: socketPath, maxConnections: 16 });
  await server.start();
  logger.debug({ socketPath }, 'embedded PostgreSQL (PGlite) listening on a Unix socket');
  const orm = await MikroORM.init(ormOptions({ socketDirectory: dataDir }, { pool: EMBEDDED_POOL }, acquireTimeoutMs));
  return {
    orm,
    mode: 'embedded',
    async close() {
      await orm.close();
      await server.stop();
      await pglite.close();
    },
  };
}

export async function migrate(orm: MikroORM): Promise<string[]> {
  const applied = await orm.migrator.up();
  return applied.map((migration) => migration.name);
}

type Executor = Pick<MikroORM['em'], 'getConnection' | 'getTransactionContext'>;

/** Raw SQL for hot paths and set-based statements; runs inside `em`'s transaction when it has one. */
export async function queryRows<T>(em: Executor, sql: string, params: unknown[] = []): Promise<T[]> {
  return (await em.getConnection().execute(sql, params, 'all', em.getTransactionContext())) as unknown as T[];
}

export async function queryOne<T>(em: Executor, sql: string, params: unknown[] = []): Promise<T | undefined> {
  return (await queryRows<T>(em, sql, params))[0];
}

/** Runs a statement and answers how many rows it touched. */
export async function executeStatement(em: Executor, sql: string, params: unknown[] = []): Promise<number> {
  const result = (await em.getConnection().execute(sql, params, 'run', em.getTransactionContext())) as unknown as { affectedRows: number };
  return result.affectedRows;
}

/** An ILIKE pattern matching `search` literally anywhere (%, _ and \ escaped; \ is PostgreSQL's default LIKE escape). */
export function containsPattern(search: string): string {
  return `%${search.replace(/[%_\\]/g, '\\$&')}%`;
}
