import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import { REDIS_URL, createTestDatabase, dropDatabase } from './support/databases.ts';
import { AuditLog } from '../src/db/entities/audit-log.entity.ts';
import { createDependencies, openStores } from '../src/dependencies.ts';
import { loadConfig } from '../src/platform/config.ts';
import { createLogger } from '../src/platform/logger.ts';
import { codeExchangeForm, createCodeClient, issueAuthorizationCode } from './support/grants.ts';
import { deleteRedisKeys, testEnvironment, uniqueRedisPrefix, type TestServer } from './support/harness.ts';
import { basicAuth, postForm } from './support/oauth.ts';
import { freePort, runMain, startServerProcess, type ServerProcess } from './support/processes.ts';

function credentialsFrom(output: string): { clientId: string; secret: string } {
  const clientId = /client_id:\s+(\S+)/.exec(output)?.[1];
  const secret = /client_secret:\s+(\S+)/.exec(output)?.[1];
  if (!clientId || !secret) throw new Error(`no credentials printed:\n${output}`);
  return { clientId, secret };
}

async function token(url: string, credentials: { clientId: string; secret: string }): Promise<string> {
  const response = await postForm(`${url}/oauth/token`, { grant_type: 'client_credentials', scope: 'crm:read' },
    { authorization: basicAuth(credentials.clientId, credentials.secret) });
  expect(response.status, await response.clone().text()).to.equal(200);
  return ((await response.json()) as { access_token: string }).access_token;
}

describe('npm start (src/main.ts as a process)', function () {
  this.timeout(90_000);

  /** Runs main.ts expecting it to refuse to start; answers what it printed on stderr. */
  async function refusedStart(env: Record<string, string>): Promise<string> {
    const child = runMain(env);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const [code] = await once(child, 'exit');
    expect(code).to.equal(1);
    return stderr;
  }

  it('stops at start with one clear line naming a bad variable', async () => {
    const stderr = await refusedStart({ ACCESS_TOKEN_TTL: 'soon', PORT: '1' });
    expect(stderr.trim().split('\n')).to.have.length(1);
    expect(stderr).to.include('ACCESS_TOKEN_TTL: expected a whole number from 60 to 86400 (got "soon")');
  });

  it('refuses an http issuer that is not loopback', async () => {
    const stderr = await refusedStart({ ISSUER: 'http://auth.example.com', PORT: '1' });
    expect(stderr).to.include('ISSUER: must use https');
  });

  describe('embedded mode (no DATABASE_URL, no REDIS_URL)', () => {
    let dataDir: string;
    let server: ServerProcess;

    before(async () => {
      dataDir = await mkdtemp(path.join(tmpdir(), 'latchkey-embedded-'));
      server = await startServerProcess({ PORT: String(await freePort()), DATA_DIR: dataDir });
    });
    after(async () => {
      await server?.stop();
      await rm(dataDir, { recursive: true, force: true });
    });

    it('boots PGlite and the in-process store, prints the first admin once, and issues a token', async () => {
      const output = server.output();
      expect(output).to.include('embedded PostgreSQL (PGlite)');
      expect(output).to.include('in-process store');
      const credentials = credentialsFrom(output);
      expect(output.split(credentials.secret)).to.have.length(2);
      const accessToken = await token(server.url, credentials);
      const me = await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${accessToken}` } });
      expect(me.status).to.equal(200);
      const ready = await (await fetch(`${server.url}/ready`)).json();
      expect(ready).to.include({ status: 'ready', database_mode: 'embedded', store_mode: 'memory' });
    });

    it('refuses a second server on the same data directory', async () => {
      const stderr = await refusedStart({ PORT: String(await freePort()), DATA_DIR: dataDir });
      expect(stderr).to.include('another Latchkey process is serving the embedded database');
    });

    it('drains and exits 0 on SIGTERM', async () => {
      const code = await server.stop('SIGTERM');
      expect(code).to.equal(0);
      expect(server.output()).to.include('stopped');
    });
  });

  it('runs WEB_CONCURRENCY workers that share the port, and stops them all on SIGTERM', async () => {
    const database = await createTestDatabase();
    const prefix = uniqueRedisPrefix();
    const port = await freePort();
    const cluster = await startServerProcess({ DATABASE_URL: database.url, REDIS_URL, REDIS_KEY_PREFIX: prefix, PORT: String(port), WEB_CONCURRENCY: '2' });
    try {
      const pids = new Set((cluster.output().match(/"pid":(\d+)[^\n]*Latchkey listening/g) ?? []).map((line) => /"pid":(\d+)/.exec(line)![1]));
      expect(pids.size).to.equal(2);
      const accessToken = await token(cluster.url, credentialsFrom(cluster.output()));
      const answers = await Promise.all(Array.from({ length: 10 }, () => fetch(`${cluster.url}/api/v1/me`, { headers: { authorization: `Bearer ${accessToken}` } })));
      expect(answers.every((answer) => answer.status === 200)).to.equal(true);
      expect(await cluster.stop('SIGTERM')).to.equal(0);
    } finally {
      await cluster.stop('SIGKILL');
      await deleteRedisKeys(prefix);
      await dropDatabase(database.name);
    }
  });

  it('finishes a request in flight when SIGTERM arrives, then exits 0', async () => {
    const database = await createTestDatabase();
    const prefix = uniqueRedisPrefix();
    const port = await freePort();
    const server = await startServerProcess({ DATABASE_URL: database.url, REDIS_URL, REDIS_KEY_PREFIX: prefix, PORT: String(port) });
    try {
      const body = JSON.stringify({ email: 'late@example.com', password: 'lantern-orbit-quartz-71', full_name: 'Late Comer' });
      const answer = new Promise<number>((resolve, reject) => {
        const request = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/api/v1/auth/register', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
          (response) => { response.resume(); resolve(response.statusCode ?? 0); });
        request.on('error', reject);
        // Half the body now, the rest after the signal: the request is surely in flight.
        request.write(body.slice(0, 20));
        setTimeout(() => {
          server.child.kill('SIGTERM');
          setTimeout(() => request.end(body.slice(20)), 300);
        }, 100);
      });
      const exited = once(server.child, 'exit');
      expect(await answer).to.equal(201);
      const [code] = (await exited) as [number | null];
      expect(code).to.equal(0);
    } finally {
      await server.stop('SIGKILL');
      await deleteRedisKeys(prefix);
      await dropDatabase(database.name);
    }
  });

  describe('two processes on one PostgreSQL and Redis', () => {
    let database: { name: string; url: string };
    const prefix = uniqueRedisPrefix();
    let first: ServerProcess;
    let second: ServerProcess;

    before(async () => {
      database = await createTestDatabase();
      const shared = { DATABASE_URL: database.url, REDIS_URL, REDIS_KEY_PREFIX: prefix, ACCESS_TOKEN_FORMAT: 'jwt' };
      const firstPort = await freePort();
      // One issuer: the processes stand behind one load balancer in production.
      const issuer = `http://127.0.0.1:${firstPort}`;
      first = await startServerProcess({ ...shared, PORT: String(firstPort), ISSUER: issuer });
      const secondPort = await freePort();
      second = await startServerProcess({ ...shared, PORT: String(secondPort), ISSUER: issuer });
    });
    after(async () => {
      await Promise.all([first?.stop(), second?.stop()]);
      await deleteRedisKeys(prefix);
      await dropDatabase(database.name);
    });

    it('creates one first admin and one set of signing keys', async () => {
      expect(second.output()).not.to.include('client_secret');
      const [jwksA, jwksB] = await Promise.all([first.url, first.url].map(async () => (await fetch(`${first.url}/oauth/jwks`)).json()));
      expect(jwksA).to.deep.equal(jwksB);
    });

    it('sees a refresh-token revocation made through one process at the next call on the other', async () => {
      // A user grant written to the shared stores, as the login page will write it.
      const issuer = first.url;
      const config = loadConfig(testEnvironment(database.url, prefix, Number(new URL(issuer).port), { ACCESS_TOKEN_FORMAT: 'jwt' }));
      const logger = createLogger(config);
      const deps = await createDependencies(config, logger, await openStores(config, logger));
      try {
        const view = { deps, config } as unknown as TestServer;
        const userId = /"targetId":"([0-9a-f-]{36})"/.exec(JSON.stringify(await deps.orm.em.fork().find(AuditLog, { action: 'admin.create' })))![1]!;
        const client = await createCodeClient(view);
        const issued = await issueAuthorizationCode(view, { clientId: client.clientId, userId, scope: 'openid offline_access', apiScope: 'crm:read' });
        const exchanged = await postForm(`${first.url}/oauth/token`, codeExchangeForm(issued, { resource: config.apiAudience }),
          { authorization: basicAuth(client.clientId, client.secret) });
        expect(exchanged.status, await exchanged.clone().text()).to.equal(200);
        const tokens = (await exchanged.json()) as { access_token: string; refresh_token: string };

        const secondUrl = `http://127.0.0.1:${/"port":(\d+)/.exec(second.output())![1]}`;
        const call = () => fetch(`${secondUrl}/api/v1/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
        expect((await call()).status).to.equal(200);
        const revoked = await postForm(`${first.url}/oauth/revoke`, { token: tokens.refresh_token, token_type_hint: 'refresh_token' },
          { authorization: basicAuth(client.clientId, client.secret) });
        expect(revoked.status).to.equal(200);
        const after = await call();
        expect(after.status).to.equal(401);
        expect((await after.json()).detail).to.include('revoked');
      } finally {
        await deps.close();
      }
    });
  });
});
