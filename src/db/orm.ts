// The ORM as Latchkey configures it: the entity list, migrations and the pool settings, on the
// server at DATABASE_URL or on an embedded PGlite. It sits in db/ because it maps the entities;
// the driver-level pieces it uses (the pooled client, outage detection) are in platform/database.ts.
import { mkdir, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Migrator } from '@mikro-orm/migrations';
import { MikroORM, type Options } from '@mikro-orm/postgresql';

import type { Config } from '../platform/config.ts';
import { DEFAULT_ACQUIRE_TIMEOUT_MS, PooledClient, type DatabaseMode } from '../platform/database.ts';
import type { Logger } from '../platform/logger.ts';
import { ENTITIES } from './entities/index.ts';

export const MIGRATIONS_PATH = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface Database {
  orm: MikroORM;
  mode: DatabaseMode;
  close(): Promise<void>;
}

/** A server URL, or the directory of a Unix socket (the embedded server's). */
export type ConnectionTarget = { url: string } | { socketDirectory: string };

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
    // Replicas serve only the reads that ask for them (platform/read-replicas.ts): with MikroORM's
    // default, every read outside a transaction would go to one, decisions about access included.
    const replicas = config.database.replicaUrls.map((url, index) => ({ name: `replica-${index + 1}`, clientUrl: url }));
    const orm = await MikroORM.init(ormOptions(config.database.url, { replicas, preferReadReplicas: false }, acquireTimeoutMs));
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

  // Loaded only here: a server on DATABASE_URL never holds PGlite's modules in memory.
  const [{ PGlite }, { PGLiteSocketServer }] = await Promise.all([import('@electric-sql/pglite'), import('@electric-sql/pglite-socket')]);
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
