import { expect } from 'chai';
import * as client from 'openid-client';

import { queryRows } from '../../../src/platform/database.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { callApi, clientCredentialsToken, createClient } from '../../support/oauth.ts';
import { PageSession, authorizeThroughPages, codeFlowRequest, discoverClient, type RegisteredClient } from '../../support/pages.ts';
import { DEMO_PASSWORD, loginAs, seedDemoUsers } from '../../support/users.ts';

const REDIRECT_URI = 'http://127.0.0.1:9/callback';

describe('/api/v1/me/consents', () => {
  let server: TestServer;
  let reports: RegisteredClient;
  let reportsConfig: client.Configuration;

  before(async () => {
    server = await startTestServer();
    await seedDemoUsers(server);
    reports = await registerApplication('Acme Reports');
    reportsConfig = await discoverClient(server, reports, REDIRECT_URI);
  });
  after(async () => { await server.close(); });

  function registerApplication(name: string, options: { firstParty?: boolean } = {}) {
    return createClient(server, {
      client_name: name,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid profile email crm:read',
    }, options);
  }

  /** Signs the user in to the application through the pages and returns its API tokens. */
  async function authorize(config: client.Configuration, identifier: string, scope = 'openid email crm:read') {
    const flow = await codeFlowRequest(config, REDIRECT_URI, { scope, resource: server.config.apiAudience });
    const { callback, consentShown } = await authorizeThroughPages(new PageSession(server), flow, REDIRECT_URI, { identifier, password: DEMO_PASSWORD });
    const tokens = await client.authorizationCodeGrant(config, callback,
      { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce }, { resource: server.config.apiAudience });
    return { tokens, consentShown };
  }

  const list = async (token: string, query = '') => callApi(server, `/me/consents${query}`, token);
  const withdraw = async (token: string, clientId: string) => callApi(server, `/me/consents/${encodeURIComponent(clientId)}`, token, { method: 'DELETE' });

  it('lists the applications the user authorized, with the scopes allowed and the dates', async () => {
    const before = new Date();
    await authorize(reportsConfig, 'agent1@demo.example');
    const firstParty = await registerApplication('Latchkey Console', { firstParty: true });
    await authorize(await discoverClient(server, firstParty, REDIRECT_URI), 'agent1@demo.example');
    const { access_token: token } = await loginAs(server, 'agent1@demo.example');

    const response = await list(token);
    expect(response.status).to.equal(200);
    const body = await response.json();
    expect(body).to.include({ count: 1, page: 1, page_size: 20, next: null, previous: null });
    const [consent] = body.results;
    expect(consent).to.include({ client_id: reports.clientId, client_name: 'Acme Reports' });
    expect(consent.scopes).to.deep.equal(['crm:read', 'email', 'openid']);
    expect(new Date(consent.created_at).getTime()).to.be.at.least(before.getTime() - 1000);
    expect(new Date(consent.updated_at).getTime()).to.be.at.least(new Date(consent.created_at).getTime());
  });

  it('withdraws a consent: the application\'s token stops at the next call and it must ask again', async () => {
    const { tokens } = await authorize(reportsConfig, 'agent2@demo.example');
    expect((await callApi(server, '/me', tokens.access_token)).status).to.equal(200);
    const { access_token: token } = await loginAs(server, 'agent2@demo.example');

    const response = await withdraw(token, reports.clientId);
    expect(response.status).to.equal(204);
    const refused = await callApi(server, '/me', tokens.access_token);
    expect(refused.status).to.equal(401);
    expect(refused.headers.get('www-authenticate')).to.match(/error="invalid_token"/);
    expect((await (await list(token)).json()).results).to.deep.equal([]);

    const audit = await queryRows<{ actor_id: string; resource_id: string; status: string }>(server.deps.orm.em,
      "select actor_id, resource_id, status from audit_log where action = 'consent.revoke'");
    expect(audit).to.have.length(1);
    expect(audit[0]).to.include({ resource_id: reports.clientId, status: 'success' });

    const again = await authorize(reportsConfig, 'agent2@demo.example');
    expect(again.consentShown, 'the consent is asked for again').to.equal(true);
  });

  it('answers 404 for an unknown client, one never authorized and a first-party one; 422 for a malformed id', async () => {
    const { access_token: token } = await loginAs(server, 'premium1@demo.example');
    const neverAuthorized = await registerApplication('Never Used');
    for (const clientId of ['lk_no_such_client', neverAuthorized.clientId, 'latchkey']) {
      const response = await withdraw(token, clientId);
      expect(response.status, clientId).to.equal(404);
      expect(response.headers.get('content-type')).to.match(/^application\/problem\+json/);
    }
    const malformed = await withdraw(token, 'x'.repeat(200));
    expect(malformed.status).to.equal(422);
    expect((await malformed.json()).errors[0].path).to.deep.equal(['params', 'client_id']);
  });

  it('does not let one user withdraw another user\'s consent', async () => {
    await authorize(reportsConfig, 'backoffice1@demo.example');
    const { access_token: other } = await loginAs(server, 'basic1@demo.example');
    expect((await withdraw(other, reports.clientId)).status).to.equal(404);
    const { access_token: owner } = await loginAs(server, 'backoffice1@demo.example');
    expect((await (await list(owner)).json()).count).to.equal(1);
  });

  it('pages the list and refuses a bad page size with 422', async () => {
    const { access_token: token } = await loginAs(server, 'agent1@demo.example');
    const paged = await (await list(token, '?page=1&page_size=1')).json();
    expect(paged.results).to.have.length(1);
    expect((await list(token, '?page_size=0')).status).to.equal(422);
  });

  it('needs a user: 401 without a token, 403 for a machine token', async () => {
    expect((await fetch(`${server.url}/api/v1/me/consents`)).status).to.equal(401);
    const machine = await createClient(server);
    const { access_token: token } = await clientCredentialsToken(server, { clientId: machine.clientId, secret: machine.secret });
    expect((await list(token)).status).to.equal(403);
    expect((await withdraw(token, reports.clientId)).status).to.equal(403);
  });
});
