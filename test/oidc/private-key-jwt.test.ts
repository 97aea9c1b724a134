import { expect } from 'chai';
import { exportJWK, generateKeyPair } from 'jose';
import * as oauth from 'oauth4webapi';

import { startTestServer, type TestServer } from '../support/harness.ts';
import { callApi, createClient, discoverWithOauth4webapi } from '../support/oauth.ts';

describe('private_key_jwt client authentication (RFC 7523)', () => {
  let server: TestServer;

  before(async () => { server = await startTestServer(); });
  after(async () => { await server.close(); });

  it('authenticates a client by a signed assertion through oauth4webapi', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'client-key-1', alg: 'ES256', use: 'sig' };
    const { clientId } = await createClient(server, {
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      jwks: { keys: [jwk] },
    }, { ownerId: server.admin.userId });

    const as = await discoverWithOauth4webapi(server);
    expect(as.token_endpoint_auth_methods_supported).to.include('private_key_jwt');
    const oauthClient = { client_id: clientId };
    const response = await oauth.clientCredentialsGrantRequest(as, oauthClient, oauth.PrivateKeyJwt({ key: privateKey, kid: 'client-key-1' }),
      new URLSearchParams({ scope: 'crm:read' }), { [oauth.allowInsecureRequests]: true });
    const tokens = await oauth.processClientCredentialsResponse(as, oauthClient, response);
    expect((await callApi(server, '/me', tokens.access_token)).status).to.equal(200);
  });

  it('refuses an assertion signed with another key', async () => {
    const registered = await generateKeyPair('ES256', { extractable: true });
    const other = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(registered.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const { clientId } = await createClient(server, { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } });
    const as = await discoverWithOauth4webapi(server);
    const response = await oauth.clientCredentialsGrantRequest(as, { client_id: clientId }, oauth.PrivateKeyJwt({ key: other.privateKey, kid: 'k1' }),
      new URLSearchParams(), { [oauth.allowInsecureRequests]: true });
    expect(response.status).to.equal(401);
    expect((await response.json()).error).to.equal('invalid_client');
  });
});
