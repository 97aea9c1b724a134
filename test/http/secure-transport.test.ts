import { expect } from 'chai';

import { REDIRECT_URI, createCodeClient } from '../support/grants.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';

// With an https ISSUER behind a TLS-terminating proxy (TRUST_PROXY), the answers must say so.
describe('an https issuer', () => {
  let server: TestServer;

  before(async () => { server = await startTestServer({ ISSUER: 'https://auth.example.test', TRUST_PROXY: 'true' }); });
  after(async () => { await server.close(); });

  it('sends HSTS and advertises https endpoints', async () => {
    const health = await fetch(`http://127.0.0.1:${(server.server.address() as { port: number }).port}/health`);
    expect(health.headers.get('strict-transport-security')).to.match(/max-age=\d+/);
    const discovery = await (await fetch(`http://127.0.0.1:${(server.server.address() as { port: number }).port}/.well-known/openid-configuration`, {
      headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'auth.example.test' },
    })).json();
    expect(discovery.issuer).to.equal('https://auth.example.test');
    expect(discovery.token_endpoint).to.equal('https://auth.example.test/oauth/token');
  });

  it('marks the sign-in cookies Secure', async () => {
    const port = (server.server.address() as { port: number }).port;
    const client = await createCodeClient(server);
    const authorize = new URL(`http://127.0.0.1:${port}/oauth/authorize`);
    for (const [name, value] of Object.entries({
      client_id: client.clientId, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
    })) authorize.searchParams.set(name, value);
    const response = await fetch(authorize, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'auth.example.test' } });
    expect(response.status).to.equal(303);
    const cookies = response.headers.getSetCookie();
    expect(cookies.length).to.be.greaterThan(0);
    for (const cookie of cookies) expect(cookie.toLowerCase()).to.include('; secure');
  });
});
