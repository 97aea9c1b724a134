// A PostgreSQL restart under load, as an operator does it (`pg_ctl restart -m fast`): Latchkey must
// ride it out without a restart of its own, answer 503 + Retry-After (never 500) while the
// database is away, lose no write it acknowledged, and give every pooled connection back.
import { once } from 'node:events';

import { expect } from 'chai';
import pg from 'pg';

import { REDIS_URL } from '../support/databases.ts';
import { deleteRedisKeys, uniqueRedisPrefix } from '../support/harness.ts';
import { basicAuth, postForm } from '../support/oauth.ts';
import { startPostgresCluster, type PostgresCluster } from '../support/postgres-cluster.ts';
import { freePort, startServerProcess, type ServerProcess } from '../support/processes.ts';

const WRITERS = 12;

interface Outcome { status: number; retryAfter: string | null; id?: string; email: string; at: number }

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(url)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

describe('a PostgreSQL restart under load', function () {
  this.timeout(180_000);

  let cluster: PostgresCluster | undefined;
  let server: ServerProcess | undefined;
  let metrics: string;
  let credentials: { clientId: string; secret: string };
  let token: string;
  const prefix = uniqueRedisPrefix();

  before(async () => {
    cluster = await startPostgresCluster();
    const metricsPort = await freePort();
    metrics = `http://127.0.0.1:${metricsPort}/metrics`;
    server = await startServerProcess({
      DATABASE_URL: cluster.url, REDIS_URL, REDIS_KEY_PREFIX: prefix, PORT: String(await freePort()), METRICS_PORT: String(metricsPort),
      // The mail outbox polls often, so its rounds fail while PostgreSQL is away (see the recovery test).
      MAIL_POLL_INTERVAL_MS: '100',
    }, 60_000);
    credentials = { clientId: /client_id:\s+(\S+)/.exec(server.output())![1]!, secret: /client_secret:\s+(\S+)/.exec(server.output())![1]! };
    const tokenResponse = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials', scope: 'crm:write' },
      { authorization: basicAuth(credentials.clientId, credentials.secret) });
    expect(tokenResponse.status, await tokenResponse.clone().text()).to.equal(200);
    ({ access_token: token } = (await tokenResponse.json()) as { access_token: string });
  });
  after(async () => {
    await server?.stop('SIGKILL');
    await cluster?.destroy();
    await deleteRedisKeys(prefix);
  });

  it('answers 503 while it is down, 201 again within seconds after each of two restarts, loses no acknowledged write and leaks no connection', async () => {
    const outcomes: Outcome[] = [];
    let running = true;
    let counter = 0;
    const writer = async () => {
      while (running) {
        counter += 1;
        const email = `load-${counter}@example.com`;
        try {
          const response = await fetch(`${server!.url}/api/v1/customers`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ first_name: 'Load', last_name: String(counter), email }),
            signal: AbortSignal.timeout(20_000),
          });
          const body = (await response.json()) as { id?: string };
          outcomes.push({ status: response.status, retryAfter: response.headers.get('retry-after'), id: body.id, email, at: Date.now() });
        } catch {
          // No answer at all (a hang cut by the timeout, a dropped connection): status 0 fails the test.
          outcomes.push({ status: 0, retryAfter: null, email, at: Date.now() });
        }
        // A client that honours Retry-After would wait; this one presses on, a little slower.
        if (outcomes.at(-1)!.status !== 201) await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    const writers = Array.from({ length: WRITERS }, writer);

    const createdSince = async (since: number, withinMs: number): Promise<number> => {
      const deadline = Date.now() + withinMs;
      while (Date.now() < deadline) {
        const first = outcomes.find((outcome) => outcome.at > since && outcome.status === 201);
        if (first) return first.at - since;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`no 201 within ${withinMs} ms of the restart`);
    };

    try {
      await createdSince(Date.now(), 10_000);
      const recoveries: number[] = [];
      for (let restart = 0; restart < 2; restart += 1) {
        await new Promise((resolve) => setTimeout(resolve, 1500));
        await cluster!.restart();
        const restarted = Date.now();
        recoveries.push(await createdSince(restarted, 10_000));
      }
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(recoveries.every((ms) => ms < 5000), `first 201 after each restart: ${recoveries.join(', ')} ms`).to.equal(true);
    } finally {
      running = false;
      await Promise.allSettled(writers);
    }

    const statuses = new Set(outcomes.map((outcome) => outcome.status));
    expect([...statuses].filter((status) => status !== 201 && status !== 503), JSON.stringify([...statuses])).to.deep.equal([]);
    const unavailable = outcomes.filter((outcome) => outcome.status === 503);
    expect(unavailable.length, 'the restarts were felt').to.be.greaterThan(0);
    expect(unavailable.every((outcome) => outcome.retryAfter === '5')).to.equal(true);
    expect(server!.child.exitCode).to.equal(null);

    // Every acknowledged write is there.
    const acknowledged = outcomes.filter((outcome) => outcome.status === 201);
    expect(acknowledged.length).to.be.greaterThan(50);
    const client = new pg.Client({ connectionString: cluster!.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ id: string }>('select id from customer where id = any($1::uuid[])', [acknowledged.map((outcome) => outcome.id)]);
      expect(rows.length).to.equal(acknowledged.length);
    } finally {
      await client.end();
    }

    // Every pooled connection came back: none is held by a request that is long gone.
    expect(await metric(metrics, 'latchkey_db_pool_waiting_requests')).to.equal(0);
    expect(await metric(metrics, 'latchkey_db_pool_connections')).to.equal(await metric(metrics, 'latchkey_db_pool_idle_connections'));
    expect((await fetch(`${server!.url}/ready`)).status).to.equal(200);
  });

  it('answers 503 + Retry-After on the API, the token endpoint and /ready while PostgreSQL is stopped, and recovers when it is back', async () => {
    await cluster!.stop();
    try {
      const created = await fetch(`${server!.url}/api/v1/customers`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ first_name: 'Down', last_name: 'Time', email: 'down@example.com' }),
      });
      expect(created.status).to.equal(503);
      expect(created.headers.get('retry-after')).to.equal('5');
      expect(await created.json()).to.include({ code: 'server.unavailable' });

      // A client the registry has not cached yet: the provider has to read PostgreSQL.
      const issued = await postForm(`${server!.url}/oauth/token`, { grant_type: 'client_credentials' },
        { authorization: basicAuth('lk_unknown_to_the_cache', 'secret') });
      expect(issued.status).to.equal(503);
      expect(issued.headers.get('retry-after')).to.equal('5');
      expect(await issued.json()).to.include({ error: 'temporarily_unavailable' });

      const ready = await fetch(`${server!.url}/ready`);
      expect(ready.status).to.equal(503);
      expect(await ready.json()).to.include({ database: 'down', store: 'up' });
    } finally {
      await cluster!.start();
    }
    const deadline = Date.now() + 10_000;
    let ready = await fetch(`${server!.url}/ready`);
    while (ready.status !== 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      ready = await fetch(`${server!.url}/ready`);
    }
    expect(ready.status).to.equal(200);

    // The mail worker's rounds failed while PostgreSQL was stopped; it still polls, and a mail
    // queued now goes out (to the log, as there is no SMTP_URL).
    const asked = await fetch(`${server!.url}/api/v1/auth/forgot-password`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'admin@latchkey.local' }),
    });
    expect(asked.status).to.equal(202);
    const mailed = Date.now() + 10_000;
    while (!/reset-password\?token=/.test(server!.output()) && Date.now() < mailed) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server!.output(), 'the worker felt the outage').to.include('outbox delivery round failed');
    expect(server!.output()).to.match(/reset-password\?token=/);
  });

  it('still stops promptly, with exit code 0, on SIGTERM', async () => {
    const exit = once(server!.child, 'exit');
    const signalled = Date.now();
    server!.child.kill('SIGTERM');
    const [code] = (await exit) as [number | null];
    expect(code).to.equal(0);
    expect(Date.now() - signalled).to.be.below(5000);
  });
});
