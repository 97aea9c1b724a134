// Read replicas against a real streaming replica (pg_basebackup -R) of a PostgreSQL cluster the
// test starts. Replay is paused on the replica (pg_wal_replay_pause()) so that a write is visibly
// missing there: list reads of other callers do not see it, while every decision about access
// (sign-in, client and token lookups, revocation) and the writer's own next reads do.
import { expect } from 'chai';
import pg from 'pg';

import { jsonRequest, ROOT_PASSWORD } from '../support/admin.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { basicAuth, postForm } from '../support/oauth.ts';
import { startPostgresCluster, startStreamingReplica, type PostgresCluster } from '../support/postgres-cluster.ts';
import { login, loginAs, seedDemoUsers } from '../support/users.ts';

const STICKY_SECONDS = 2;

async function onCluster<T>(cluster: PostgresCluster, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: cluster.url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function until(what: string, check: () => Promise<boolean>, withinMs = 20_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`not within ${withinMs} ms: ${what}`);
}

describe('PostgreSQL read replicas (DATABASE_REPLICA_URLS)', function () {
  this.timeout(120_000);

  let primary: PostgresCluster | undefined;
  let replica: PostgresCluster | undefined;
  let server: TestServer;
  let admin: string;
  let backoffice: string;
  let root: string;

  const readsOn = async (target: string) => (await server.deps.metrics.replicaReads.get()).values.find((value) => value.labels.target === target)?.value ?? 0;
  const customerEmails = async (token: string) => {
    const response = await jsonRequest(server, 'GET', '/customers?page_size=100', token);
    expect(response.status).to.equal(200);
    return ((await response.json()) as { results: { email: string }[] }).results.map((customer) => customer.email);
  };
  const userEmails = async (token: string, query = '') => {
    const response = await jsonRequest(server, 'GET', `/users?page_size=100${query}`, token);
    expect(response.status).to.equal(200);
    return ((await response.json()) as { results: { email: string }[] }).results.map((user) => user.email);
  };
  const replayed = () => onCluster(replica!, async (client) => {
    const lsn = await onCluster(primary!, (p) => p.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn'));
    const { rows } = await client.query<{ caught: boolean }>('select pg_last_wal_replay_lsn() >= $1::pg_lsn as caught', [lsn.rows[0]!.lsn]);
    return rows[0]!.caught;
  });
  const pauseReplay = () => onCluster(replica!, (client) => client.query('select pg_wal_replay_pause()'));
  const resumeReplay = () => onCluster(replica!, (client) => client.query('select pg_wal_replay_resume()'));

  before(async () => {
    try {
      primary = await startPostgresCluster();
      replica = await startStreamingReplica(primary);
      server = await startTestServer({
        ADMIN_PASSWORD: ROOT_PASSWORD, DATABASE_REPLICA_URLS: replica.url, DATABASE_REPLICA_STICKY_SECONDS: String(STICKY_SECONDS),
      }, { databaseUrl: primary.url });
      await seedDemoUsers(server);
      admin = (await loginAs(server, 'admin1@demo.example')).access_token;
      backoffice = (await loginAs(server, 'backoffice1@demo.example')).access_token;
      root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
      await until('the replica has replayed the seed', replayed);
    } catch (error) {
      await server?.close();
      await replica?.destroy();
      await primary?.destroy();
      throw error;
    }
  });
  after(async () => {
    await server?.close();
    await replica?.destroy();
    await primary?.destroy();
  });
  afterEach(async () => {
    if (replica) await resumeReplay().catch(() => undefined);
  });

  it('serves list reads from the replica: another caller does not see a write the replica has not replayed', async () => {
    await pauseReplay();
    const created = await jsonRequest(server, 'POST', '/customers', admin, { first_name: 'Lag', last_name: 'Test', email: 'lag@customer.example' });
    expect(created.status).to.equal(201);

    const before = await readsOn('replica');
    expect(await customerEmails(backoffice)).to.not.include('lag@customer.example');
    expect(await readsOn('replica')).to.be.greaterThan(before);

    await resumeReplay();
    await until('the replica shows the customer', async () => (await customerEmails(backoffice)).includes('lag@customer.example'));
  });

  it('keeps a caller\'s reads on the primary right after its own write, for DATABASE_REPLICA_STICKY_SECONDS', async () => {
    await pauseReplay();
    const created = await jsonRequest(server, 'POST', '/customers', admin, { first_name: 'Own', last_name: 'Write', email: 'own@customer.example' });
    expect(created.status).to.equal(201);
    const before = await readsOn('primary');
    expect(await customerEmails(admin)).to.include('own@customer.example');
    expect(await readsOn('primary')).to.be.greaterThan(before);
    // Afterwards the writer reads from the replica like anyone: the proof that the mark is what kept it on the primary.
    await new Promise((resolve) => setTimeout(resolve, STICKY_SECONDS * 1000 + 300));
    expect(await customerEmails(admin)).to.not.include('own@customer.example');
  });

  it('decides access on the primary: a user, client and deactivation the replica has not seen take effect at once', async () => {
    await pauseReplay();
    const created = await jsonRequest(server, 'POST', '/users', admin, { email: 'fresh@demo.example', first_name: 'Fresh', last_name: 'Hire', role: 'agent', create_client: true });
    expect(created.status).to.equal(201);
    const body = (await created.json()) as { user: { id: string }; temporary_password: string; client: { client_id: string; client_secret: string } };

    // Sign-in and the client's authentication find what only the primary has.
    const signIn = await login(server, { email: 'fresh@demo.example', password: body.temporary_password });
    expect(signIn.status).to.equal(200);
    const { access_token: freshToken } = (await signIn.json()) as { access_token: string };
    expect((await jsonRequest(server, 'GET', '/me', freshToken)).status).to.equal(200);
    const machine = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials' }, { authorization: basicAuth(body.client.client_id, body.client.client_secret) });
    expect(machine.status, await machine.clone().text()).to.equal(200);

    // Deactivated on the primary: the token stops working now, though the replica still lists the user as active.
    expect((await jsonRequest(server, 'PATCH', `/users/${body.user.id}`, admin, { is_active: false })).status).to.equal(200);
    expect((await jsonRequest(server, 'GET', '/me', freshToken)).status).to.equal(401);

    // The super admin's list (another caller) comes from the replica, which has none of it yet.
    expect(await userEmails(root)).to.not.include('fresh@demo.example');
    await resumeReplay();
    await until('the replica lists the user as inactive', async () => (await userEmails(root, '&is_active=false')).includes('fresh@demo.example'));
  });

  it('reads from the primary while the replica is down, and from the replica again once it is back', async () => {
    await replica!.stop();
    try {
      const before = await readsOn('fallback');
      expect(await customerEmails(backoffice)).to.include('lag@customer.example');
      expect((await jsonRequest(server, 'GET', '/crm/statistics', backoffice)).status).to.equal(200);
      expect(await readsOn('fallback')).to.be.greaterThan(before);
    } finally {
      await replica!.start();
    }
    await until('the replica serves reads again', async () => {
      const before = await readsOn('replica');
      const fallbacks = await readsOn('fallback');
      await customerEmails(backoffice);
      return await readsOn('replica') > before && await readsOn('fallback') === fallbacks;
    });
  });
});
