import { MikroORM } from '@mikro-orm/postgresql';
import { expect } from 'chai';
import pg from 'pg';

import { ormOptions } from '../../src/db/orm.ts';
import { isDatabaseUnavailable, isUnstorableText, PooledClient, queryOne } from '../../src/platform/database.ts';
import { createTestDatabase, dropDatabase } from '../support/databases.ts';

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('the PostgreSQL pool', () => {
  let database: { name: string; url: string };
  let orm: MikroORM;
  const ACQUIRE_TIMEOUT_MS = 400;

  before(async () => {
    database = await createTestDatabase();
    // One slot: a single leaked connection would stop every later query.
    orm = await MikroORM.init(ormOptions(database.url, { pool: { min: 0, max: 1 } }, ACQUIRE_TIMEOUT_MS));
  });
  after(async () => {
    await orm?.close();
    await dropDatabase(database.name);
  });

  it('gets its slot back when the server ends a connection inside a transaction, and calls that an outage', async () => {
    // The backend ends itself, as a PostgreSQL restart ends every session; the ROLLBACK that follows fails.
    const error = await rejection(orm.em.fork().transactional((em) => queryOne(em, 'select pg_terminate_backend(pg_backend_pid())')));
    expect(isDatabaseUnavailable(error), error.message).to.equal(true);
    const row = await queryOne<{ answer: number }>(orm.em.fork(), 'select 42 as answer');
    expect(row?.answer).to.equal(42);
  });

  it('fails a query that waits longer than the acquire timeout for a slot, as an outage', async () => {
    let releaseHolder!: () => void;
    const held = new Promise<void>((resolve) => { releaseHolder = resolve; });
    const holder = orm.em.fork().transactional(async (em) => {
      await queryOne(em, 'select 1');
      await held;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    const error = await rejection(queryOne(orm.em.fork(), 'select 1'));
    expect(Date.now() - started).to.be.within(ACQUIRE_TIMEOUT_MS - 50, ACQUIRE_TIMEOUT_MS * 5);
    expect(isDatabaseUnavailable(error), error.message).to.equal(true);
    releaseHolder();
    await holder;
  });

  it('refuses text PostgreSQL cannot store before sending it, keeping the connection', async () => {
    for (const text of ['a\u0000b', 'a\ud800b']) {
      const error = await rejection(queryOne(orm.em.fork(), 'select ? as value', [text]));
      expect(isUnstorableText(error), error.message).to.equal(true);
      expect(isDatabaseUnavailable(error), error.message).to.equal(false);
    }
    expect(await queryOne(orm.em.fork(), 'select ? as value', ['a\u00e9\u{1F600}'])).to.deep.equal({ value: 'a\u00e9\u{1F600}' });
  });

  it('makes a second release of a client that gave itself back harmless', async () => {
    const pool = new pg.Pool({ connectionString: database.url, Client: PooledClient, max: 1 });
    try {
      const client = await pool.connect();
      await client.query('select pg_terminate_backend(pg_backend_pid())').catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(pool.totalCount).to.equal(0);
      client.release();
      const fresh = await pool.connect();
      expect((await fresh.query('select 1 as one')).rows[0]).to.deep.equal({ one: 1 });
      // The guard covers parameters sent apart from the text too.
      expect(isUnstorableText(await rejection(fresh.query('select $1::text as value', ['a\u0000'])))).to.equal(true);
      expect(isUnstorableText(await rejection(fresh.query({ text: 'select $1::text as value', values: ['\udc00'] })))).to.equal(true);
      fresh.release();
      expect(pool.idleCount).to.equal(1);
    } finally {
      await pool.end();
    }
  });
});

describe('isDatabaseUnavailable', () => {
  const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

  it('recognises lost and refused connections, with or without a SQLSTATE', () => {
    for (const error of [
      new Error('Client has encountered a connection error and is not queryable'),
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      withCode('terminating connection due to administrator command', '57P01'),
      withCode('the database system is starting up', '57P03'),
      withCode('connection failure', '08006'),
      withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'),
      new Error('wrapped', { cause: withCode('read ECONNRESET', 'ECONNRESET') }),
    ]) expect(isDatabaseUnavailable(error), error.message).to.equal(true);
  });

  it('leaves failed statements alone', () => {
    for (const error of [
      withCode('duplicate key value violates unique constraint', '23505'),
      withCode('syntax error at or near "selec"', '42601'),
      withCode('invalid byte sequence for encoding "UTF8": 0x00', '22021'),
      new Error('something else'),
      'not an error',
    ]) expect(isDatabaseUnavailable(error), String(error)).to.equal(false);
  });
});
