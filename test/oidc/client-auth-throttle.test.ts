import { expect } from 'chai';
import type { Redis } from 'ioredis';
import * as oauth from 'oauth4webapi';

import type { RedisStore } from '../../src/platform/redis-store.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { basicAuth, createClient, discoverWithOauth4webapi, postForm } from '../support/oauth.ts';
import { DEMO_PASSWORD, login, seedDemoUsers } from '../support/users.ts';

/** Requests come "from" the given address through a trusted proxy (TRUST_PROXY=true). */
function from(address: string, headers: Record<string, string> = {}): Record<string, string> {
  return { 'x-forwarded-for': address, ...headers };
}

function clientCredentials(server: TestServer, address: string, clientId: string, secret: string): Promise<Response> {
  return postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials' }, from(address, { authorization: basicAuth(clientId, secret) }));
}

/** Every command the server's Redis connection sends while `work` runs. */
async function redisCommandsDuring(server: TestServer, work: () => Promise<void>): Promise<string[]> {
  const client = (server.deps.store as RedisStore).client as Redis & { sendCommand(command: { name: string; args: unknown[] }): unknown };
  const original = client.sendCommand.bind(client);
  const sent: string[] = [];
  client.sendCommand = (command) => {
    sent.push([command.name, ...command.args.map(String)].join(' '));
    return original(command);
  };
  try {
    await work();
  } finally {
    client.sendCommand = original;
  }
  return sent;
}

describe('throttling of failed client authentication (defaults: 30 per address, 100 per client, a 60 s window)', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({ TRUST_PROXY: 'true' });
    await seedDemoUsers(server);
  });
  after(async () => { await server.close(); });

  it('answers 200 wrong-secret requests in a minute from one address with 401 up to the limit, then 429 with Retry-After', async () => {
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let attempt = 0; attempt < 200; attempt += 1) {
      last = await clientCredentials(server, '203.0.113.7', server.admin.clientId, 'not-the-secret');
      statuses.push(last.status);
      if (attempt < 199) await last.arrayBuffer();
    }
    expect(statuses.slice(0, 30)).to.deep.equal(Array(30).fill(401));
    expect(statuses.slice(30)).to.deep.equal(Array(170).fill(429));
    expect(Number(last!.headers.get('retry-after'))).to.be.within(1, 60);
    expect(last!.headers.get('cache-control')).to.equal('no-store');
    expect(await last!.json()).to.include({ error: 'invalid_client' });

    // As designed: the address waits, its right credentials included; the client itself, from
    // anywhere else, is not affected.
    expect((await clientCredentials(server, '203.0.113.7', server.admin.clientId, server.admin.clientSecret)).status).to.equal(429);
    expect((await clientCredentials(server, '198.51.100.20', server.admin.clientId, server.admin.clientSecret)).status).to.equal(200);
  });

  it('counts failures for one client across addresses: past the limit they answer 429, while its right secret keeps working', async () => {
    const machine = await createClient(server);
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 105; attempt += 1) {
      const response = await clientCredentials(server, `192.0.2.${attempt + 1}`, machine.clientId, 'guess');
      statuses.push(response.status);
      await response.arrayBuffer();
    }
    expect(statuses.slice(0, 100)).to.deep.equal(Array(100).fill(401));
    expect(statuses.slice(100)).to.deep.equal(Array(5).fill(429));
    const throttled = await clientCredentials(server, '192.0.2.200', machine.clientId, 'guess');
    expect(throttled.status).to.equal(429);
    expect((await throttled.json()).error_description).to.match(/for this client/);
    expect((await clientCredentials(server, '192.0.2.201', machine.clientId, machine.secret)).status).to.equal(200);
  });

  it('costs a successful authentication no store call', async () => {
    const as = await discoverWithOauth4webapi(server);
    const oauthClient = { client_id: server.admin.clientId };
    const commands = await redisCommandsDuring(server, async () => {
      for (let attempt = 0; attempt < 5; attempt += 1) {
        const response = await oauth.clientCredentialsGrantRequest(as, oauthClient, oauth.ClientSecretBasic(server.admin.clientSecret),
          new URLSearchParams({ scope: 'crm:read' }), { [oauth.allowInsecureRequests]: true, headers: new Headers(from('198.51.100.30')) });
        await oauth.processClientCredentialsResponse(as, oauthClient, response);
      }
    });
    expect(commands.filter((command) => command.includes('client-auth'))).to.deep.equal([]);
    const failure = await redisCommandsDuring(server, async () => {
      await (await clientCredentials(server, '198.51.100.30', server.admin.clientId, 'wrong')).arrayBuffer();
    });
    expect(failure.filter((command) => command.includes('client-auth')), 'a failure is counted').to.not.deep.equal([]);
  });

  it('counts the other endpoints that authenticate clients too (introspection, revocation)', async () => {
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 32; attempt += 1) {
      const endpoint = attempt % 2 === 0 ? 'introspect' : 'revoke';
      const response = await postForm(`${server.url}/oauth/${endpoint}`, { token: 'whatever' },
        from('203.0.113.50', { authorization: basicAuth(server.admin.clientId, 'not-the-secret') }));
      statuses.push(response.status);
      await response.arrayBuffer();
    }
    expect(statuses.slice(0, 30)).to.deep.equal(Array(30).fill(401));
    expect(statuses.slice(30)).to.deep.equal([429, 429]);
  });

  it('answers the JSON sign-in with a 429 problem once its client credentials have failed too often', async () => {
    let last: Response | undefined;
    for (let attempt = 0; attempt < 31; attempt += 1) {
      last = await login(server, { email: 'agent1@demo.example', password: DEMO_PASSWORD },
        from('203.0.113.90', { 'x-client-id': server.admin.clientId, 'x-client-secret': 'not-the-secret' }));
      if (attempt < 30) expect(last.status, `attempt ${attempt + 1}`).to.equal(401);
    }
    expect(last!.status).to.equal(429);
    expect(last!.headers.get('retry-after')).to.match(/^\d+$/);
    expect(await last!.json()).to.include({ code: 'request.rate_limited', detail: 'Too many failed client authentications; wait before trying again' });
  });
});

describe('throttling of failed client authentication, turned off', () => {
  let server: TestServer;

  before(async () => { server = await startTestServer({ TRUST_PROXY: 'true', CLIENT_AUTH_FAILURES_PER_ADDRESS: '0', CLIENT_AUTH_FAILURES_PER_CLIENT: '0' }); });
  after(async () => { await server.close(); });

  it('answers every failure 401', async () => {
    for (let attempt = 0; attempt < 40; attempt += 1) {
      const response = await clientCredentials(server, '203.0.113.7', server.admin.clientId, 'not-the-secret');
      expect(response.status).to.equal(401);
      await response.arrayBuffer();
    }
  });
});
