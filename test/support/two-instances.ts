// Checks that two instances of Latchkey on the same stores behave as one, for the tests that run
// them on a Redis topology of their own (Cluster, Sentinel).
import { expect } from 'chai';

import type { TestServer } from './harness.ts';
import { basicAuth, callApi, postForm, type TokenResponse } from './oauth.ts';
import { loginAs, postJson } from './users.ts';

export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function clientCredentials(server: TestServer, clientId: string, secret: string): Promise<TokenResponse> {
  const response = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials' }, { authorization: basicAuth(clientId, secret) });
  expect(response.status, await response.clone().text()).to.equal(200);
  return (await response.json()) as TokenResponse;
}

/**
 * A user's personal client gets a token on `first`, which `second` accepts; the user rotates the
 * client's secret on `first`, and `second` refuses the token. The token itself is still in Redis,
 * and `second` had read the client's revocation generation and would keep it for a minute: only
 * the message `first` publishes can make `second` refuse within the few seconds allowed here.
 */
export async function expectRevocationToReachPeer(first: TestServer, second: TestServer, email: string): Promise<void> {
  const user = await loginAs(first, email);
  const created = await postJson(first, '/me/clients', { client_name: 'peer check', scope: 'crm:read' }, user.access_token);
  expect(created.status, await created.clone().text()).to.equal(201);
  const client = (await created.json()) as { client_id: string; client_secret: string };
  const { access_token: token } = await clientCredentials(first, client.client_id, client.client_secret);
  expect((await callApi(second, '/me', token)).status).to.equal(200);

  const rotated = await postJson(first, `/me/clients/${client.client_id}/rotate-secret`, {}, user.access_token);
  expect(rotated.status).to.equal(200);
  expect((await callApi(first, '/me', token)).status).to.equal(401);
  await eventually('the second instance refusing the token', async () => (await callApi(second, '/me', token)).status === 401);
}
