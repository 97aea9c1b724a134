import { expect } from 'chai';
import * as oauth from 'oauth4webapi';

import { startPeerServer, startTestServer, type TestServer } from '../support/harness.ts';
import { codeExchangeForm, createCodeClient, issueAuthorizationCode } from '../support/grants.ts';
import { basicAuth, callApi, clientCredentialsToken, discoverWithOauth4webapi, postForm, type TokenResponse } from '../support/oauth.ts';

async function exchange(server: TestServer, client: { clientId: string; secret: string }, form: Record<string, string>): Promise<TokenResponse> {
  const response = await postForm(`${server.url}/oauth/token`, form, { authorization: basicAuth(client.clientId, client.secret) });
  expect(response.status, await response.clone().text()).to.equal(200);
  return (await response.json()) as TokenResponse;
}

async function revoke(server: TestServer, client: { clientId: string; secret: string }, token: string, hint?: string): Promise<Response> {
  const form: Record<string, string> = { token };
  if (hint) form.token_type_hint = hint;
  return postForm(`${server.url}/oauth/revoke`, form, { authorization: basicAuth(client.clientId, client.secret) });
}

describe('introspection and revocation of opaque tokens', () => {
  let server: TestServer;
  const admin = () => ({ clientId: server.admin.clientId, secret: server.admin.clientSecret });

  before(async () => { server = await startTestServer(); });
  after(async () => { await server.close(); });

  it('introspects an active token through oauth4webapi (RFC 7662)', async () => {
    const { access_token: token } = await clientCredentialsToken(server, { scope: 'crm:read' });
    const as = await discoverWithOauth4webapi(server);
    const oauthClient = { client_id: server.admin.clientId };
    const response = await oauth.introspectionRequest(as, oauthClient, oauth.ClientSecretBasic(server.admin.clientSecret), token,
      { [oauth.allowInsecureRequests]: true });
    const result = await oauth.processIntrospectionResponse(as, oauthClient, response);
    expect(result.active).to.equal(true);
    expect(result.client_id).to.equal(server.admin.clientId);
    expect(result.scope).to.equal('crm:read');
    expect(result.aud).to.equal(`${server.issuer}/api`);
  });

  it('revokes a token through oauth4webapi (RFC 7009), refused at the next API call', async () => {
    const { access_token: token } = await clientCredentialsToken(server);
    expect((await callApi(server, '/me', token)).status).to.equal(200);
    const as = await discoverWithOauth4webapi(server);
    const response = await oauth.revocationRequest(as, { client_id: server.admin.clientId },
      oauth.ClientSecretBasic(server.admin.clientSecret), token, { [oauth.allowInsecureRequests]: true });
    await oauth.processRevocationResponse(response);
    const after = await callApi(server, '/me', token);
    expect(after.status).to.equal(401);
    expect(after.headers.get('www-authenticate')).to.match(/^Bearer .*error="invalid_token"/);

    const introspection = await postForm(`${server.url}/oauth/introspect`, { token }, { authorization: basicAuth(admin().clientId, admin().secret) });
    expect((await introspection.json()).active).to.equal(false);
  });

  it('refuses a revoked token at the next call on another process that had already verified it', async () => {
    const peer = await startPeerServer(server);
    try {
      const { access_token: token } = await clientCredentialsToken(server);
      const onPeer = () => fetch(`${peer.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
      // Twice, so the peer answers the second call from the token it keeps in memory.
      expect((await onPeer()).status).to.equal(200);
      expect((await onPeer()).status).to.equal(200);
      expect((await revoke(server, admin(), token)).status).to.equal(200);
      const after = await onPeer();
      expect(after.status).to.equal(401);
      expect(after.headers.get('www-authenticate')).to.match(/^Bearer .*error="invalid_token"/);
    } finally {
      await peer.close();
    }
  });

  it('answers 200 for revoking an unknown token (RFC 7009 section 2.2)', async () => {
    const response = await revoke(server, admin(), 'no-such-token-aaaaaaaaaaaaaaaaaaaaaaaaaaa');
    expect(response.status).to.equal(200);
  });

  it('does not show another client\'s token as active', async () => {
    const { access_token: token } = await clientCredentialsToken(server);
    const other = await createCodeClient(server);
    const response = await postForm(`${server.url}/oauth/introspect`, { token }, { authorization: basicAuth(other.clientId, other.secret) });
    expect((await response.json()).active).to.equal(false);
  });

  it('does not let the public first-party client introspect another client\'s token without a secret', async () => {
    const { access_token: token } = await clientCredentialsToken(server);
    // The built-in `latchkey` client authenticates with `none`: anyone can send its client_id.
    const response = await postForm(`${server.url}/oauth/introspect`, { token, client_id: 'latchkey' });
    expect(response.status).to.equal(200);
    expect(await response.json()).to.deep.equal({ active: false });
  });

  it('ends a user grant when its refresh token is revoked', async () => {
    const client = await createCodeClient(server);
    const issued = await issueAuthorizationCode(server, { clientId: client.clientId, userId: server.admin.userId, scope: 'openid offline_access', apiScope: 'crm:read' });
    const tokens = await exchange(server, client, codeExchangeForm(issued, { resource: server.config.apiAudience }));
    expect((await callApi(server, '/me', tokens.access_token)).status).to.equal(200);
    expect((await revoke(server, client, tokens.refresh_token!, 'refresh_token')).status).to.equal(200);
    expect((await callApi(server, '/me', tokens.access_token)).status).to.equal(401);
  });
});

describe('revocation with JWT access tokens', () => {
  let server: TestServer;
  let client: { clientId: string; secret: string };

  before(async () => {
    server = await startTestServer({ ACCESS_TOKEN_FORMAT: 'jwt' });
    client = await createCodeClient(server);
  });
  after(async () => { await server.close(); });

  async function userTokens() {
    const issued = await issueAuthorizationCode(server, { clientId: client.clientId, userId: server.admin.userId, scope: 'openid offline_access', apiScope: 'crm:read' });
    const tokens = await exchange(server, client, codeExchangeForm(issued, { resource: server.config.apiAudience }));
    expect(tokens.access_token.split('.')).to.have.length(3);
    return { ...tokens, grantId: issued.grantId };
  }

  it('answers unsupported_token_type for revoking a lone JWT access token (RFC 7009 section 2.2.1)', async () => {
    const tokens = await userTokens();
    const response = await revoke(server, client, tokens.access_token, 'access_token');
    expect(response.status).to.equal(400);
    expect((await response.json()).error).to.equal('unsupported_token_type');
  });

  it('stops the grant\'s JWT access tokens at the next call once the refresh token is revoked', async () => {
    const tokens = await userTokens();
    expect((await callApi(server, '/me', tokens.access_token)).status).to.equal(200);
    expect((await revoke(server, client, tokens.refresh_token!, 'refresh_token')).status).to.equal(200);
    const response = await callApi(server, '/me', tokens.access_token);
    expect(response.status).to.equal(401);
    expect((await response.json()).detail).to.include('revoked');
  });

  it('stops JWT access tokens when their grant is revoked', async () => {
    const tokens = await userTokens();
    const provider = server.deps.providers.current;
    const grant = await provider.Grant.find(tokens.grantId);
    await grant!.destroy();
    expect((await callApi(server, '/me', tokens.access_token)).status).to.equal(401);
  });

  it('rotates the refresh token and revokes the grant when a used one is replayed', async () => {
    const tokens = await userTokens();
    const refreshed = await exchange(server, client, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, resource: server.config.apiAudience });
    expect(refreshed.refresh_token).to.be.a('string').and.not.equal(tokens.refresh_token);
    const replay = await postForm(`${server.url}/oauth/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! },
      { authorization: basicAuth(client.clientId, client.secret) });
    expect(replay.status).to.equal(400);
    expect((await replay.json()).error).to.equal('invalid_grant');
    const rotatedUse = await postForm(`${server.url}/oauth/token`, { grant_type: 'refresh_token', refresh_token: refreshed.refresh_token! },
      { authorization: basicAuth(client.clientId, client.secret) });
    expect(rotatedUse.status).to.equal(400);
    expect((await callApi(server, '/me', refreshed.access_token)).status).to.equal(401);
  });

  it('stops a personal client\'s tokens when the client is deleted', async () => {
    const { access_token: token } = await clientCredentialsToken(server);
    expect((await callApi(server, '/me', token)).status).to.equal(200);
    await server.deps.clientRegistry.remove(server.admin.clientId);
    expect((await callApi(server, '/me', token)).status).to.equal(401);
  });
});
