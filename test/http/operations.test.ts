import { expect } from 'chai';
import type { Redis } from 'ioredis';
import request from 'supertest';

import type { RedisStore } from '../../src/platform/redis-store.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { basicAuth, clientCredentialsToken, postForm } from '../support/oauth.ts';

describe('operations endpoints and the HTTP envelope', () => {
  let server: TestServer;
  let token: string;

  before(async () => {
    server = await startTestServer();
    ({ access_token: token } = await clientCredentialsToken(server));
  });
  after(async () => { await server.close(); });

  it('answers /health with the version', async () => {
    const response = await request(server.url).get('/health').expect(200);
    expect(response.body).to.deep.equal({ status: 'ok', version: '0.1.0' });
  });

  it('answers /ready when PostgreSQL and Redis are reachable', async () => {
    const response = await request(server.url).get('/ready').expect(200);
    expect(response.body).to.include({ status: 'ready', database: 'up', store: 'up', database_mode: 'postgres', store_mode: 'redis' });
  });

  it('sets the security headers on every answer', async () => {
    const response = await request(server.url).get('/health');
    expect(response.headers).to.include({ 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' });
    expect(response.headers['x-request-id']).to.match(/^[0-9a-f-]{36}$/);
  });

  it('keeps a sane incoming request id and replaces a hostile one', async () => {
    const kept = await request(server.url).get('/health').set('X-Request-Id', 'trace-123');
    expect(kept.headers['x-request-id']).to.equal('trace-123');
    const replaced = await request(server.url).get('/health').set('X-Request-Id', 'bad id\twith spaces');
    expect(replaced.headers['x-request-id']).to.match(/^[0-9a-f-]{36}$/);
  });

  it('answers an unknown route with a 404 problem', async () => {
    const response = await request(server.url).get('/api/v1/nothing-here').set('authorization', `Bearer ${token}`).expect(404);
    expect(response.headers['content-type']).to.match(/^application\/problem\+json/);
    expect(response.body).to.include({ status: 404, code: 'resource.not_found' });
  });

  it('answers a wrong method with a 405 problem', async () => {
    const response = await request(server.url).put('/api/v1/me/deactivate').set('authorization', `Bearer ${token}`).expect(405);
    expect(response.body).to.include({ status: 405 });
  });

  it('refuses a non-JSON body on /api/v1 with 415', async () => {
    const response = await request(server.url).post('/api/v1/me').set('authorization', `Bearer ${token}`)
      .set('content-type', 'text/plain').send('hello').expect(415);
    expect(response.body).to.include({ code: 'request.unsupported_media_type' });
  });

  it('refuses a body past 100 kB with 413', async () => {
    const response = await request(server.url).post('/api/v1/me').set('authorization', `Bearer ${token}`)
      .set('content-type', 'application/json').send(JSON.stringify({ padding: 'x'.repeat(110_000) })).expect(413);
    expect(response.body).to.include({ code: 'request.too_large' });
  });

  it('refuses malformed JSON with 400', async () => {
    const response = await request(server.url).post('/api/v1/me').set('authorization', `Bearer ${token}`)
      .set('content-type', 'application/json').send('{"unterminated": ').expect(400);
    expect(response.body).to.include({ code: 'request.malformed' });
  });

  it('answers 403 problem for a machine token on a route that needs a user', async () => {
    const { clientId, secret } = await (await import('../support/oauth.ts')).createClient(server);
    const { access_token: machineToken } = await clientCredentialsToken(server, { clientId, secret });
    const response = await request(server.url).get('/api/v1/me').set('authorization', `Bearer ${machineToken}`).expect(403);
    expect(response.body).to.include({ code: 'auth.user_required' });
  });

  describe('when Redis goes away', () => {
    let store: RedisStore;

    before(() => {
      store = server.deps.store as RedisStore;
      // Stop reconnecting so the outage lasts for these tests, then cut the connection.
      (store.client as Redis).options.retryStrategy = () => null;
      store.client.disconnect();
    });

    it('answers /ready with 503', async () => {
      const response = await request(server.url).get('/ready').expect(503);
      expect(response.body).to.include({ status: 'unavailable', store: 'down', database: 'up' });
      expect(response.headers['retry-after']).to.equal('5');
    });

    it('answers the token endpoint with 503 and Retry-After instead of hanging', async () => {
      const started = Date.now();
      const response = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials' },
        { authorization: basicAuth(server.admin.clientId, server.admin.clientSecret) });
      expect(response.status).to.equal(503);
      expect(response.headers.get('retry-after')).to.equal('5');
      expect((await response.json()).error).to.equal('temporarily_unavailable');
      expect(Date.now() - started).to.be.below(3000);
    });

    it('answers the API with a 503 problem', async () => {
      const response = await request(server.url).get('/api/v1/me').set('authorization', `Bearer ${token}`).expect(503);
      expect(response.headers['content-type']).to.match(/^application\/problem\+json/);
      expect(response.headers['retry-after']).to.equal('5');
    });
  });
});
