import { expect } from 'chai';
import { exportJWK, generateKeyPair } from 'jose';
import * as oauth from 'oauth4webapi';

import { queryRows } from '../../../src/platform/database.ts';
import { REDIRECT_URI, codeExchangeForm, issueAuthorizationCode } from '../../support/grants.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { basicAuth, callApi, discoverWithOauth4webapi, postForm } from '../../support/oauth.ts';
import { DEMO_PASSWORD, loginAs, seedDemoUsers } from '../../support/users.ts';

const ROOT_PASSWORD = 'root-password-for-tests-1';

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function send(server: TestServer, token: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const response = await callApi(server, path, token, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : {} };
}

async function auditActions(server: TestServer, resourceId: string): Promise<string[]> {
  const rows = await queryRows<{ action: string }>(server.deps.orm.em, 'select action from audit_log where resource_id = ? order by occurred_at', [resourceId]);
  return rows.map((row) => row.action);
}

function clientCredentials(server: TestServer, clientId: string, secret: string, scope?: string) {
  return postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials', ...(scope ? { scope } : {}) }, { authorization: basicAuth(clientId, secret) });
}

const MACHINE_CLIENT = { client_name: 'reporting job', grant_types: ['client_credentials'], scope: 'crm:read crm:write' };

describe('/api/v1/clients (Applications)', () => {
  let server: TestServer;
  let root: string;
  let admin: string;
  let agent: string;
  let demoOrganizationId: string;
  let defaultOrganizationId: string;

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    admin = (await loginAs(server, 'admin1@demo.example')).access_token;
    agent = (await loginAs(server, 'agent1@demo.example')).access_token;
    demoOrganizationId = (await send(server, admin, 'GET', '/me')).body.organization.id;
    defaultOrganizationId = (await send(server, root, 'GET', '/me')).body.organization.id;
  });
  after(async () => { await server.close(); });

  describe('create', () => {
    it('creates a confidential client whose secret, shown once, works at the token endpoint', async () => {
      const created = await send(server, admin, 'POST', '/clients', MACHINE_CLIENT);
      expect(created.status).to.equal(201);
      expect(created.headers.get('cache-control')).to.equal('no-store');
      expect(created.body).to.include({
        client_name: 'reporting job', kind: 'application', organization_id: demoOrganizationId, first_party: false,
        token_endpoint_auth_method: 'client_secret_basic', scope: 'crm:read crm:write', application_type: 'web',
      });
      expect(created.body.response_types).to.deep.equal([]);
      expect(created.body.client_secret).to.be.a('string').with.length.greaterThan(40);

      const token = await clientCredentials(server, created.body.client_id, created.body.client_secret, 'crm:read');
      expect(token.status).to.equal(200);
      expect((await token.json()).scope).to.equal('crm:read');

      const read = await send(server, admin, 'GET', `/clients/${created.body.client_id}`);
      expect(read.status).to.equal(200);
      expect(read.body).not.to.have.property('client_secret');
      const list = await send(server, admin, 'GET', '/clients');
      expect(JSON.stringify(list.body)).not.to.include(created.body.client_secret);
      expect(JSON.stringify(list.body)).not.to.include('sha256$');
      expect(await auditActions(server, created.body.client_id)).to.deep.equal(['client.create']);
    });

    it('derives response_types from grant_types and gives OpenID scopes when none are named', async () => {
      const created = await send(server, admin, 'POST', '/clients', {
        client_name: 'web app', grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: ['https://app.example.com/callback', 'http://127.0.0.1:8080/cb', 'http://localhost/cb'],
        post_logout_redirect_uris: ['https://app.example.com/'], backchannel_logout_uri: 'https://app.example.com/logout',
      });
      expect(created.status).to.equal(201);
      expect(created.body.response_types).to.deep.equal(['code']);
      expect(created.body.scope).to.equal('openid profile email offline_access');
      expect(created.body.backchannel_logout_uri).to.equal('https://app.example.com/logout');
    });

    it('creates a public native client with a private-use scheme and loopback redirects, and no secret', async () => {
      const created = await send(server, admin, 'POST', '/clients', {
        client_name: 'mobile app', application_type: 'native', token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
        redirect_uris: ['com.example.app:/oauth2redirect', 'http://[::1]/cb', 'http://127.0.0.1:51000/cb'],
      });
      expect(created.status).to.equal(201);
      expect(created.body).not.to.have.property('client_secret');
      expect(created.body.token_endpoint_auth_method).to.equal('none');
    });

    it('creates a private_key_jwt client from its public keys, without a secret', async () => {
      const { publicKey } = await generateKeyPair('ES256', { extractable: true });
      const created = await send(server, admin, 'POST', '/clients', {
        ...MACHINE_CLIENT, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1' }] },
      });
      expect(created.status).to.equal(201);
      expect(created.body).not.to.have.property('client_secret');
      expect(created.body.jwks.keys[0].kid).to.equal('k1');
    });

    it('stores and answers RFC 7591 / OpenID Connect registration metadata; a private_key_jwt client keeps to its signing algorithm', async () => {
      const ecKey = await generateKeyPair('ES256', { extractable: true });
      const rsaKey = await generateKeyPair('RS256', { extractable: true });
      const metadata = {
        client_name: 'python worker', grant_types: ['authorization_code', 'client_credentials'], redirect_uris: ['https://worker.example.com/cb'],
        token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256',
        jwks: { keys: [{ ...(await exportJWK(ecKey.publicKey)), kid: 'ec' }, { ...(await exportJWK(rsaKey.publicKey)), kid: 'rsa' }] },
        backchannel_logout_uri: 'https://worker.example.com/logout', backchannel_logout_session_required: true,
        client_uri: 'https://worker.example.com', logo_uri: 'https://worker.example.com/logo.png',
        policy_uri: 'https://worker.example.com/privacy', tos_uri: 'https://worker.example.com/terms',
        initiate_login_uri: 'https://worker.example.com/login', contacts: ['ops@worker.example.com'],
        id_token_signed_response_alg: 'ES256', subject_type: 'public', default_max_age: 3600, require_auth_time: true,
        software_id: '4NRB1-0XZABZI9E6-5SM3R', software_version: '2.1.0', scope: 'openid crm:read',
      };
      const created = await send(server, admin, 'POST', '/clients', metadata);
      expect(created.status, JSON.stringify(created.body)).to.equal(201);
      const { jwks: _jwks, ...plain } = metadata;
      expect(created.body).to.deep.include(plain);
      expect(created.body.jwks.keys.map((key: { kid: string }) => key.kid)).to.deep.equal(['ec', 'rsa']);
      expect((await send(server, admin, 'GET', `/clients/${created.body.client_id}`)).body).to.deep.include(plain);

      const as = await discoverWithOauth4webapi(server);
      const oauthClient = { client_id: created.body.client_id };
      const signedWith = (key: CryptoKey, kid: string) => oauth.clientCredentialsGrantRequest(as, oauthClient, oauth.PrivateKeyJwt({ key, kid }),
        new URLSearchParams({ scope: 'crm:read' }), { [oauth.allowInsecureRequests]: true });
      const tokens = await oauth.processClientCredentialsResponse(as, oauthClient, await signedWith(ecKey.privateKey, 'ec'));
      expect(tokens.scope).to.equal('crm:read');
      const otherAlgorithm = await signedWith(rsaKey.privateKey, 'rsa');
      expect(otherAlgorithm.status, 'an RS256 assertion for an ES256 client').to.equal(401);
      expect((await otherAlgorithm.json()).error).to.equal('invalid_client');

      const changed = await send(server, admin, 'PATCH', `/clients/${created.body.client_id}`, {
        logo_uri: null, contacts: null, software_version: '2.2.0', require_auth_time: false, backchannel_logout_session_required: false,
      });
      expect(changed.status).to.equal(200);
      expect(changed.body).not.to.have.any.keys('logo_uri', 'contacts');
      expect(changed.body).to.include({ software_version: '2.2.0', require_auth_time: false, backchannel_logout_session_required: false, tos_uri: metadata.tos_uri });

      const withSecret = await send(server, admin, 'PATCH', `/clients/${created.body.client_id}`, { token_endpoint_auth_method: 'client_secret_basic', jwks: null });
      expect(withSecret.status, JSON.stringify(withSecret.body)).to.equal(200);
      expect(withSecret.body.client_secret).to.be.a('string');
      expect(withSecret.body).not.to.have.property('token_endpoint_auth_signing_alg');
    });

    it('answers the provider\'s defaults for the registration metadata a client left out', async () => {
      const created = await send(server, admin, 'POST', '/clients', MACHINE_CLIENT);
      expect(created.body).to.include({ backchannel_logout_session_required: false, require_auth_time: false, subject_type: 'public', id_token_signed_response_alg: 'RS256' });
      expect(created.body).not.to.have.any.keys('token_endpoint_auth_signing_alg', 'contacts', 'logo_uri', 'software_id', 'default_max_age');
    });

    it('refuses registration metadata the provider does not support as configured, with the field path', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ token_endpoint_auth_signing_alg: 'ES256' }, 'token_endpoint_auth_signing_alg'],
        [{ token_endpoint_auth_signing_alg: 'HS256' }, 'token_endpoint_auth_signing_alg'],
        [{ id_token_signed_response_alg: 'none' }, 'id_token_signed_response_alg'],
        [{ subject_type: 'pairwise' }, 'subject_type'],
        [{ sector_identifier_uri: 'https://app.example.com/sector.json' }, ''],
        [{ frontchannel_logout_uri: 'https://app.example.com/fc' }, ''],
        [{ logo_uri: 'http://cdn.example.com/logo.png' }, 'logo_uri'],
        [{ initiate_login_uri: 'http://127.0.0.1:4000/login' }, 'initiate_login_uri'],
        [{ contacts: ['not an address'] }, 'contacts'],
        [{ default_max_age: -1 }, 'default_max_age'],
        [{ require_auth_time: 'yes' }, 'require_auth_time'],
        [{ software_id: '' }, 'software_id'],
        [{ backchannel_logout_session_required: 1 }, 'backchannel_logout_session_required'],
      ];
      for (const [extra, field] of cases) {
        const answer = await send(server, admin, 'POST', '/clients', { ...MACHINE_CLIENT, ...extra });
        expect(answer.status, JSON.stringify(extra)).to.equal(422);
        const paths = (answer.body.errors as { path: (string | number)[] }[]).map((error) => error.path.join('.'));
        expect(paths.some((path) => path.startsWith(field ? `body.${field}` : 'body')), `${JSON.stringify(extra)}: ${paths.join(', ')}`).to.equal(true);
      }
    });

    it('refuses redirect URIs that are not exact, absolute, https or loopback http (422 with the field path)', async () => {
      const cases: [string, string][] = [
        ['web', 'http://app.example.com/cb'],
        ['web', 'javascript:alert(1)'],
        ['native', 'javascript:alert(1)'],
        ['web', 'data:text/html,hello'],
        ['web', 'https://app.example.com/cb#section'],
        ['web', 'https://*.example.com/cb'],
        ['web', '/relative/cb'],
        ['web', 'com.example.app:/cb'],
        ['native', 'myapp:/cb'],
        ['native', 'https://127.0.0.1/cb'],
        ['web', 'https://user:pass@app.example.com/cb'],
      ];
      for (const [applicationType, uri] of cases) {
        const answer = await send(server, admin, 'POST', '/clients', { client_name: 'x', application_type: applicationType, redirect_uris: [uri] });
        expect(answer.status, uri).to.equal(422);
        expect(answer.headers.get('content-type'), uri).to.match(/^application\/problem\+json/);
        expect(answer.body.errors[0].path, uri).to.deep.equal(['body', 'redirect_uris', 0]);
      }
      const logout = await send(server, admin, 'POST', '/clients', { ...MACHINE_CLIENT, post_logout_redirect_uris: ['http://evil.example/'] });
      expect(logout.body.errors[0].path).to.deep.equal(['body', 'post_logout_redirect_uris', 0]);
      const backchannel = await send(server, admin, 'POST', '/clients', { ...MACHINE_CLIENT, backchannel_logout_uri: 'http://evil.example/logout' });
      expect(backchannel.body.errors[0].path).to.deep.equal(['body', 'backchannel_logout_uri']);
    });

    it('refuses grants a client cannot hold: client_credentials or password for a public client, password without first_party', async () => {
      const publicMachine = await send(server, admin, 'POST', '/clients', { ...MACHINE_CLIENT, token_endpoint_auth_method: 'none' });
      expect(publicMachine.status).to.equal(422);
      expect(publicMachine.body.errors[0]).to.include({ code: 'public_client' });
      expect(publicMachine.body.errors[0].path).to.deep.equal(['body', 'grant_types']);
      const password = await send(server, admin, 'POST', '/clients', { client_name: 'x', grant_types: ['password'] });
      expect(password.status).to.equal(422);
      expect(password.body.errors[0].code).to.equal('password_not_allowed');
      const codeWithoutRedirect = await send(server, admin, 'POST', '/clients', { client_name: 'x', grant_types: ['authorization_code'] });
      expect(codeWithoutRedirect.status).to.equal(422);
      expect(codeWithoutRedirect.body.errors[0].path).to.deep.equal(['body', 'redirect_uris']);
    });

    it('refuses private_key_jwt without keys, and jwks together with jwks_uri', async () => {
      const noKeys = await send(server, admin, 'POST', '/clients', { ...MACHINE_CLIENT, token_endpoint_auth_method: 'private_key_jwt' });
      expect(noKeys.status).to.equal(422);
      expect(noKeys.body.errors[0].path).to.deep.equal(['body', 'jwks']);
      const { publicKey } = await generateKeyPair('ES256', { extractable: true });
      const both = await send(server, admin, 'POST', '/clients', {
        ...MACHINE_CLIENT, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [await exportJWK(publicKey)] }, jwks_uri: 'https://app.example.com/jwks',
      });
      expect(both.status).to.equal(422);
    });

    it('turns the provider\'s own refusals into 422 problems (a private key where public keys belong)', async () => {
      const { privateKey } = await generateKeyPair('ES256', { extractable: true });
      const answer = await send(server, admin, 'POST', '/clients', {
        ...MACHINE_CLIENT, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [await exportJWK(privateKey)] },
      });
      expect(answer.status).to.equal(422);
      expect(answer.body.errors[0]).to.include({ code: 'invalid_client_metadata' });
      expect(answer.body.errors[0].path).to.deep.equal(['body', 'jwks']);
    });

    it('refuses a missing name, wrong types, unknown fields, unknown scopes and oversized values with 422', async () => {
      const bodies: unknown[] = [
        {},
        { client_name: 7 },
        { client_name: 'x'.repeat(101) },
        { ...MACHINE_CLIENT, client_secret: 'chosen-by-me' },
        { ...MACHINE_CLIENT, grant_types: ['implicit'] },
        { ...MACHINE_CLIENT, grant_types: 'client_credentials' },
        { ...MACHINE_CLIENT, scope: 'crm:read admin:everything' },
        { ...MACHINE_CLIENT, response_types: ['code'] },
        { ...MACHINE_CLIENT, first_party: 'yes' },
        { ...MACHINE_CLIENT, redirect_uris: Array.from({ length: 21 }, (_, index) => `https://app.example.com/cb${index}`) },
        { ...MACHINE_CLIENT, redirect_uris: [`https://app.example.com/${'a'.repeat(2000)}`] },
        { ...MACHINE_CLIENT, organization_id: 'not-a-uuid' },
      ];
      for (const body of bodies) {
        const answer = await send(server, admin, 'POST', '/clients', body);
        expect(answer.status, JSON.stringify(body).slice(0, 100)).to.equal(422);
        expect(answer.body.errors, JSON.stringify(body).slice(0, 100)).to.be.an('array').with.length.greaterThan(0);
      }
    });

    it('lets a super admin create a client in another organization, and no one else', async () => {
      const placed = await send(server, root, 'POST', '/clients', { ...MACHINE_CLIENT, organization_id: demoOrganizationId });
      expect(placed.status).to.equal(201);
      expect(placed.body.organization_id).to.equal(demoOrganizationId);
      const own = await send(server, root, 'POST', '/clients', MACHINE_CLIENT);
      expect(own.body.organization_id).to.equal(defaultOrganizationId);
      const elsewhere = await send(server, admin, 'POST', '/clients', { ...MACHINE_CLIENT, organization_id: defaultOrganizationId });
      expect(elsewhere.status).to.equal(403);
      const unknown = await send(server, root, 'POST', '/clients', { ...MACHINE_CLIENT, organization_id: '00000000-0000-4000-8000-000000000000' });
      expect(unknown.status).to.equal(422);
      expect(unknown.body.errors[0].path).to.deep.equal(['body', 'organization_id']);
    });
  });

  describe('list and read', () => {
    it('lists the organization\'s clients, its users\' personal clients included, with paging, kind and search', async () => {
      const premium = await loginAs(server, 'premium1@demo.example');
      const personal = await send(server, premium.access_token, 'POST', '/me/clients', { client_name: 'premium key' });
      expect(personal.status).to.equal(201);
      await send(server, admin, 'POST', '/clients', { ...MACHINE_CLIENT, client_name: 'Findable Needle 100%' });

      const all = await send(server, admin, 'GET', '/clients?page_size=100');
      expect(all.status).to.equal(200);
      expect(all.body).to.include({ page: 1, page_size: 100, previous: null });
      const organizations = new Set(all.body.results.map((client: { organization_id: string }) => client.organization_id));
      expect([...organizations]).to.deep.equal([demoOrganizationId]);
      expect(all.body.results.map((client: { client_id: string }) => client.client_id)).to.include(personal.body.client_id);
      expect(all.body.results.map((client: { client_id: string }) => client.client_id)).not.to.include(server.admin.clientId);

      const personalOnly = await send(server, admin, 'GET', '/clients?kind=personal');
      expect(personalOnly.body.results.every((client: { kind: string }) => client.kind === 'personal')).to.equal(true);
      expect(personalOnly.body.results[0].owner_id).to.equal(premium.user.id);

      const found = await send(server, admin, 'GET', `/clients?search=${encodeURIComponent('needle 100%')}`);
      expect(found.body.count).to.equal(1);
      expect(found.body.results[0].client_name).to.equal('Findable Needle 100%');
      const byId = await send(server, admin, 'GET', `/clients?search=${personal.body.client_id.slice(3, 15)}`);
      expect(byId.body.results[0].client_id).to.equal(personal.body.client_id);
      // A LIKE wildcard in the search is a literal character, not a pattern.
      expect((await send(server, admin, 'GET', '/clients?search=%25')).body.count).to.equal(1);

      const paged = await send(server, admin, 'GET', '/clients?page_size=1');
      expect(paged.body.results).to.have.length(1);
      expect(paged.body.next).to.match(/[?&]page=2/);
      expect(paged.body.count).to.equal(all.body.count);

      // Another organization's filter finds nothing for an org admin.
      expect((await send(server, admin, 'GET', `/clients?organization_id=${defaultOrganizationId}`)).body.count).to.equal(0);
    });

    it('lets a super admin see every organization\'s clients and filter by organization_id', async () => {
      const everything = await send(server, root, 'GET', '/clients?page_size=100');
      const organizations = new Set(everything.body.results.map((client: { organization_id: string | null }) => client.organization_id));
      expect(organizations.has(demoOrganizationId) && organizations.has(defaultOrganizationId)).to.equal(true);
      const demo = await send(server, root, 'GET', `/clients?page_size=100&organization_id=${demoOrganizationId}`);
      expect(demo.body.count).to.be.greaterThan(0);
      expect(demo.body.results.every((client: { organization_id: string }) => client.organization_id === demoOrganizationId)).to.equal(true);
    });

    it('validates the list query (422)', async () => {
      for (const query of ['page=0', 'page_size=101', 'page=abc', 'kind=robot', 'organization_id=nope', `search=${'x'.repeat(101)}`]) {
        expect((await send(server, admin, 'GET', `/clients?${query}`)).status, query).to.equal(422);
      }
    });
  });

  describe('access', () => {
    it('answers 403 auth.forbidden to an agent on every endpoint', async () => {
      const target = (await send(server, admin, 'POST', '/clients', MACHINE_CLIENT)).body.client_id;
      const calls: [string, string, unknown?][] = [
        ['GET', '/clients'],
        ['POST', '/clients', MACHINE_CLIENT],
        ['GET', `/clients/${target}`],
        ['PATCH', `/clients/${target}`, { client_name: 'mine now' }],
        ['DELETE', `/clients/${target}`],
        ['POST', `/clients/${target}/rotate-secret`],
        ['POST', '/clients/initial-access-tokens', {}],
      ];
      for (const [method, path, body] of calls) {
        const answer = await send(server, agent, method, path, body);
        expect(answer.status, `${method} ${path}`).to.equal(403);
        expect(answer.body.code, `${method} ${path}`).to.equal('auth.forbidden');
      }
      expect((await send(server, admin, 'GET', `/clients/${target}`)).body.client_name).to.equal('reporting job');
    });

    it('answers 401 without a token', async () => {
      const response = await fetch(`${server.url}/api/v1/clients`);
      expect(response.status).to.equal(401);
      expect(response.headers.get('www-authenticate')).to.match(/^Bearer/);
    });

    it('answers 404, not 403, for a client of another organization on every endpoint, as for an unknown one', async () => {
      const theirs = (await send(server, root, 'POST', '/clients', MACHINE_CLIENT)).body;
      for (const clientId of [theirs.client_id, 'lk_unknown', server.admin.clientId]) {
        const calls: [string, string, unknown?][] = [
          ['GET', `/clients/${clientId}`],
          ['PATCH', `/clients/${clientId}`, { client_name: 'taken over' }],
          ['DELETE', `/clients/${clientId}`],
          ['POST', `/clients/${clientId}/rotate-secret`],
        ];
        for (const [method, path, body] of calls) {
          const answer = await send(server, admin, method, path, body);
          expect(answer.status, `${method} ${path}`).to.equal(404);
          expect(answer.body.code).to.equal('resource.not_found');
        }
      }
      expect((await clientCredentials(server, theirs.client_id, theirs.client_secret)).status).to.equal(200);
      expect((await send(server, admin, 'GET', `/clients/${'x'.repeat(129)}`)).status).to.equal(422);
    });
  });

  describe('update', () => {
    it('changes metadata; narrowing the scope ends the client\'s tokens, renaming does not', async () => {
      const premium = await loginAs(server, 'premium1@demo.example');
      const personal = (await send(server, premium.access_token, 'POST', '/me/clients', { client_name: 'script', scope: 'crm:read crm:write' })).body;
      const machineToken = (await (await clientCredentials(server, personal.client_id, personal.client_secret)).json()).access_token;
      expect((await callApi(server, '/me', machineToken)).status).to.equal(200);

      const renamed = await send(server, admin, 'PATCH', `/clients/${personal.client_id}`, { client_name: 'nightly script' });
      expect(renamed.status).to.equal(200);
      expect(renamed.body).to.include({ client_name: 'nightly script', kind: 'personal' });
      expect(renamed.body).not.to.have.property('client_secret');
      expect((await callApi(server, '/me', machineToken)).status).to.equal(200);

      const narrowed = await send(server, admin, 'PATCH', `/clients/${personal.client_id}`, { scope: 'crm:read' });
      expect(narrowed.body.scope).to.equal('crm:read');
      expect((await callApi(server, '/me', machineToken)).status).to.equal(401);
      expect((await clientCredentials(server, personal.client_id, personal.client_secret, 'crm:write')).status).to.equal(400);
      expect((await clientCredentials(server, personal.client_id, personal.client_secret, 'crm:read')).status).to.equal(200);
      expect(await auditActions(server, personal.client_id)).to.deep.equal(['client.create', 'client.update', 'client.update']);
    });

    it('answers a new secret once when a public client becomes confidential, and drops it when it turns public', async () => {
      const created = (await send(server, admin, 'POST', '/clients', {
        client_name: 'spa', token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], redirect_uris: ['https://spa.example.com/cb'],
      })).body;
      const confidential = await send(server, admin, 'PATCH', `/clients/${created.client_id}`, {
        token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code', 'client_credentials'],
      });
      expect(confidential.status).to.equal(200);
      expect(confidential.body.client_secret).to.be.a('string');
      expect((await clientCredentials(server, created.client_id, confidential.body.client_secret)).status).to.equal(200);
      const again = await send(server, admin, 'PATCH', `/clients/${created.client_id}`, { client_name: 'spa 2' });
      expect(again.body).not.to.have.property('client_secret');

      const refused = await send(server, admin, 'PATCH', `/clients/${created.client_id}`, { token_endpoint_auth_method: 'none' });
      expect(refused.status).to.equal(422);
      const madePublic = await send(server, admin, 'PATCH', `/clients/${created.client_id}`, { token_endpoint_auth_method: 'none', grant_types: ['authorization_code'] });
      expect(madePublic.status).to.equal(200);
      expect((await clientCredentials(server, created.client_id, confidential.body.client_secret)).status).to.equal(401);
      const row = await queryRows<{ metadata: Record<string, unknown> }>(server.deps.orm.em, 'select metadata from oauth_client where client_id = ?', [created.client_id]);
      expect(row[0]!.metadata).not.to.have.property('client_secret');
    });

    it('removes optional metadata with null', async () => {
      const created = (await send(server, admin, 'POST', '/clients', { ...MACHINE_CLIENT, backchannel_logout_uri: 'https://app.example.com/bc' })).body;
      const cleared = await send(server, admin, 'PATCH', `/clients/${created.client_id}`, { backchannel_logout_uri: null });
      expect(cleared.status).to.equal(200);
      expect(cleared.body).not.to.have.property('backchannel_logout_uri');
    });

    it('refuses bad input: nothing to change, the secret, unsafe redirects, wrong types, oversized names', async () => {
      const created = (await send(server, admin, 'POST', '/clients', MACHINE_CLIENT)).body;
      const bodies: unknown[] = [
        {},
        { client_secret: 'mine' },
        { redirect_uris: ['http://evil.example/cb'], grant_types: ['authorization_code'] },
        { token_endpoint_auth_method: 'none' },
        { client_name: 42 },
        { client_name: 'x'.repeat(101) },
        { grant_types: ['password'] },
        { organization_id: defaultOrganizationId },
      ];
      for (const body of bodies) {
        expect((await send(server, admin, 'PATCH', `/clients/${created.client_id}`, body)).status, JSON.stringify(body)).to.equal(422);
      }
      expect((await send(server, admin, 'GET', `/clients/${created.client_id}`)).body.grant_types).to.deep.equal(['client_credentials']);
    });

    it('lets only a super admin make a client first-party, which may then use the password grant', async () => {
      const created = (await send(server, admin, 'POST', '/clients', MACHINE_CLIENT)).body;
      const byAdmin = await send(server, admin, 'PATCH', `/clients/${created.client_id}`, { first_party: true });
      expect(byAdmin.status).to.equal(403);
      expect((await send(server, admin, 'POST', '/clients', { ...MACHINE_CLIENT, first_party: true })).status).to.equal(403);

      const byRoot = await send(server, root, 'PATCH', `/clients/${created.client_id}`, { first_party: true, grant_types: ['client_credentials', 'password'] });
      expect(byRoot.status).to.equal(200);
      expect(byRoot.body.first_party).to.equal(true);
      const signIn = await postForm(`${server.url}/oauth/token`, {
        grant_type: 'password', username: 'agent1@demo.example', password: DEMO_PASSWORD, scope: 'crm:read',
      }, { authorization: basicAuth(created.client_id, created.client_secret) });
      expect(signIn.status).to.equal(200);

      // The org admin may still change other metadata of the first-party client of their organization.
      expect((await send(server, admin, 'PATCH', `/clients/${created.client_id}`, { client_name: 'portal' })).status).to.equal(200);
    });

    it('refuses to change, rotate or delete the built-in first-party client (409)', async () => {
      expect((await send(server, root, 'PATCH', '/clients/latchkey', { client_name: 'mine' })).body.code).to.equal('client.builtin');
      expect((await send(server, root, 'DELETE', '/clients/latchkey')).status).to.equal(409);
      expect((await send(server, root, 'POST', '/clients/latchkey/rotate-secret')).status).to.equal(409);
    });
  });

  describe('rotate-secret', () => {
    it('answers a new secret; the old one fails and tokens minted with it stop at the next call', async () => {
      const premium = await loginAs(server, 'premium1@demo.example');
      const personal = (await send(server, premium.access_token, 'POST', '/me/clients', { client_name: 'rotating' })).body;
      const oldToken = (await (await clientCredentials(server, personal.client_id, personal.client_secret)).json()).access_token;
      expect((await callApi(server, '/me', oldToken)).status).to.equal(200);

      const rotated = await send(server, admin, 'POST', `/clients/${personal.client_id}/rotate-secret`);
      expect(rotated.status).to.equal(200);
      expect(rotated.headers.get('cache-control')).to.equal('no-store');
      expect(rotated.body.client_id).to.equal(personal.client_id);
      expect(rotated.body.client_secret).to.not.equal(personal.client_secret);

      expect((await clientCredentials(server, personal.client_id, personal.client_secret)).status).to.equal(401);
      expect((await callApi(server, '/me', oldToken)).status).to.equal(401);
      const fresh = (await (await clientCredentials(server, personal.client_id, rotated.body.client_secret)).json()).access_token;
      expect((await callApi(server, '/me', fresh)).status).to.equal(200);
      expect(await auditActions(server, personal.client_id)).to.include('client.rotate_secret');
    });

    it('answers 409 client.no_secret for a client without a secret', async () => {
      const publicClient = (await send(server, admin, 'POST', '/clients', {
        client_name: 'spa', token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], redirect_uris: ['https://spa.example.com/cb'],
      })).body;
      const answer = await send(server, admin, 'POST', `/clients/${publicClient.client_id}/rotate-secret`);
      expect(answer.status).to.equal(409);
      expect(answer.body.code).to.equal('client.no_secret');
    });
  });

  describe('delete', () => {
    it('deletes a client: its access and refresh tokens and its grants end', async () => {
      const created = (await send(server, admin, 'POST', '/clients', {
        client_name: 'code client', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [REDIRECT_URI],
        scope: 'openid offline_access crm:read',
      })).body;
      const agentUser = await loginAs(server, 'agent1@demo.example');
      const issued = await issueAuthorizationCode(server, { clientId: created.client_id, userId: agentUser.user.id, scope: 'openid offline_access', apiScope: 'crm:read' });
      const exchanged = await postForm(`${server.url}/oauth/token`, codeExchangeForm(issued, { resource: server.config.apiAudience }), {
        authorization: basicAuth(created.client_id, created.client_secret),
      });
      expect(exchanged.status).to.equal(200);
      const tokens = await exchanged.json();
      expect(tokens.refresh_token).to.be.a('string');
      expect((await callApi(server, '/me', tokens.access_token)).status).to.equal(200);
      const artefacts = () => queryRows<{ model: string }>(server.deps.orm.em, 'select model from oidc_artifact where client_id = ?', [created.client_id]);
      expect((await artefacts()).map((row) => row.model)).to.include.members(['Grant', 'RefreshToken']);

      const deleted = await send(server, admin, 'DELETE', `/clients/${created.client_id}`);
      expect(deleted.status).to.equal(204);
      expect((await callApi(server, '/me', tokens.access_token)).status).to.equal(401);
      expect(await artefacts()).to.deep.equal([]);
      const refreshed = await postForm(`${server.url}/oauth/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, {
        authorization: basicAuth(created.client_id, created.client_secret),
      });
      expect(refreshed.status).to.equal(401);
      expect(await server.deps.revocation.check({ grantId: issued.grantId })).to.equal('grant');

      expect((await send(server, admin, 'GET', `/clients/${created.client_id}`)).status).to.equal(404);
      expect((await send(server, admin, 'DELETE', `/clients/${created.client_id}`)).status).to.equal(404);
      expect(await auditActions(server, created.client_id)).to.deep.equal(['client.create', 'client.delete']);
    });

    it('deletes a user\'s personal client of the organization; its machine tokens stop', async () => {
      const premium = await loginAs(server, 'premium1@demo.example');
      const personal = (await send(server, premium.access_token, 'POST', '/me/clients', { client_name: 'to be revoked' })).body;
      const token = (await (await clientCredentials(server, personal.client_id, personal.client_secret)).json()).access_token;
      expect((await send(server, admin, 'DELETE', `/clients/${personal.client_id}`)).status).to.equal(204);
      expect((await callApi(server, '/me', token)).status).to.equal(401);
      expect((await clientCredentials(server, personal.client_id, personal.client_secret)).status).to.equal(401);
    });
  });
});
