import { expect } from 'chai';
import { jwtVerify, createRemoteJWKSet, decodeProtectedHeader } from 'jose';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';

import { startTestServer, type TestServer } from '../support/harness.ts';
import { API_SCOPES } from '../../src/services/scopes.ts';
import { basicAuth, callApi, clientCredentialsToken, createClient, discoverWithOauth4webapi, postForm } from '../support/oauth.ts';

for (const format of ['opaque', 'jwt'] as const) {
  describe(`client_credentials with ${format} access tokens`, () => {
    let server: TestServer;

    before(async () => { server = await startTestServer({ ACCESS_TOKEN_FORMAT: format }); });
    after(async () => { await server.close(); });

    it('is discovered by openid-client, which gets a token with client_secret_basic', async () => {
      const config = await client.discovery(new URL(server.issuer), server.admin.clientId, undefined,
        client.ClientSecretBasic(server.admin.clientSecret), { execute: [client.allowInsecureRequests] });
      expect(config.serverMetadata().token_endpoint).to.equal(`${server.issuer}/oauth/token`);
      const tokens = await client.clientCredentialsGrant(config, { scope: 'crm:read' });
      expect(tokens.token_type.toLowerCase()).to.equal('bearer');
      expect(tokens.scope).to.equal('crm:read');
      const me = await callApi(server, '/me', tokens.access_token);
      expect(me.status).to.equal(200);
      expect((await me.json()).email).to.equal('root@example.com');
    });

    it('gets a token through openid-client with client_secret_post', async () => {
      const config = await client.discovery(new URL(server.issuer), server.admin.clientId, undefined,
        client.ClientSecretPost(server.admin.clientSecret), { execute: [client.allowInsecureRequests] });
      const tokens = await client.clientCredentialsGrant(config, { scope: 'crm:read users:read' });
      expect(tokens.scope?.split(' ').sort()).to.deep.equal(['crm:read', 'users:read']);
    });

    for (const [name, auth] of [['client_secret_basic', oauth.ClientSecretBasic], ['client_secret_post', oauth.ClientSecretPost]] as const) {
      it(`is discovered by oauth4webapi, which gets a token with ${name} accepted at /api/v1/me`, async () => {
        const as = await discoverWithOauth4webapi(server);
        const oauthClient = { client_id: server.admin.clientId };
        const response = await oauth.clientCredentialsGrantRequest(as, oauthClient, auth(server.admin.clientSecret),
          new URLSearchParams({ scope: 'crm:read' }), { [oauth.allowInsecureRequests]: true });
        const result = await oauth.processClientCredentialsResponse(as, oauthClient, response);
        expect(result.access_token).to.be.a('string');
        const me = await callApi(server, '/me', result.access_token);
        expect(me.status).to.equal(200);
      });
    }

    if (format === 'jwt') {
      it('issues RFC 9068 JWTs that verify against JWKS with jose and oauth4webapi', async () => {
        const { access_token: token } = await clientCredentialsToken(server, { scope: 'crm:read' });
        expect(decodeProtectedHeader(token)).to.include({ typ: 'at+jwt', alg: 'ES256' });
        const jwks = createRemoteJWKSet(new URL(`${server.issuer}/oauth/jwks`));
        const { payload } = await jwtVerify(token, jwks, { issuer: server.issuer, audience: `${server.issuer}/api`, typ: 'at+jwt' });
        expect(payload.client_id).to.equal(server.admin.clientId);
        expect(payload.user_id).to.equal(server.admin.userId);

        const as = await discoverWithOauth4webapi(server);
        const request = new Request(`${server.issuer}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
        const claims = await oauth.validateJwtAccessToken(as, request, `${server.issuer}/api`, { [oauth.allowInsecureRequests]: true });
        expect(claims.scope).to.equal('crm:read');
      });
    } else {
      it('issues opaque tokens that are not JWTs', async () => {
        const { access_token: token } = await clientCredentialsToken(server);
        expect(token.split('.')).to.have.length(1);
      });
    }
  });
}

describe('token endpoint errors (RFC 6749 section 5.2)', () => {
  let server: TestServer;

  before(async () => { server = await startTestServer(); });
  after(async () => { await server.close(); });

  async function expectOAuthError(response: Response, status: number, error: string) {
    expect(response.status).to.equal(status);
    const body = await response.json();
    expect(body.error).to.equal(error);
    expect(response.headers.get('cache-control')).to.equal('no-store');
  }

  it('answers invalid_client for a wrong secret', async () => {
    const response = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials' },
      { authorization: basicAuth(server.admin.clientId, 'not-the-secret') });
    await expectOAuthError(response, 401, 'invalid_client');
    expect(response.headers.get('www-authenticate')).to.match(/^Basic/);
  });

  it('answers invalid_client for an unknown client', async () => {
    const response = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials' },
      { authorization: basicAuth('lk_unknown', 'whatever') });
    await expectOAuthError(response, 401, 'invalid_client');
  });

  it('answers unsupported_grant_type for a grant the server does not know', async () => {
    const response = await postForm(`${server.url}/oauth/token`, { grant_type: 'urn:example:unknown' },
      { authorization: basicAuth(server.admin.clientId, server.admin.clientSecret) });
    await expectOAuthError(response, 400, 'unsupported_grant_type');
  });

  it('answers unauthorized_client for a grant the client may not use', async () => {
    const response = await postForm(`${server.url}/oauth/token`, { grant_type: 'refresh_token', refresh_token: 'x' },
      { authorization: basicAuth(server.admin.clientId, server.admin.clientSecret) });
    await expectOAuthError(response, 400, 'unauthorized_client');
  });

  it('answers invalid_request when grant_type is missing', async () => {
    const response = await postForm(`${server.url}/oauth/token`, {},
      { authorization: basicAuth(server.admin.clientId, server.admin.clientSecret) });
    await expectOAuthError(response, 400, 'invalid_request');
  });

  it('answers invalid_scope for a scope outside the client registration', async () => {
    const response = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials', scope: 'openid' },
      { authorization: basicAuth(server.admin.clientId, server.admin.clientSecret) });
    await expectOAuthError(response, 400, 'invalid_scope');
  });

  it('answers invalid_target for an unknown resource indicator (RFC 8707)', async () => {
    const response = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials', resource: 'https://elsewhere.example/api' },
      { authorization: basicAuth(server.admin.clientId, server.admin.clientSecret) });
    await expectOAuthError(response, 400, 'invalid_target');
  });

  it('stores the secret only as a hash', async () => {
    const record = await server.deps.clientRegistry.find(server.admin.clientId);
    expect(record?.metadata.client_secret).to.match(/^sha256\$/);
    expect(JSON.stringify(record)).not.to.include(server.admin.clientSecret);
  });
});

describe('a token request without scope gets the client\'s registered scopes (RFC 6749 section 3.3)', () => {
  let server: TestServer;

  before(async () => { server = await startTestServer(); });
  after(async () => { await server.close(); });

  it('gives a personal client\'s own client_credentials request its registered API scopes, accepted by the API', async () => {
    const as = await discoverWithOauth4webapi(server);
    const oauthClient = { client_id: server.admin.clientId };
    const response = await oauth.clientCredentialsGrantRequest(as, oauthClient, oauth.ClientSecretBasic(server.admin.clientSecret),
      new URLSearchParams(), { [oauth.allowInsecureRequests]: true });
    const result = await oauth.processClientCredentialsResponse(as, oauthClient, response);
    expect(result.scope?.split(' ').sort()).to.deep.equal([...API_SCOPES].sort());
    expect((await callApi(server, '/customers', result.access_token)).status).to.equal(200);
    expect((await callApi(server, '/users', result.access_token)).status).to.equal(200);
  });

  it('keeps to the resource server\'s scopes when the registration also names OpenID ones', async () => {
    const registered = await createClient(server, { scope: 'openid profile crm:read' });
    const config = await client.discovery(new URL(server.issuer), registered.clientId, undefined,
      client.ClientSecretPost(registered.secret), { execute: [client.allowInsecureRequests] });
    const tokens = await client.clientCredentialsGrant(config);
    expect(tokens.scope).to.equal('crm:read');
  });

  it('still grants exactly what an explicit scope asks', async () => {
    const { scope } = await clientCredentialsToken(server, { scope: 'audit:read' });
    expect(scope).to.equal('audit:read');
  });
});
