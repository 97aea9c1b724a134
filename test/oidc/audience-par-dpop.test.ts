import { expect } from 'chai';
import { SignJWT, generateKeyPair, importJWK, type JWK } from 'jose';
import * as oauth from 'oauth4webapi';

import { SigningKey } from '../../src/db/entities/signing-key.entity.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { REDIRECT_URI, codeExchangeForm, createCodeClient, issueAuthorizationCode } from '../support/grants.ts';
import { basicAuth, callApi, discoverWithOauth4webapi, postForm, type TokenResponse } from '../support/oauth.ts';

const insecure = { [oauth.allowInsecureRequests]: true } as const;

describe('audiences (RFC 8707 and API.md "Audience")', () => {
  let server: TestServer;
  let client: { clientId: string; secret: string };

  before(async () => {
    server = await startTestServer();
    client = await createCodeClient(server);
  });
  after(async () => { await server.close(); });

  async function exchange(form: Record<string, string>): Promise<TokenResponse> {
    const response = await postForm(`${server.url}/oauth/token`, form, { authorization: basicAuth(client.clientId, client.secret) });
    expect(response.status, await response.clone().text()).to.equal(200);
    return (await response.json()) as TokenResponse;
  }

  it('gives an openid code exchange without resource a userinfo token, refused by the API', async () => {
    const issued = await issueAuthorizationCode(server, { clientId: client.clientId, userId: server.admin.userId, scope: 'openid email', apiScope: 'crm:read' });
    const tokens = await exchange(codeExchangeForm(issued));
    const userinfo = await fetch(`${server.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(userinfo.status, await userinfo.clone().text()).to.equal(200);
    expect((await userinfo.json()).email).to.equal('root@example.com');
    const api = await callApi(server, '/me', tokens.access_token);
    expect(api.status).to.equal(401);
    expect(api.headers.get('content-type')).to.match(/application\/problem\+json/);
    expect((await api.json()).detail).to.include('not for this resource server');
  });

  it('gives the same exchange with resource=ISSUER/api an API token, refused by userinfo', async () => {
    const issued = await issueAuthorizationCode(server, { clientId: client.clientId, userId: server.admin.userId, scope: 'openid email', apiScope: 'crm:read' });
    const tokens = await exchange(codeExchangeForm(issued, { resource: server.config.apiAudience }));
    expect((await callApi(server, '/me', tokens.access_token)).status).to.equal(200);
    const userinfo = await fetch(`${server.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    // The API token carries only API scopes, so userinfo refuses it (insufficient_scope, or
    // invalid_token for its audience): either way it is not a userinfo token.
    expect(userinfo.status).to.be.oneOf([401, 403]);
    expect(userinfo.headers.get('www-authenticate')).to.match(/error="(invalid_token|insufficient_scope)"/);
  });

  it('redeems an authorization code once when 20 requests race for it', async () => {
    const issued = await issueAuthorizationCode(server, { clientId: client.clientId, userId: server.admin.userId, scope: 'openid', apiScope: 'crm:read' });
    const responses = await Promise.all(Array.from({ length: 20 }, () => postForm(`${server.url}/oauth/token`,
      codeExchangeForm(issued, { resource: server.config.apiAudience }), { authorization: basicAuth(client.clientId, client.secret) })));
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 200)).to.have.length(1);
    expect(statuses.filter((status) => status === 400)).to.have.length(19);
    for (const response of responses.filter((candidate) => candidate.status === 400)) {
      expect((await response.json()).error).to.equal('invalid_grant');
    }
  });
});

describe('pushed authorization requests (RFC 9126) and DPoP (RFC 9449)', () => {
  let server: TestServer;

  before(async () => { server = await startTestServer(); });
  after(async () => { await server.close(); });

  it('accepts a PAR request from oauth4webapi and continues it at the authorization endpoint', async () => {
    const client = await createCodeClient(server);
    const as = await discoverWithOauth4webapi(server);
    expect(as.pushed_authorization_request_endpoint).to.equal(`${server.issuer}/oauth/par`);
    const verifier = oauth.generateRandomCodeVerifier();
    const params = new URLSearchParams({
      response_type: 'code',
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: oauth.generateRandomState(),
    });
    const response = await oauth.pushedAuthorizationRequest(as, { client_id: client.clientId }, oauth.ClientSecretBasic(client.secret), params, insecure);
    const result = await oauth.processPushedAuthorizationResponse(as, { client_id: client.clientId }, response);
    expect(result.request_uri).to.match(/^urn:ietf:params:oauth:request_uri:/);
    expect(result.expires_in).to.be.greaterThan(0);

    const authorize = new URL(as.authorization_endpoint!);
    authorize.searchParams.set('client_id', client.clientId);
    authorize.searchParams.set('request_uri', result.request_uri);
    const redirect = await fetch(authorize, { redirect: 'manual' });
    expect(redirect.status).to.equal(303);
    expect(redirect.headers.get('location')).to.match(/^\/interaction\//);
  });

  it('binds a client_credentials token to a DPoP key through oauth4webapi and requires the proof at the API', async () => {
    const as = await discoverWithOauth4webapi(server);
    const oauthClient = { client_id: server.admin.clientId };
    const keyPair = await oauth.generateKeyPair('ES256');
    const dpop = oauth.DPoP({}, keyPair);
    const response = await oauth.clientCredentialsGrantRequest(as, oauthClient, oauth.ClientSecretBasic(server.admin.clientSecret),
      new URLSearchParams({ scope: 'crm:read' }), { ...insecure, DPoP: dpop });
    const tokens = await oauth.processClientCredentialsResponse(as, oauthClient, response);
    expect(tokens.token_type.toLowerCase()).to.equal('dpop');

    const url = new URL(`${server.issuer}/api/v1/me`);
    const withProof = await oauth.protectedResourceRequest(tokens.access_token, 'GET', url, undefined, undefined, { ...insecure, DPoP: dpop });
    expect(withProof.status).to.equal(200);

    const asBearer = await callApi(server, '/me', tokens.access_token);
    expect(asBearer.status).to.equal(401);
    expect(asBearer.headers.get('www-authenticate')).to.match(/^DPoP /);

    const withoutProof = await fetch(url, { headers: { authorization: `DPoP ${tokens.access_token}` } });
    expect(withoutProof.status).to.equal(401);
    expect(withoutProof.headers.get('www-authenticate')).to.include('invalid_dpop_proof');

    // oauth4webapi itself rejects the 401 challenge it gets for a proof made with another key.
    const otherKey = await oauth.generateKeyPair('ES256');
    const refusal = await oauth.protectedResourceRequest(tokens.access_token, 'GET', url, undefined, undefined,
      { ...insecure, DPoP: oauth.DPoP({}, otherKey) }).then(() => undefined, (error: unknown) => error);
    expect(refusal).to.be.instanceOf(oauth.WWWAuthenticateChallengeError);
    expect((refusal as oauth.WWWAuthenticateChallengeError).response.status).to.equal(401);
  });
});

describe('refused tokens at the resource API', () => {
  let server: TestServer;

  before(async () => { server = await startTestServer({ ACCESS_TOKEN_FORMAT: 'jwt', ACCESS_TOKEN_TTL: '60' }); });
  after(async () => { await server.close(); });

  async function expectRefused(token: string | undefined, detail: RegExp) {
    const response = await fetch(`${server.url}/api/v1/me`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
    expect(response.status).to.equal(401);
    expect(response.headers.get('content-type')).to.match(/^application\/problem\+json/);
    const challenge = response.headers.get('www-authenticate') ?? '';
    expect(challenge).to.match(/^Bearer realm="latchkey"/);
    if (token !== undefined) expect(challenge).to.include('error="invalid_token"');
    const body = await response.json();
    expect(body).to.include({ status: 401 });
    expect(body.title).to.be.a('string');
    expect(body.detail).to.match(detail);
    expect(JSON.stringify(body)).not.to.match(/at .*\.ts:\d+/);
  }

  async function signed(claims: Record<string, unknown>, options: { expiresIn?: string; typ?: string } = {}) {
    const { privateKey } = await generateKeyPair('ES256');
    return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: options.typ ?? 'at+jwt', kid: 'foreign' })
      .setIssuer(server.issuer).setAudience(server.config.apiAudience).setIssuedAt()
      .setExpirationTime(options.expiresIn ?? '5m').setJti('j1').sign(privateKey);
  }

  it('asks for a token when none is presented', async () => { await expectRefused(undefined, /access token is required/); });
  it('refuses garbage', async () => { await expectRefused('garbage!!', /Authorization header|malformed/); });
  it('refuses an unknown opaque-looking token', async () => { await expectRefused('a'.repeat(43), /unknown, expired or revoked/); });
  it('refuses a JWT signed with a foreign key', async () => {
    await expectRefused(await signed({ client_id: server.admin.clientId, sub: server.admin.clientId }), /could not be verified/);
  });

  it('refuses an expired token signed with the server\'s own key', async () => {
    const [key] = await server.deps.orm.em.fork().find(SigningKey, { alg: 'ES256' });
    const privateKey = await importJWK(key!.privateJwk as JWK, 'ES256');
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ client_id: server.admin.clientId, scope: 'crm:read' })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: key!.kid })
      .setIssuer(server.issuer).setAudience(server.config.apiAudience).setSubject(server.admin.clientId)
      .setIssuedAt(now - 600).setExpirationTime(now - 300).setJti('expired-1').sign(privateKey);
    await expectRefused(token, /"exp" claim timestamp check failed/);
  });

  it('refuses a token for another audience', async () => {
    const provider = server.deps.providers.current;
    const client = await provider.Client.find(server.admin.clientId);
    const token = new provider.ClientCredentials({ client: client!, scope: 'crm:read' });
    token.aud = 'https://other.example/api';
    const value = await token.save();
    await expectRefused(value, /not for this resource server/);
  });
});
