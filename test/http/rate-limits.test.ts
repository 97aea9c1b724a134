import { expect } from 'chai';

import { startTestServer, type TestServer } from '../support/harness.ts';
import { basicAuth, postForm } from '../support/oauth.ts';
import { login } from '../support/users.ts';

describe('request-rate limits per IP (koa-ratelimit)', () => {
  let server: TestServer;

  before(async () => { server = await startTestServer({ TOKEN_RATE_LIMIT: '5', LOGIN_RATE_LIMIT: '3' }); });
  after(async () => { await server.close(); });

  it('answers the token endpoint past its limit with 429, Retry-After and an OAuth error', async () => {
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let index = 0; index < 6; index += 1) {
      last = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials' },
        { authorization: basicAuth(server.admin.clientId, server.admin.clientSecret) });
      statuses.push(last.status);
    }
    expect(statuses).to.deep.equal([200, 200, 200, 200, 200, 429]);
    expect(Number(last!.headers.get('retry-after'))).to.be.within(1, 60);
    expect((await last!.json()).error).to.equal('slow_down');
  });

  it('answers the login endpoint past its limit with a 429 problem', async () => {
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let index = 0; index < 4; index += 1) {
      last = await login(server, { email: 'nobody@example.com', password: 'whatever-it-is' });
      statuses.push(last.status);
    }
    expect(statuses).to.deep.equal([401, 401, 401, 429]);
    expect(last!.headers.get('content-type')).to.match(/problem\+json/);
    expect((await last!.json()).code).to.equal('request.rate_limited');
  });

  it('answers the sign-in pages past their limit with a 429 page', async () => {
    // The login limit is shared with the JSON endpoints above; this address is already past it.
    const response = await postForm(`${server.url}/interaction/unknown-uid/login`, { identifier: 'x', password: 'y' });
    expect(response.status).to.equal(429);
    expect(response.headers.get('content-type')).to.match(/text\/html/);
    expect(response.headers.get('retry-after')).to.match(/^\d+$/);
    expect(await response.text()).to.include('Too many attempts');
  });

  it('leaves other endpoints alone', async () => {
    for (let index = 0; index < 10; index += 1) expect((await fetch(`${server.url}/health`)).status).to.equal(200);
  });
});
