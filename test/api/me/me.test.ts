import { expect } from 'chai';

import { queryRows } from '../../../src/platform/database.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { basicAuth, callApi, clientCredentialsToken, createClient, postForm } from '../../support/oauth.ts';
import { DEMO_PASSWORD, login, loginAs, postJson, seedDemoUsers } from '../../support/users.ts';

function patchMe(server: TestServer, token: string, body: unknown) {
  return callApi(server, '/me', token, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

describe('/api/v1/me', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: 'root-password-for-tests-1' });
    await seedDemoUsers(server);
  });
  after(async () => { await server.close(); });

  it('changes the caller\'s own profile', async () => {
    const { access_token: token } = await loginAs(server, 'agent1@demo.example');
    const response = await patchMe(server, token, { first_name: 'Alfred', username: 'alfred' });
    expect(response.status).to.equal(200);
    expect(await response.json()).to.include({ first_name: 'Alfred', username: 'alfred', full_name: 'Alfred Agent' });
  });

  it('refuses role or status changes, unknown fields, wrong types and an empty change with 422', async () => {
    const { access_token: token } = await loginAs(server, 'agent1@demo.example');
    for (const body of [{ roles: ['admin'] }, { is_active: false }, { first_name: 42 }, {}, { first_name: 'x'.repeat(101) }]) {
      const response = await patchMe(server, token, body);
      expect(response.status, JSON.stringify(body)).to.equal(422);
    }
    expect((await (await callApi(server, '/me', token)).json()).roles).to.deep.equal(['agent']);
  });

  it('answers 409 for an email another user of the organization has', async () => {
    const { access_token: token } = await loginAs(server, 'agent1@demo.example');
    const response = await patchMe(server, token, { email: 'agent2@demo.example' });
    expect(response.status).to.equal(409);
  });

  it('answers 403 for a machine token that acts for no user', async () => {
    const machine = await createClient(server);
    const { access_token: token } = await clientCredentialsToken(server, { clientId: machine.clientId, secret: machine.secret });
    expect((await callApi(server, '/me', token)).status).to.equal(403);
    expect((await patchMe(server, token, { first_name: 'X' })).status).to.equal(403);
  });

  it('deactivates the caller: their tokens stop and they cannot sign in', async () => {
    const { access_token: token } = await loginAs(server, 'guest1@demo.example');
    const response = await postJson(server, '/me/deactivate', {}, token);
    expect(response.status).to.equal(204);
    expect((await callApi(server, '/me', token)).status).to.equal(401);
    expect((await login(server, { email: 'guest1@demo.example', password: DEMO_PASSWORD })).status).to.equal(401);
  });

  it('deletes the caller with their personal clients', async () => {
    const session = await loginAs(server, 'basic1@demo.example');
    const created = await (await postJson(server, '/me/clients', { client_name: 'cli' }, session.access_token)).json();
    const response = await callApi(server, '/me', session.access_token, { method: 'DELETE' });
    expect(response.status).to.equal(204);
    expect((await callApi(server, '/me', session.access_token)).status).to.equal(401);
    const token = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials' }, { authorization: basicAuth(created.client_id, created.client_secret) });
    expect(token.status).to.equal(401);
  });

  it('keeps the last super admin from deleting or deactivating themselves (409)', async () => {
    const { access_token: token } = await loginAs(server, 'root@example.com', 'root-password-for-tests-1');
    expect((await callApi(server, '/me', token, { method: 'DELETE' })).status).to.equal(409);
    expect((await postJson(server, '/me/deactivate', {}, token)).status).to.equal(409);
  });
});

describe('/api/v1/me/clients (personal API clients)', () => {
  let server: TestServer;
  let token: string;

  before(async () => {
    server = await startTestServer({ ACCESS_TOKEN_FORMAT: 'jwt' });
    await seedDemoUsers(server);
    ({ access_token: token } = await loginAs(server, 'premium1@demo.example'));
  });
  after(async () => { await server.close(); });

  async function clientToken(clientId: string, secret: string) {
    return postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials', scope: 'crm:read' }, { authorization: basicAuth(clientId, secret) });
  }

  it('creates a client whose tokens act for its owner, lists it without its secret, rotates and deletes it', async () => {
    const createdResponse = await postJson(server, '/me/clients', { client_name: 'reporting script', scope: 'crm:read' }, token);
    expect(createdResponse.status).to.equal(201);
    const created = await createdResponse.json();
    expect(created).to.include({ client_name: 'reporting script', scope: 'crm:read' });

    const issued = await clientToken(created.client_id, created.client_secret);
    expect(issued.status).to.equal(200);
    const machineToken = (await issued.json()).access_token;
    const me = await (await callApi(server, '/me', machineToken)).json();
    expect(me.email).to.equal('premium1@demo.example');

    const list = await (await callApi(server, '/me/clients', token)).json();
    expect(list).to.include({ count: 1, page: 1, page_size: 20, next: null, previous: null });
    expect(list.results[0].client_id).to.equal(created.client_id);
    expect(JSON.stringify(list)).not.to.include(created.client_secret);

    const rotated = await (await postJson(server, `/me/clients/${created.client_id}/rotate-secret`, {}, token)).json();
    expect(rotated.client_secret).to.not.equal(created.client_secret);
    expect((await clientToken(created.client_id, created.client_secret)).status).to.equal(401);
    expect((await callApi(server, '/me', machineToken)).status).to.equal(401);
    const fresh = (await (await clientToken(created.client_id, rotated.client_secret)).json()).access_token;
    expect((await callApi(server, '/me', fresh)).status).to.equal(200);

    expect((await callApi(server, `/me/clients/${created.client_id}`, token, { method: 'DELETE' })).status).to.equal(204);
    expect((await callApi(server, '/me', fresh)).status).to.equal(401);
    expect((await clientToken(created.client_id, rotated.client_secret)).status).to.equal(401);
  });

  it('records where each client change came from: IP and user agent on every audit row', async () => {
    const headers = { 'content-type': 'application/json', 'user-agent': 'me-audit-test/1.0' };
    const created = await (await callApi(server, '/me/clients', token, { method: 'POST', headers, body: JSON.stringify({ client_name: 'audited' }) })).json();
    await callApi(server, `/me/clients/${created.client_id}/rotate-secret`, token, { method: 'POST', headers, body: '{}' });
    await callApi(server, `/me/clients/${created.client_id}`, token, { method: 'DELETE', headers: { 'user-agent': 'me-audit-test/1.0' } });
    const rows = await queryRows<{ action: string; ip: string | null; user_agent: string | null; actor_id: string | null }>(
      server.deps.orm.em, 'select action, ip, user_agent, actor_id from audit_log where resource_id = ? order by occurred_at, action', [created.client_id],
    );
    expect(rows.map((row) => row.action)).to.have.members(['client.create', 'client.rotate_secret', 'client.delete']);
    for (const row of rows) {
      expect(row.ip, row.action).to.be.a('string').and.not.equal('');
      expect(row.user_agent, row.action).to.equal('me-audit-test/1.0');
      expect(row.actor_id, row.action).to.be.a('string');
    }
  });

  it('answers 404 for another user\'s client and for an unknown one', async () => {
    const other = await loginAs(server, 'agent1@demo.example');
    const theirs = await (await postJson(server, '/me/clients', { client_name: 'theirs' }, other.access_token)).json();
    expect((await callApi(server, `/me/clients/${theirs.client_id}`, token, { method: 'DELETE' })).status).to.equal(404);
    expect((await postJson(server, `/me/clients/${theirs.client_id}/rotate-secret`, {}, token)).status).to.equal(404);
    expect((await callApi(server, '/me/clients/lk_unknown', token, { method: 'DELETE' })).status).to.equal(404);
  });

  it('refuses scopes beyond the owner\'s roles, a missing name and an oversized one', async () => {
    expect((await postJson(server, '/me/clients', { client_name: 'x', scope: 'audit:read' }, token)).status).to.equal(422);
    expect((await postJson(server, '/me/clients', {}, token)).status).to.equal(422);
    expect((await postJson(server, '/me/clients', { client_name: 'x'.repeat(101) }, token)).status).to.equal(422);
    expect((await postJson(server, '/me/clients', { client_name: 7 }, token)).status).to.equal(422);
  });

  it('validates paging', async () => {
    expect((await callApi(server, '/me/clients?page=0', token)).status).to.equal(422);
    expect((await callApi(server, '/me/clients?page_size=101', token)).status).to.equal(422);
    expect((await callApi(server, '/me/clients?page=abc', token)).status).to.equal(422);
  });
});
