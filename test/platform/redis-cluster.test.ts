// Latchkey on a real Redis Cluster (three masters made by `redis-cli --cluster create`), two
// instances on it: the token flows, replay detection and revocation behave exactly as on one
// Redis, and no command trips over keys in different slots (CROSSSLOT).
import { expect } from 'chai';

import { createLogger } from '../../src/platform/logger.ts';
import { RedisStore } from '../../src/platform/redis-store.ts';
import { StoreUnavailableError } from '../../src/platform/store.ts';
import { startPeerServer, startTestServer, type TestServer } from '../support/harness.ts';
import { codeExchangeForm, createCodeClient, issueAuthorizationCode } from '../support/grants.ts';
import { basicAuth, callApi, clientCredentialsToken, postForm, type TokenResponse } from '../support/oauth.ts';
import { freePort } from '../support/processes.ts';
import { TOPOLOGY_PASSWORD, startRedisCluster, type RedisClusterTopology } from '../support/redis-topology.ts';
import { expectRevocationToReachPeer } from '../support/two-instances.ts';
import { DEMO_PASSWORD, login, loginAs, postJson, seedDemoUsers } from '../support/users.ts';

describe('Latchkey on a Redis Cluster of three masters', function () {
  this.timeout(60_000);

  let cluster: RedisClusterTopology | undefined;
  let first: TestServer;
  let second: TestServer;

  before(async () => {
    cluster = await startRedisCluster();
    const env = { REDIS_URL: '', REDIS_CLUSTER_NODES: cluster.clusterNodes, REDIS_PASSWORD: TOPOLOGY_PASSWORD };
    first = await startTestServer(env);
    second = await startPeerServer(first, env);
    await seedDemoUsers(first);
  });
  after(async () => {
    await second?.close();
    await first?.close();
    await cluster?.destroy();
  });

  async function exchange(server: TestServer, client: { clientId: string; secret: string }, form: Record<string, string>): Promise<Response> {
    return postForm(`${server.url}/oauth/token`, form, { authorization: basicAuth(client.clientId, client.secret) });
  }

  it('refuses to start, saying why, when no node of the cluster answers', async () => {
    const nodes = [{ host: '127.0.0.1', port: await freePort() }];
    const error = await RedisStore.connect({ mode: 'cluster', nodes }, 'unused:', createLogger({ logLevel: 'silent', env: 'test' }))
      .then(() => undefined, (caught: Error) => caught);
    expect(error).to.be.instanceOf(StoreUnavailableError);
    expect(error!.message).to.equal(`cannot connect to Redis Cluster at 127.0.0.1:${nodes[0]!.port}: None of startup nodes is available`);
  });

  it('refuses to start when the nodes do not take its password', async () => {
    const nodes = cluster!.nodes.map((node) => ({ host: '127.0.0.1', port: node.port }));
    const error = await RedisStore.connect({ mode: 'cluster', nodes, auth: { password: 'not-it' } }, 'unused:', createLogger({ logLevel: 'silent', env: 'test' }))
      .then(() => undefined, (caught: Error) => caught);
    expect(error).to.be.instanceOf(StoreUnavailableError);
  });

  it('is ready, and spreads its keys over every master instead of one slot', async () => {
    const ready = await fetch(`${first.url}/ready`);
    expect(ready.status).to.equal(200);
    expect(await ready.json()).to.include({ store: 'up', store_mode: 'redis' });
    for (let issued = 0; issued < 30; issued += 1) await clientCredentialsToken(issued % 2 === 0 ? first : second);
    const counts = await cluster!.keyCounts();
    expect(counts.every((count) => count > 0), `keys per master: ${counts.join(', ')}`).to.equal(true);
  });

  it('issues client_credentials tokens that both instances accept, and /oauth/revoke ends them on both', async () => {
    const { access_token: token } = await clientCredentialsToken(first);
    expect((await callApi(first, '/me', token)).status).to.equal(200);
    expect((await callApi(second, '/me', token)).status).to.equal(200);
    const introspected = await postForm(`${second.url}/oauth/introspect`, { token }, { authorization: basicAuth(first.admin.clientId, first.admin.clientSecret) });
    expect(await introspected.json()).to.include({ active: true });

    const revoked = await postForm(`${second.url}/oauth/revoke`, { token }, { authorization: basicAuth(first.admin.clientId, first.admin.clientSecret) });
    expect(revoked.status).to.equal(200);
    expect((await callApi(first, '/me', token)).status).to.equal(401);
    expect((await callApi(second, '/me', token)).status).to.equal(401);
  });

  it('redeems an authorization code once and rotates refresh tokens; a replayed code ends the grant and every token from it', async () => {
    const client = await createCodeClient(first);
    const issued = await issueAuthorizationCode(first, { clientId: client.clientId, userId: first.admin.userId, scope: 'openid offline_access', apiScope: 'crm:read' });
    const redeemed = await exchange(first, client, codeExchangeForm(issued, { resource: first.config.apiAudience }));
    expect(redeemed.status, await redeemed.clone().text()).to.equal(200);
    const tokens = (await redeemed.json()) as TokenResponse;

    const refreshed = await exchange(second, client, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, resource: first.config.apiAudience });
    expect(refreshed.status, await refreshed.clone().text()).to.equal(200);
    const rotated = (await refreshed.json()) as TokenResponse;
    expect(rotated.refresh_token).to.not.equal(tokens.refresh_token);
    expect((await callApi(first, '/me', rotated.access_token)).status).to.equal(200);

    // The replay reads the code and its consumption marker together (one slot by their hash tag)
    // and deletes the grant's artefacts, which lie in many slots.
    const replayed = await exchange(second, client, codeExchangeForm(issued, { resource: first.config.apiAudience }));
    expect(replayed.status).to.equal(400);
    expect(await replayed.json()).to.include({ error: 'invalid_grant' });
    for (const server of [first, second]) {
      expect((await callApi(server, '/me', tokens.access_token)).status).to.equal(401);
      expect((await callApi(server, '/me', rotated.access_token)).status).to.equal(401);
    }
    expect((await exchange(first, client, { grant_type: 'refresh_token', refresh_token: rotated.refresh_token! })).status).to.equal(400);
  });

  it('signs in with a password on one instance, refreshes on the other, and a logout ends the session on both', async () => {
    const session = await loginAs(first, 'agent1@demo.example');
    expect((await callApi(second, '/me', session.access_token)).status).to.equal(200);
    const refreshed = await postJson(second, '/auth/refresh', { refresh_token: session.refresh_token });
    expect(refreshed.status).to.equal(200);
    const pair = (await refreshed.json()) as { access_token: string; refresh_token: string };
    expect(pair.refresh_token).to.not.equal(session.refresh_token);
    expect((await callApi(first, '/me', pair.access_token)).status).to.equal(200);

    expect((await postJson(first, '/auth/logout', { refresh_token: pair.refresh_token }, pair.access_token)).status).to.equal(204);
    expect((await callApi(second, '/me', pair.access_token)).status).to.equal(401);
    expect((await postJson(second, '/auth/refresh', { refresh_token: pair.refresh_token })).status).to.equal(401);
  });

  it('counts failed sign-ins and client authentications across instances (the throttles\' scripts and transactions)', async () => {
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const server = attempt % 2 === 0 ? first : second;
      expect((await login(server, { email: 'agent2@demo.example', password: 'wrong-password-xx' })).status).to.equal(401);
    }
    const locked = await login(second, { email: 'agent2@demo.example', password: DEMO_PASSWORD });
    expect(locked.status).to.equal(429);
    expect(Number(locked.headers.get('retry-after'))).to.be.within(1, 900);

    const refused = await postForm(`${first.url}/oauth/token`, { grant_type: 'client_credentials' }, { authorization: basicAuth(first.admin.clientId, 'not-the-secret') });
    expect(refused.status).to.equal(401);
    expect(await refused.json()).to.include({ error: 'invalid_client' });
  });

  it('tells the other instance of a revocation at once, through cluster pub/sub', async () => {
    await expectRevocationToReachPeer(first, second, 'premium1@demo.example');
  });
});
