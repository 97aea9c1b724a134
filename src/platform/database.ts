import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { Migrator } from '@mikro-orm/migrations';
import { MikroORM, type Options } from '@mikro-orm/postgresql';

import { ENTITIES } from '../db/entities/index.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

export const MIGRATIONS_PATH = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface Database {
  orm: MikroORM;
  mode: 'postgres' | 'embedded';
  close(): Promise<void>;
}

export function ormOptions(clientUrl: string, overrides: Partial<Options> = {}): Options {
  return {
    clientUrl,
    entities: ENTITIES,
    extensions: [Migrator],
    migrations: { path: MIGRATIONS_PATH, pathTs: MIGRATIONS_PATH, glob: '!(*.d).{js,ts}', silent: true, transactional: true, allOrNothing: true, snapshot: false },
    pool: { min: 0, max: 10 },
    // Identity-map forks are made per request; a global EM use would be a bug.
    allowGlobalContext: false,
    debug: false,
    ...overrides,
  };
}

/**
 * Opens PostgreSQL: the server at DATABASE_URL, or an embedded PGlite (data under DATA_DIR) served
 * in-process over the PostgreSQL wire protocol, so one driver and one set of migrations serve both.
 */
export async function openDatabase(config: Pick<Config, 'database'>, logger: Logger): Promise<Database> {
  if (config.database.url) {
    const orm = await MikroORM.init(ormOptions(config.database.url));
    return { orm, mode: 'postgres', close: () => orm.close() };
  }

  const dataDir = path.resolve(config.database.dataDir, 'pgdata');
  await mkdir(dataDir, { recursive: true });
  const pglite = await PGlite.create(dataDir);
  const server = new PGLiteSocketServer({ db: pglite, host: '127.0.0.1', port: 0, maxConnections: 4 });
  await server.start();
  const address = server.getServerConn();
  logger.debug({ address, dataDir }, 'embedded PostgreSQL (PGlite) listening on loopback');
  const orm = await MikroORM.init(ormOptions(`postgresql://postgres@${address}/postgres`, { pool: { min: 0, max: 4 } }));
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
