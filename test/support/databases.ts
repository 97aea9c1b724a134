// Each test file gets its own database, cloned from one migrated template made once per run
// (STYLE.md "Tests"), so files are independent and can run in any order.
import { MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';

import { migrate, ormOptions } from '../../src/db/orm.ts';

export const SERVER_URL = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const RUN = `${process.pid}_${Date.now().toString(36)}`;
const TEMPLATE = `latchkey_template_${RUN}`;
let counter = 0;

export function databaseUrl(name: string): string {
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return url.href;
}

async function onServer<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: SERVER_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function createTemplateDatabase(): Promise<void> {
  await onServer((client) => client.query(`create database "${TEMPLATE}"`));
  const orm = await MikroORM.init(ormOptions(databaseUrl(TEMPLATE), { pool: { min: 0, max: 1 } }));
  try {
    await migrate(orm);
  } finally {
    await orm.close();
  }
}

export async function createTestDatabase(): Promise<{ name: string; url: string }> {
  counter += 1;
  const name = `latchkey_test_${RUN}_${counter}`;
  await onServer((client) => client.query(`create database "${name}" template "${TEMPLATE}"`));
  return { name, url: databaseUrl(name) };
}

export async function dropDatabase(name: string): Promise<void> {
  await onServer((client) => client.query(`drop database if exists "${name}" with (force)`));
}

/** Drops the template and every database this run made. */
export async function dropRunDatabases(): Promise<void> {
  await onServer(async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      'select datname from pg_database where datname like $1 or datname = $2',
      [`latchkey_test_${RUN}_%`, TEMPLATE],
    );
    for (const { datname } of rows) await client.query(`drop database if exists "${datname}" with (force)`);
  });
}
