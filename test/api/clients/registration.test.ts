import { expect } from 'chai';
import { exportJWK, generateKeyPair } from 'jose';
import * as oauth from 'oauth4webapi';

import { queryRows } from '../../../src/platform/database.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { basicAuth, callApi, discoverWithOauth4webapi, postForm } from '../../support/oauth.ts';
import { loginAs, postJson, seedDemoUsers } from '../../support/users.ts';

const ROOT_PASSWORD = 'root-password-for-tests-1';
const INSECURE = { [oauth.allowInsecureRequests]: true };
const MACHINE = { client_name: 'registered job', grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'crm:read' };

async function register(server: TestServer, metadata: Record<string, unknown>, initialAccessToken?: string): Promise<Response> {
  return fetch(`${server.url}/oauth/reg`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(initialAccessToken ? { authorization: `Bearer ${initialAccessToken}` } : {}) },
    body: JSON.stringify(metadata),
  });
}

describe('dynamic client registration (RFC 7591, RFC 7592) at /oauth/reg', () => {
  let server: TestServer;
  let admin: string;
  let demoOrganizationId: string;

  async function initialAccessToken(body: Record<string, unknown> = {}): Promise<string> {
    const response = await postJson(server, '/clients/initial-access-tokens', body, admin);
    expect(response.status).to.equal(201);
    return (await response.json()).initial_access_token;
  }

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    const session = await loginAs(server, 'admin1@demo.example');
    admin = session.access_token;
    demoOrganizationId = (await (await callApi(server, '/me', admin)).json()).organization.id;
  });
  after(async () => { await server.close(); });

  it('is advertised in discovery', async () => {
    const as = await discoverWithOauth4webapi(server);
    expect(as.registration_endpoint).to.equal(`${server.issuer}/oauth/reg`);
  });

  it('answers 401 without an initial access token, or with an unknown one', async () => {
    const anonymous = await register(server, MACHINE);
    expect(anonymous.status).to.equal(401);
    expect(anonymous.headers.get('www-authenticate')).to.match(/^Bearer /);
    const forged = await register(server, MACHINE, 'not-a-real-token');
    expect(forged.status).to.equal(401);
    expect((await forged.json()).error).to.equal('invalid_token');
  });

  it('issues an initial access token once, with its expiry, and refuses bad lifetimes', async () => {
    const before = Date.now();
    const response = await postJson(server, '/clients/initial-access-tokens', {}, admin);
    expect(response.status).to.equal(201);
    expect(response.headers.get('cache-control')).to.equal('no-store');
    const issued = await response.json();
    expect(issued.initial_access_token).to.be.a('string');
    const expiresIn = (new Date(issued.expires_at).getTime() - before) / 1000;
    expect(expiresIn).to.be.within(3595, 3605);

    const week = await (await postJson(server, '/clients/initial-access-tokens', { expires_in: 7 * 24 * 3600 }, admin)).json();
    expect(new Date(week.expires_at).getTime() - Date.now()).to.be.greaterThan(6.9 * 24 * 3600 * 1000);
    for (const body of [{ expires_in: 31 * 24 * 3600 }, { expires_in: 'soon' }, { expires_in: 10 }, { expires_in: 1.5 }, { scope: 'x' }]) {
      expect((await postJson(server, '/clients/initial-access-tokens', body, admin)).status, JSON.stringify(body)).to.equal(422);
    }
    const stored = await queryRows<{ organization_id: string }>(server.deps.orm.em, `select organization_id from oidc_artifact where model = 'InitialAccessToken' and id = ?`, [issued.initial_access_token]);
    expect(stored[0]!.organization_id).to.equal(demoOrganizationId);
    const audit = await queryRows<{ actor_id: string; organization_id: string; details: Record<string, unknown> }>(server.deps.orm.em,
      `select actor_id, organization_id, details from audit_log where action = 'client.issue_initial_access_token' order by occurred_at limit 1`);
    expect(audit[0]).to.include({ organization_id: demoOrganizationId });
    expect(JSON.stringify(audit[0])).not.to.include(issued.initial_access_token);
  });

  it('lets a super admin issue a token for another organization, and refuses that to an org admin (403)', async () => {
    const root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    const issued = await postJson(server, '/clients/initial-access-tokens', { organization_id: demoOrganizationId }, root);
    expect(issued.status).to.equal(201);
    const registered = await (await register(server, MACHINE, (await issued.json()).initial_access_token)).json();
    expect((await (await callApi(server, `/clients/${registered.client_id}`, admin)).json()).organization_id).to.equal(demoOrganizationId);

    const rootOrganizationId = (await (await callApi(server, '/me', root)).json()).organization.id;
    expect((await postJson(server, '/clients/initial-access-tokens', { organization_id: rootOrganizationId }, admin)).status).to.equal(403);
    const rootToken = await (await postJson(server, '/clients/initial-access-tokens', {}, root)).json();
    const rootClient = await (await register(server, MACHINE, rootToken.initial_access_token)).json();
    // A client registered with another organization's token is invisible to this organization's admin.
    expect((await callApi(server, `/clients/${rootClient.client_id}`, admin)).status).to.equal(404);
  });

  it('registers a client through oauth4webapi whose returned secret (plaintext, stored hashed) works at the token endpoint', async () => {
    const as = await discoverWithOauth4webapi(server);
    const response = await oauth.dynamicClientRegistrationRequest(as, MACHINE, { initialAccessToken: await initialAccessToken(), ...INSECURE });
    const registered = await oauth.processDynamicClientRegistrationResponse(response);
    expect(registered.client_id).to.match(/^lk_/);
    expect(registered.client_secret).to.be.a('string').and.not.match(/^sha256\$/);
    expect(registered.registration_access_token).to.be.a('string');

    const tokenResponse = await oauth.clientCredentialsGrantRequest(as, registered, oauth.ClientSecretBasic(registered.client_secret as string),
      new URLSearchParams({ scope: 'crm:read' }), INSECURE);
    const tokens = await oauth.processClientCredentialsResponse(as, registered, tokenResponse);
    expect(tokens.access_token).to.be.a('string');

    const stored = await queryRows<{ secret: string; kind: string; organization_id: string }>(server.deps.orm.em,
      `select metadata->>'client_secret' as secret, kind, organization_id from oauth_client where client_id = ?`, [registered.client_id]);
    expect(stored[0]!.secret).to.match(/^sha256\$/);
    expect(stored[0]).to.include({ kind: 'dynamic', organization_id: demoOrganizationId });
  });

  it('keeps the registration metadata a strict client sends (a private_key_jwt client with token_endpoint_auth_signing_alg), as the admin API does', async () => {
    const { privateKey, publicKey } = await generateKeyPair('PS256', { extractable: true });
    const metadata = {
      client_name: 'python worker', grant_types: ['client_credentials'], scope: 'crm:read',
      token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'PS256',
      jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'ps', alg: 'PS256', use: 'sig' }] },
      backchannel_logout_uri: 'https://worker.example.com/logout', backchannel_logout_session_required: true,
      client_uri: 'https://worker.example.com', tos_uri: 'https://worker.example.com/terms', contacts: ['ops@worker.example.com'],
      default_max_age: 600, require_auth_time: true, software_id: 'worker', software_version: '1.4.2',
    };
    const as = await discoverWithOauth4webapi(server);
    const response = await oauth.dynamicClientRegistrationRequest(as, metadata, { initialAccessToken: await initialAccessToken(), ...INSECURE });
    const registered = await oauth.processDynamicClientRegistrationResponse(response);
    const { jwks: _jwks, ...plain } = metadata;
    expect(registered).to.deep.include(plain);
    expect((await (await callApi(server, `/clients/${registered.client_id}`, admin)).json())).to.deep.include(plain);

    const tokenResponse = await oauth.clientCredentialsGrantRequest(as, registered, oauth.PrivateKeyJwt({ key: privateKey, kid: 'ps' }), new URLSearchParams(), INSECURE);
    expect((await oauth.processClientCredentialsResponse(as, registered, tokenResponse)).scope).to.equal('crm:read');
  });

  it('lists the registered client in /api/v1/clients with kind dynamic, in the issuing admin\'s organization', async () => {
    const registered = await (await register(server, { ...MACHINE, client_name: 'listed one' }, await initialAccessToken())).json();
    const list = await (await callApi(server, '/clients?kind=dynamic&page_size=100', admin)).json();
    const entry = list.results.find((client: { client_id: string }) => client.client_id === registered.client_id);
    expect(entry).to.include({ kind: 'dynamic', organization_id: demoOrganizationId, client_name: 'listed one' });
    expect(entry).not.to.have.property('client_secret');
    const audit = await queryRows<{ action: string; organization_id: string }>(server.deps.orm.em,
      'select action, organization_id from audit_log where resource_id = ?', [registered.client_id]);
    expect(audit).to.deep.equal([{ action: 'client.register', organization_id: demoOrganizationId }]);
  });

  it('accepts an initial access token once: the second registration answers 401 invalid_token', async () => {
    const token = await initialAccessToken();
    expect((await register(server, MACHINE, token)).status).to.equal(201);
    const again = await register(server, MACHINE, token);
    expect(again.status).to.equal(401);
    expect((await again.json()).error).to.equal('invalid_token');
  });

  it('lets exactly one of two racing registrations with the same token through', async () => {
    const token = await initialAccessToken();
    const statuses = (await Promise.all([register(server, MACHINE, token), register(server, MACHINE, token), register(server, MACHINE, token)])).map((response) => response.status);
    expect(statuses.filter((status) => status === 201)).to.have.length(1);
    expect(statuses.filter((status) => status === 401)).to.have.length(2);
  });

  it('holds registrations to Latchkey\'s rules without spending the token on a refusal', async () => {
    const token = await initialAccessToken();
    const refusals: [Record<string, unknown>, string][] = [
      [{ ...MACHINE, first_party: true }, 'invalid_client_metadata'],
      [{ ...MACHINE, grant_types: ['password'] }, 'invalid_client_metadata'],
      [{ ...MACHINE, token_endpoint_auth_method: 'none' }, 'invalid_client_metadata'],
      [{ client_name: 'web', redirect_uris: ['http://evil.example/cb'] }, 'invalid_redirect_uri'],
      [{ client_name: 'web', redirect_uris: ['https://app.example.com/cb#x'] }, 'invalid_redirect_uri'],
      [{ client_name: 'native', application_type: 'native', redirect_uris: ['javascript:alert(1)'] }, 'invalid_redirect_uri'],
      [{ ...MACHINE, scope: 'crm:read superpowers' }, 'invalid_client_metadata'],
      [{ ...MACHINE, client_name: 'x'.repeat(101) }, 'invalid_client_metadata'],
      [{ ...MACHINE, sector_identifier_uri: 'https://app.example.com/sector.json' }, 'invalid_client_metadata'],
      [{ ...MACHINE, logo_uri: 'http://cdn.example.com/logo.png' }, 'invalid_client_metadata'],
      [{ ...MACHINE, software_version: 'v'.repeat(201) }, 'invalid_client_metadata'],
      [{ ...MACHINE, token_endpoint_auth_signing_alg: 'PS256' }, 'invalid_client_metadata'],
    ];
    for (const [metadata, error] of refusals) {
      const response = await register(server, metadata, token);
      expect(response.status, JSON.stringify(metadata)).to.equal(400);
      expect((await response.json()).error, JSON.stringify(metadata)).to.equal(error);
    }
    const accepted = await register(server, { client_name: 'web', redirect_uris: ['https://app.example.com/cb'] }, token);
    expect(accepted.status).to.equal(201);
    const body = await accepted.json();
    expect(body.first_party).to.equal(undefined);
    // No scope named: OpenID's, never the provider's "every scope" (RFC 7591 section 2).
    expect(body.scope).to.equal('openid profile email');
  });

  it('never shows the secret again on an RFC 7592 read or update; the secret keeps working; delete removes the client', async () => {
    const registered = await (await register(server, MACHINE, await initialAccessToken())).json();
    const uri = registered.registration_client_uri as string;
    expect(uri).to.equal(`${server.issuer}/oauth/reg/${registered.client_id}`);

    const read = await fetch(uri, { headers: { authorization: `Bearer ${registered.registration_access_token}` } });
    expect(read.status).to.equal(200);
    const readBody = await read.json();
    expect(readBody.client_id).to.equal(registered.client_id);
    expect(readBody).not.to.have.property('client_secret');
    expect(JSON.stringify(readBody)).not.to.include('sha256$');

    const update = await fetch(uri, {
      method: 'PUT',
      headers: { authorization: `Bearer ${registered.registration_access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...MACHINE, client_id: registered.client_id, client_name: 'renamed job' }),
    });
    expect(update.status).to.equal(200);
    const updated = await update.json();
    expect(updated.client_name).to.equal('renamed job');
    expect(updated).not.to.have.property('client_secret');
    expect(updated.registration_access_token).to.not.equal(registered.registration_access_token);

    const unsafe = await fetch(uri, {
      method: 'PUT',
      headers: { authorization: `Bearer ${updated.registration_access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...MACHINE, client_id: registered.client_id, first_party: true }),
    });
    expect(unsafe.status).to.equal(400);
    expect((await unsafe.json()).error_description).to.match(/first_party/);

    const token = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials', scope: 'crm:read' }, {
      authorization: basicAuth(registered.client_id, registered.client_secret),
    });
    expect(token.status).to.equal(200);
    expect((await (await callApi(server, `/clients/${registered.client_id}`, admin)).json())).to.include({ client_name: 'renamed job', kind: 'dynamic', organization_id: demoOrganizationId });

    const removed = await fetch(uri, { method: 'DELETE', headers: { authorization: `Bearer ${updated.registration_access_token}` } });
    expect(removed.status).to.equal(204);
    expect((await callApi(server, `/clients/${registered.client_id}`, admin)).status).to.equal(404);
  });

  it('lets an admin delete a registered client through /api/v1/clients, ending its registration access token', async () => {
    const registered = await (await register(server, MACHINE, await initialAccessToken())).json();
    expect((await callApi(server, `/clients/${registered.client_id}`, admin, { method: 'DELETE' })).status).to.equal(204);
    const read = await fetch(registered.registration_client_uri, { headers: { authorization: `Bearer ${registered.registration_access_token}` } });
    expect(read.status).to.equal(401);
  });

  it('refuses an initial access token made without Latchkey\'s registration policy (and so without its rules)', async () => {
    const bare = await new server.deps.providers.current.InitialAccessToken({ expiresIn: 600 }).save();
    const response = await register(server, { ...MACHINE, first_party: true }, bare);
    expect(response.status).to.equal(401);
    expect((await response.json()).error).to.equal('invalid_token');
    // The provider's router also takes another case and a trailing slash.
    const variant = await fetch(`${server.url}/OAuth/Reg/`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${bare}` }, body: JSON.stringify({ ...MACHINE, first_party: true }),
    });
    expect(variant.status).to.equal(401);
  });

  it('refuses an expired initial access token', async () => {
    const token = await initialAccessToken({ expires_in: 60 });
    await server.deps.orm.em.getConnection().execute(`update oidc_artifact set expires_at = now() - interval '1 second' where model = 'InitialAccessToken' and id = ?`, [token]);
    expect((await register(server, MACHINE, token)).status).to.equal(401);
  });
});
