import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';

import Router from '@koa/router';
import { expect } from 'chai';
import Koa from 'koa';

import { API_PREFIX } from '../../src/app.ts';
import { apiRoutes } from '../../src/api/routes.ts';
import { mountRoutes } from '../../src/http/define-route.ts';
import { writeProblem } from '../../src/http/middleware.ts';
import { AppError, ERROR_CATALOGUE, type ErrorCode } from '../../src/platform/errors.ts';
import { basicAuth } from '../support/oauth.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { DEMO_PASSWORD, login, loginAs, postJson, seedDemoUsers } from '../support/users.ts';

const SOME_ID = '0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f';
const UNKNOWN_TOKEN = 'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCd';

/** Bodies for the public routes that take credentials in the body, so the walk reaches their refusals. */
const PUBLIC_BODIES: Record<string, unknown> = {
  'POST /auth/login': { email: 'nobody@demo.example', password: 'not-the-password-at-all' },
  'POST /auth/mfa': { mfa_token: UNKNOWN_TOKEN, code: '123456' },
  'POST /auth/refresh': { refresh_token: UNKNOWN_TOKEN },
  'POST /auth/register': {},
  'POST /auth/verify-email': { token: UNKNOWN_TOKEN },
  'POST /auth/verify-email/resend': { email: 'nobody@demo.example' },
  'POST /auth/forgot-password': {},
  'POST /auth/reset-password': {},
};

/** RFC 9110 section 11.6.1: the auth-schemes a WWW-Authenticate value challenges with. */
function schemesOf(header: string): string[] {
  return [...header.matchAll(/(?:^|,)\s*([A-Za-z][\w!#$%&'*+.^`|~-]*)\s+[A-Za-z][\w-]*=/g)].map((match) => match[1]!);
}

describe('WWW-Authenticate on every 401 (RFC 9110 section 15.5.2, RFC 6750 section 3)', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer();
    await seedDemoUsers(server);
  });
  after(async () => { await server.close(); });

  it('every 401 code of the catalogue leaves with a Bearer challenge, invalid_token where a token was refused', () => {
    const app = new Koa();
    const codes = (Object.keys(ERROR_CATALOGUE) as ErrorCode[]).filter((code) => ERROR_CATALOGUE[code].status === 401);
    expect(codes.length).to.be.greaterThan(3);
    for (const code of codes) {
      const request = new IncomingMessage(new Socket());
      const ctx = app.createContext(request, new ServerResponse(request));
      const error = new AppError(code);
      writeProblem(ctx, error);
      const header = String(ctx.response.get('WWW-Authenticate') ?? '');
      expect(schemesOf(header), code).to.include('Bearer');
      if (error.refusedToken) expect(header, code).to.include('error="invalid_token"');
      else expect(header, code).to.not.include('error=');
    }
  });

  it('walks every route of the /api/v1 router without a token and with refused ones: no 401 without a challenge', async () => {
    const router = new Router({ prefix: API_PREFIX });
    const routes = apiRoutes(server.deps);
    mountRoutes(router, routes, { authenticate: async (_ctx, next) => next(), allows: async () => true, strictResponses: true });
    const publicRoutes = routes.filter((route) => route.authenticated === false).map((route) => `${route.method.toUpperCase()} ${route.path}`);
    expect(Object.keys(PUBLIC_BODIES).sort(), 'a body for each public route').to.deep.equal(publicRoutes.sort());

    const presentations: { name: string; headers: Record<string, string>; refused: boolean }[] = [
      { name: 'no token', headers: {}, refused: false },
      { name: 'an unknown bearer token', headers: { authorization: `Bearer ${UNKNOWN_TOKEN}` }, refused: true },
      { name: 'a malformed bearer token', headers: { authorization: 'Bearer not a token!' }, refused: true },
      { name: 'an unknown DPoP token', headers: { authorization: `DPoP ${UNKNOWN_TOKEN}` }, refused: true },
      { name: 'another scheme', headers: { authorization: 'Negotiate abc' }, refused: false },
      { name: 'wrong Basic client credentials', headers: { authorization: basicAuth('lk_nobody', 'wrong-secret') }, refused: false },
    ];
    let unauthorized = 0;
    let requests = 0;
    for (const layer of router.stack) {
      const path = String(layer.path).replace(/:(\w+)/g, SOME_ID);
      const relative = String(layer.path).slice(API_PREFIX.length);
      for (const method of layer.methods.filter((name) => name !== 'HEAD')) {
        const body = PUBLIC_BODIES[`${method} ${relative}`] ?? (method === 'GET' ? undefined : {});
        for (const presentation of presentations) {
          const response = await fetch(`${server.url}${path}`, {
            method,
            headers: { ...presentation.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
            body: body === undefined ? undefined : JSON.stringify(body),
          });
          requests += 1;
          await response.arrayBuffer();
          if (response.status !== 401) continue;
          unauthorized += 1;
          const header = response.headers.get('www-authenticate') ?? '';
          const where = `${method} ${path} with ${presentation.name}`;
          expect(schemesOf(header), where).to.satisfy((schemes: string[]) => schemes.includes('Bearer') || schemes.includes('DPoP'));
          // The sign-in routes ignore a bearer token: what they refuse is the body's credentials (a password, an mfa_token).
          if (presentation.refused && relative !== '/auth/login' && relative !== '/auth/mfa') expect(header, where).to.include('error="invalid_token"');
        }
      }
    }
    // Every authenticated route refused at least the requests without a token.
    expect(unauthorized).to.be.greaterThan(router.stack.length);
    expect(requests).to.be.greaterThan(300);
  });

  it('challenges a wrong password at /auth/login, without claiming a token was refused', async () => {
    const response = await login(server, { email: 'premium1@demo.example', password: 'not-the-password-at-all' });
    expect(response.status).to.equal(401);
    expect(response.headers.get('www-authenticate')).to.equal('Bearer realm="latchkey"');
    expect((await response.json()).code).to.equal('auth.invalid_credentials');
  });

  it('challenges a client that failed Basic authentication at /auth/login in its own scheme too (RFC 6749 section 5.2)', async () => {
    const response = await login(server, { email: 'agent1@demo.example', password: DEMO_PASSWORD }, { authorization: basicAuth('lk_nobody', 'wrong-secret') });
    expect(response.status).to.equal(401);
    expect((await response.json()).code).to.equal('auth.invalid_client');
    expect(schemesOf(response.headers.get('www-authenticate') ?? '')).to.deep.equal(['Basic', 'Bearer']);
  });

  it('answers a dead refresh token, and a refresh after logout, with an invalid_token challenge', async () => {
    const dead = await postJson(server, '/auth/refresh', { refresh_token: UNKNOWN_TOKEN });
    expect(dead.status).to.equal(401);
    expect(dead.headers.get('www-authenticate')).to.match(/^Bearer realm="latchkey", error="invalid_token", error_description="[^"]+"$/);

    const session = await loginAs(server, 'agent1@demo.example');
    expect((await postJson(server, '/auth/logout', { refresh_token: session.refresh_token }, session.access_token)).status).to.equal(204);
    const afterLogout = await postJson(server, '/auth/refresh', { refresh_token: session.refresh_token });
    expect(afterLogout.status).to.equal(401);
    expect(afterLogout.headers.get('www-authenticate')).to.include('Bearer realm="latchkey"').and.include('error="invalid_token"');
    const me = await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${session.access_token}` } });
    expect(me.status).to.equal(401);
    expect(me.headers.get('www-authenticate')).to.include('error="invalid_token"');
  });
});
