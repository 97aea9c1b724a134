// The cleanup job against real PostgreSQL: expired rows go, live ones stay (a consumed refresh token
// too, until its own expiry, so a replay still ends the grant), runs are bounded by batch and time,
// and two processes never delete at the same time.
import { expect } from 'chai';
import { MikroORM } from '@mikro-orm/postgresql';

import { ormOptions } from '../../src/db/orm.ts';
import { executeStatement, queryOne } from '../../src/platform/database.ts';
import { ExpiredRowsCleanup, type CleanupOutcome } from '../../src/services/cleanup.service.ts';
import { rotateSigningKeys } from '../../src/services/signing-keys.service.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { callApi } from '../support/oauth.ts';
import { loginAs, postJson, seedDemoUsers } from '../support/users.ts';

/** `count` expired artefacts of `model`, made the way the bench makes its million. */
async function insertExpired(server: TestServer, count: number, model = 'RefreshToken'): Promise<void> {
  await executeStatement(server.deps.orm.em,
    `insert into oidc_artifact (model, id, grant_id, account_id, client_id, payload, expires_at, created_at)
     select ?, 'expired-' || md5(random()::text) || n, 'grant-' || n, null, 'bench', '{}'::jsonb, now() - interval '1 day', now() - interval '15 days'
       from generate_series(1, ?) as n`, [model, count]);
}

async function count(server: TestServer, where: string, params: unknown[] = []): Promise<number> {
  return (await queryOne<{ n: number }>(server.deps.orm.em, `select count(*)::int as n from oidc_artifact where ${where}`, params))!.n;
}

describe('the cleanup job (expired rows in PostgreSQL)', function () {
  this.timeout(120_000);
  let server: TestServer;

  before(async () => {
    server = await startTestServer({ CLEANUP_INTERVAL_SECONDS: '0' });
    await seedDemoUsers(server);
  });
  after(async () => { await server?.close(); });

  it('deletes expired grants, tokens and retired keys; keeps live rows and a consumed refresh token whose replay must still end its grant', async () => {
    const first = await loginAs(server, 'agent1@demo.example');
    const rotated = await postJson(server, '/auth/refresh', { refresh_token: first.refresh_token });
    expect(rotated.status).to.equal(200);
    const pair = (await rotated.json()) as { access_token: string; refresh_token: string };
    const live = await loginAs(server, 'premium1@demo.example');
    await insertExpired(server, 2500);
    await insertExpired(server, 10, 'Grant');
    await insertExpired(server, 10, 'InitialAccessToken');
    // Registration access tokens have no expiry: they live as long as their client.
    await executeStatement(server.deps.orm.em, `insert into oidc_artifact (model, id, client_id, payload, created_at) values ('RegistrationAccessToken', 'rat-1', 'c', '{}', now())`);
    // Keys rotated out with nothing left to verify: retired at once.
    const liveKids = await rotateSigningKeys(server.deps.orm, 0);
    const deletedBefore = (await server.deps.metrics.cleanupDeletedRows.get()).values.find((value) => value.labels.table === 'oidc_artifact')?.value ?? 0;

    const result = await server.deps.cleanup.run();

    expect(result.outcome).to.equal('done');
    expect(result.deleted.oidc_artifact).to.equal(2520);
    expect(result.deleted.signing_key).to.equal(2);
    expect(await count(server, 'expires_at < now()')).to.equal(0);
    expect(await count(server, `model = 'RegistrationAccessToken' and id = 'rat-1'`)).to.equal(1);
    expect(await count(server, `model = 'RefreshToken' and consumed_at is not null`)).to.equal(1);
    const keys = await server.deps.orm.em.getConnection().execute<{ kid: string }[]>('select kid from signing_key order by kid');
    expect(keys.map((key) => key.kid)).to.have.members(liveKids);
    const deletedAfter = (await server.deps.metrics.cleanupDeletedRows.get()).values.find((value) => value.labels.table === 'oidc_artifact')?.value ?? 0;
    expect(deletedAfter - deletedBefore).to.equal(2520);

    // Live sessions go on, and the kept consumed token still gives its replay away.
    expect((await postJson(server, '/auth/refresh', { refresh_token: live.refresh_token })).status).to.equal(200);
    expect((await callApi(server, '/me', pair.access_token)).status).to.equal(200);
    expect((await postJson(server, '/auth/refresh', { refresh_token: first.refresh_token })).status).to.equal(401);
    expect((await callApi(server, '/me', pair.access_token)).status).to.equal(401);
  });

  it('stops at its time budget and leaves the rest to the next run', async () => {
    await insertExpired(server, 3000);
    const cleanup = new ExpiredRowsCleanup(server.deps.orm, { batchSize: 500, budgetMs: 1 });
    const first = await cleanup.run();
    expect(first.outcome).to.equal('budget');
    expect(first.deleted.oidc_artifact).to.be.within(500, 2500);
    let runs = 1;
    while ((await cleanup.run()).outcome !== 'done' && runs < 20) runs += 1;
    expect(await count(server, 'expires_at < now()')).to.equal(0);
  });

  it('lets one process delete at a time: batches of two processes never overlap, and together they delete everything once', async () => {
    await insertExpired(server, 40_000);
    const orms = await Promise.all([0, 1].map(() => MikroORM.init(ormOptions(server.databaseUrl, { pool: { min: 0, max: 2 } }))));
    try {
      const batches: { process: number; startedAt: number; endedAt: number; rows: number }[] = [];
      const outcomes: CleanupOutcome[] = [];
      const worker = async (index: number) => {
        const cleanup = new ExpiredRowsCleanup(orms[index]!, { batchSize: 1000, onBatch: (batch) => batches.push({ process: index, ...batch }) });
        for (let round = 0; round < 500; round += 1) {
          const { outcome } = await cleanup.run();
          outcomes.push(outcome);
          if (outcome === 'done') return;
        }
      };
      await Promise.all([worker(0), worker(1)]);

      expect(batches.reduce((sum, batch) => sum + batch.rows, 0)).to.equal(40_000);
      expect(await count(server, 'expires_at < now()')).to.equal(0);
      const ordered = [...batches].sort((a, b) => a.startedAt - b.startedAt);
      for (let index = 1; index < ordered.length; index += 1) {
        expect(ordered[index]!.startedAt, `batch ${index} starts before batch ${index - 1} ends`).to.be.at.least(ordered[index - 1]!.endedAt);
      }
      expect(outcomes, 'the processes met at the lock').to.include('busy');
    } finally {
      await Promise.all(orms.map((orm) => orm.close()));
    }
  });

  it('runs by itself on its interval, and not after stop()', async () => {
    await insertExpired(server, 300);
    const cleanup = new ExpiredRowsCleanup(server.deps.orm, { batchSize: 100 });
    cleanup.start(1);
    try {
      const deadline = Date.now() + 10_000;
      while (await count(server, 'expires_at < now()') > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await count(server, 'expires_at < now()')).to.equal(0);
    } finally {
      await cleanup.stop();
    }
    await insertExpired(server, 10);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await count(server, 'expires_at < now()')).to.equal(10);
    await executeStatement(server.deps.orm.em, 'delete from oidc_artifact where expires_at < now()');
  });

  it('on shutdown lets the batch in progress commit and starts no other', async () => {
    await insertExpired(server, 5000);
    const cleanup = new ExpiredRowsCleanup(server.deps.orm, { batchSize: 1000 });
    const running = cleanup.run();
    await cleanup.stop();
    const result = await running;
    expect(result.outcome).to.equal('stopped');
    expect(await count(server, 'expires_at < now()')).to.equal(5000 - result.deleted.oidc_artifact!);
    await executeStatement(server.deps.orm.em, 'delete from oidc_artifact where expires_at < now()');
  });
  it('deletes sent outbox rows a week after sending and failed ones after 30 days, in batches; keeps pending, sending and recent rows', async () => {
    // Not due for a day: the server's own delivery worker leaves the pending and sending rows be.
    const insert = (rows: number, status: string, createdAgo: string, sentAgo: string | null) => executeStatement(server.deps.orm.em,
      `insert into outbox_message (id, kind, payload, status, attempts, next_attempt_at, created_at, sent_at)
       select gen_random_uuid(), 'mail', '{"to":"x@example.test","subject":"s","text":"t"}'::jsonb, ?, 1, now() + interval '1 day', now() - ?::interval,
              case when ?::text is null then null else now() - ?::interval end
         from generate_series(1, ?)`, [status, createdAgo, sentAgo, sentAgo, rows]);
    const outbox = async (where: string) => (await queryOne<{ n: number }>(server.deps.orm.em, `select count(*)::int as n from outbox_message where ${where}`))!.n;
    await executeStatement(server.deps.orm.em, 'delete from outbox_message');
    await insert(2500, 'sent', '8 days', '8 days');
    await insert(5, 'sent', '6 days', '6 days');
    // Written long ago, failed, retried by an admin yesterday and sent: a week from its sending.
    await insert(1, 'sent', '40 days', '1 day');
    await insert(3, 'failed', '31 days', null);
    await insert(2, 'failed', '29 days', null);
    await insert(2, 'pending', '60 days', null);
    await insert(1, 'sending', '60 days', null);

    const result = await new ExpiredRowsCleanup(server.deps.orm, { batchSize: 1000, outboxRetention: server.deps.config.outboxRetention }).run();
    expect(server.deps.config.outboxRetention).to.deep.equal({ sentDays: 7, failedDays: 30 });
    expect(result.outcome).to.equal('done');
    expect(result.deleted.outbox_message).to.equal(2503);
    expect(await outbox(`status = 'sent'`)).to.equal(6);
    expect(await outbox(`status = 'failed'`)).to.equal(2);
    expect(await outbox(`status in ('pending', 'sending')`)).to.equal(3);

    const shorter = await new ExpiredRowsCleanup(server.deps.orm, { outboxRetention: { sentDays: 2, failedDays: 10 } }).run();
    expect(shorter.deleted.outbox_message).to.equal(7);
    expect(await outbox(`status = 'sent'`)).to.equal(1);
    expect(await outbox(`status = 'failed'`)).to.equal(0);
    expect(await outbox(`status in ('pending', 'sending')`)).to.equal(3);
    expect(() => new ExpiredRowsCleanup(server.deps.orm, { outboxRetention: { sentDays: 0, failedDays: 30 } })).to.throw(RangeError);
    await executeStatement(server.deps.orm.em, 'delete from outbox_message');
  });
});
