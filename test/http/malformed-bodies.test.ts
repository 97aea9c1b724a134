// Bodies that are not what they claim to be get a 4xx, never a 500, and nothing is written:
// bad gzip, NUL characters and unpaired surrogates, invalid UTF-8, other charsets, oversized forms.
import { gzipSync } from 'node:zlib';

import { expect } from 'chai';

import { apiRoutes } from '../../src/api/routes.ts';
import { queryOne } from '../../src/platform/database.ts';
import { ROOT_PASSWORD } from '../support/admin.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { basicAuth, createClient, postForm } from '../support/oauth.ts';
import { PageSession, codeFlowRequest, discoverClient, hiddenField, openInteraction } from '../support/pages.ts';
import { loginAs } from '../support/users.ts';

const REDIRECT_URI = 'http://127.0.0.1:9/cb';

describe('malformed request bodies', () => {
  let server: TestServer;
  let token: string;
  let sequence = 0;

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    ({ access_token: token } = await loginAs(server, 'root@example.com', ROOT_PASSWORD));
  });
  after(async () => { await server.close(); });

  const customer = (fields: Record<string, string> = {}) => ({ first_name: 'Ada', last_name: 'Lovelace', email: `ada-${(sequence += 1)}@example.com`, ...fields });

  function postCustomer(body: BodyInit, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${server.url}/api/v1/customers`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
      body,
    });
  }

  async function customerCount(): Promise<number> {
    return Number((await queryOne<{ count: string }>(server.deps.orm.em.fork(), 'select count(*) as count from customer'))!.count);
  }

  async function expectProblem(response: Response, status: number, code: string): Promise<{ detail: string; errors?: { path: (string | number)[]; code: string; message: string }[] }> {
    expect(response.status, await response.clone().text()).to.equal(status);
    expect(response.headers.get('content-type')).to.match(/^application\/problem\+json/);
    const problem = await response.json();
    expect(problem).to.include({ status, code });
    return problem;
  }

  describe('Content-Encoding', () => {
    it('answers 400, not 500, for a body that is not the gzip it claims to be', async () => {
      const before = await customerCount();
      const problem = await expectProblem(await postCustomer('this is not gzip', { 'content-encoding': 'gzip' }), 400, 'request.malformed');
      expect(problem.detail).to.include('gzip');
      expect(await customerCount()).to.equal(before);
    });

    it('still takes a body that really is gzip', async () => {
      const response = await postCustomer(gzipSync(JSON.stringify(customer())), { 'content-encoding': 'gzip' });
      expect(response.status, await response.clone().text()).to.equal(201);
    });

    it('answers 415 for a content coding it does not know', async () => {
      await expectProblem(await postCustomer(JSON.stringify(customer()), { 'content-encoding': 'zstd-like' }), 415, 'request.unsupported_media_type');
    });
  });

  describe('characters PostgreSQL cannot store', () => {
    it('answers 422 naming the field for a NUL in a body string, and writes nothing', async () => {
      const before = await customerCount();
      const problem = await expectProblem(await postCustomer(JSON.stringify(customer({ first_name: 'Ada\u0000' }))), 422, 'request.validation_failed');
      expect(problem.errors).to.deep.equal([{ path: ['body', 'first_name'], message: 'must not contain NUL (U+0000) characters', code: 'invalid_characters' }]);
      expect(await customerCount()).to.equal(before);
    });

    it('answers 422 naming the parameter for a NUL in the query', async () => {
      const response = await fetch(`${server.url}/api/v1/customers?search=a%00b`, { headers: { authorization: `Bearer ${token}` } });
      const problem = await expectProblem(response, 422, 'request.validation_failed');
      expect(problem.errors).to.deep.equal([{ path: ['query', 'search'], message: 'must not contain NUL (U+0000) characters', code: 'invalid_characters' }]);
    });

    it('answers 422 for an unpaired surrogate, which would otherwise be stored as U+FFFD', async () => {
      const before = await customerCount();
      const body = JSON.stringify(customer()).replace('"Ada"', '"Ada\\ud800"');
      const problem = await expectProblem(await postCustomer(body), 422, 'request.validation_failed');
      expect(problem.errors![0]).to.include({ code: 'invalid_characters' });
      expect(problem.errors![0]!.path).to.deep.equal(['body', 'first_name']);
      expect(await customerCount()).to.equal(before);
    });

    it('refuses a NUL in the query of every /api/v1 route the same way, before anything else is read', async () => {
      const failures: string[] = [];
      for (const route of apiRoutes(server.deps)) {
        const path = route.path.replace(/:\w+/g, '00000000-0000-4000-8000-000000000000');
        const withBody = route.method !== 'get';
        const response = await fetch(`${server.url}/api/v1${path}?probe=%00`, {
          method: route.method.toUpperCase(),
          headers: { authorization: `Bearer ${token}`, ...(withBody ? { 'content-type': 'application/json' } : {}) },
          body: withBody ? JSON.stringify({ probe: 'a\u0000' }) : undefined,
        });
        const problem = (await response.json()) as { errors?: { path: unknown[] }[] };
        const paths = JSON.stringify(problem.errors?.map((error) => error.path));
        const expected = JSON.stringify([['query', 'probe'], ...(withBody ? [['body', 'probe']] : [])]);
        if (response.status !== 422 || paths !== expected) failures.push(`${route.method} ${route.path}: ${response.status} ${paths}`);
      }
      expect(failures).to.deep.equal([]);
    });
  });

  describe('encodings and charsets', () => {
    it('answers 400 for invalid UTF-8 instead of storing replacement characters', async () => {
      const before = await customerCount();
      const [head, tail] = JSON.stringify(customer()).split('Ada');
      const body = Buffer.concat([Buffer.from(`${head}Ada`), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from(tail!)]);
      const problem = await expectProblem(await postCustomer(body), 400, 'request.malformed');
      expect(problem.detail).to.include('UTF-8');
      expect(await customerCount()).to.equal(before);
    });

    it('answers 415 for a charset other than UTF-8, known or not', async () => {
      for (const charset of ['utf-16', 'UTF-16LE', 'iso-8859-1', 'klingon']) {
        await expectProblem(await postCustomer(JSON.stringify(customer()), { 'content-type': `application/json; charset=${charset}` }), 415, 'request.unsupported_media_type');
      }
    });

    it('takes an explicit charset=utf-8', async () => {
      const response = await postCustomer(JSON.stringify(customer()), { 'content-type': 'application/json; charset=UTF-8' });
      expect(response.status, await response.clone().text()).to.equal(201);
    });

    it('answers 400 for a "__proto__" key', async () => {
      await expectProblem(await postCustomer(`{"first_name":"A","last_name":"B","email":"p@example.com","__proto__":{"admin":true}}`), 400, 'request.malformed');
    });
  });

  describe('the OAuth endpoints', () => {
    it('answers a 1 MB form to /oauth/token with 413 in the OAuth error shape', async () => {
      const response = await fetch(`${server.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(server.admin.clientId, server.admin.clientSecret) },
        body: `grant_type=client_credentials&padding=${'x'.repeat(1024 * 1024)}`,
      });
      expect(response.status).to.equal(413);
      expect(response.headers.get('cache-control')).to.equal('no-store');
      expect(await response.json()).to.include({ error: 'invalid_request' });
    });

    it('answers a NUL in a client_id with 400 invalid_request, not a 500 or an outage', async () => {
      const response = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials', client_id: 'lk_\u0000', client_secret: 'secret' });
      expect(response.status).to.equal(400);
      expect(await response.json()).to.include({ error: 'invalid_request' });
      // The pool survived: the next request is served.
      const fine = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials' }, { authorization: basicAuth(server.admin.clientId, server.admin.clientSecret) });
      expect(fine.status).to.equal(200);
    });
  });

  describe('the pages', () => {
    it('answers a NUL in the sign-in form with a 400 page', async () => {
      const registered = await createClient(server, { grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: [REDIRECT_URI], scope: 'openid profile' });
      const config = await discoverClient(server, registered, REDIRECT_URI);
      const session = new PageSession(server);
      const interaction = await openInteraction(session, (await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid profile' })).url);
      for (const fields of [{ identifier: 'ada\u0000@example.com', organization: '' }, { identifier: 'ada@example.com', organization: 'de\u0000mo' }]) {
        const response = await session.post(`${interaction.path}/login`, { csrf: hiddenField(interaction.html, 'csrf'), password: 'a-password-of-some-length', ...fields });
        expect(response.status).to.equal(400);
        expect(response.headers.get('content-type')).to.match(/^text\/html/);
        expect(await response.text()).to.include('The form could not be read');
      }
    });

    it('answers a sign-in form that is not the gzip it claims to be with a 400 page', async () => {
      const registered = await createClient(server, { grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: [REDIRECT_URI], scope: 'openid profile' });
      const config = await discoverClient(server, registered, REDIRECT_URI);
      const session = new PageSession(server);
      const interaction = await openInteraction(session, (await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid profile' })).url);
      const response = await fetch(`${server.url}${interaction.path}/login`, {
        method: 'POST',
        headers: { cookie: session.jar.header(), accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' },
        body: 'identifier=ada&password=not-gzip-at-all',
      });
      expect(response.status).to.equal(400);
      expect(await response.text()).to.include('The form could not be read');
    });

    it('answers a device code form posted without a live session with a 400 page, not a 500', async () => {
      const response = await new PageSession(server).post('/oauth/device', { xsrf: 'stale', user_code: 'BCDFGHJK' });
      expect(response.status).to.equal(400);
      expect(response.headers.get('content-type')).to.match(/^text\/html/);
      expect(await response.text()).to.include('This page has expired');
    });

    it('answers a NUL in the device code form with a 400 page that asks again', async () => {
      const session = new PageSession(server);
      const form = await session.get('/oauth/device');
      const xsrf = hiddenField(await form.text(), 'xsrf');
      const response = await session.post('/oauth/device', { xsrf, user_code: 'BCDF\u0000GHJK' });
      expect(response.status).to.equal(400);
      expect(response.headers.get('content-type')).to.match(/^text\/html/);
      expect(await response.text()).to.include('That code is not right');
    });
  });
});
