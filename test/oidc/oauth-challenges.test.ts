import { expect } from 'chai';

import { startTestServer, type TestServer } from '../support/harness.ts';
import { basicAuth, postForm } from '../support/oauth.ts';

// RFC 9110 section 15.5.2: every 401 carries WWW-Authenticate, whichever way the client authenticated.
describe('401 answers of the OAuth endpoints', () => {
  let server: TestServer;

  before(async () => { server = await startTestServer(); });
  after(async () => { await server.close(); });

  for (const endpoint of ['/oauth/token', '/oauth/introspect', '/oauth/revoke']) {
    it(`challenges a client whose secret in the body is wrong at ${endpoint}`, async () => {
      const form: Record<string, string> = endpoint === '/oauth/token'
        ? { grant_type: 'client_credentials' }
        : { token: 'some-token' };
      const response = await postForm(`${server.url}${endpoint}`, { ...form, client_id: server.admin.clientId, client_secret: 'not-the-secret' });
      expect(response.status).to.equal(401);
      expect(await response.json()).to.include({ error: 'invalid_client' });
      expect(response.headers.get('www-authenticate')).to.match(/^Basic realm="[^"]+", error="invalid_client"$/);
    });
  }

  it('challenges an unknown client id sent in the body', async () => {
    const response = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials', client_id: 'lk_nobody', client_secret: 'x' });
    expect(response.status).to.equal(401);
    expect(response.headers.get('www-authenticate')).to.match(/^Basic /);
  });

  it('keeps the provider\'s own challenge for Basic authentication and bearer tokens', async () => {
    const basic = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials' }, { authorization: basicAuth(server.admin.clientId, 'not-the-secret') });
    expect(basic.status).to.equal(401);
    expect(basic.headers.get('www-authenticate')).to.match(/^Basic realm=.*error="invalid_client"/);

    const userinfo = await fetch(`${server.url}/oauth/userinfo`, { headers: { authorization: 'Bearer not-a-token' } });
    expect(userinfo.status).to.equal(401);
    expect(userinfo.headers.get('www-authenticate')).to.match(/^Bearer /);
  });
});
