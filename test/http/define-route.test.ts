import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import Router from '@koa/router';
import { expect } from 'chai';
import Koa from 'koa';
import { z } from 'zod';

import { defineRoute, mountRoutes, type RouteDefinition } from '../../src/http/define-route.ts';
import type { AccessTokenPrincipal } from '../../src/http/authenticate.ts';
import { problemHandler, requestContext } from '../../src/http/middleware.ts';
import { AppError } from '../../src/platform/errors.ts';
import { createLogger } from '../../src/platform/logger.ts';

const PRINCIPAL: AccessTokenPrincipal = {
  format: 'opaque', clientId: 'client-1', userId: 'user-1', organizationId: 'org-1', roles: ['agent'],
  scopes: new Set(['crm:read']), expiresAt: Math.floor(Date.now() / 1000) + 60,
};

async function serve(routes: RouteDefinition[], strict = true): Promise<{ url: string; server: Server }> {
  const app = new Koa({ proxy: true });
  app.silent = true;
  app.use(requestContext(createLogger({ logLevel: 'silent', env: 'test' })));
  app.use(problemHandler);
  const router = new Router();
  mountRoutes(router, routes, {
    authenticate: async (ctx, next) => { ctx.state.auth = PRINCIPAL; await next(); },
    allows: async () => true,
    strictResponses: strict,
  });
  app.use(router.routes());
  const server = createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('defineRoute pipeline', () => {
  const servers: Server[] = [];
  after(() => { for (const server of servers) server.close(); });

  it('hands every handler the actor it built from the token and the request', async () => {
    const { url, server } = await serve([defineRoute({
      method: 'get', path: '/whoami', tag: 'Test', summary: 'who', scope: 'crm:read', responses: { 200: null },
      handler: async ({ actor }) => ({ status: 200, body: actor }),
    })]);
    servers.push(server);
    const response = await fetch(`${url}/whoami`, { headers: { 'user-agent': 'probe/1.0', 'x-forwarded-for': '203.0.113.9' } });
    expect(response.status).to.equal(200);
    expect(await response.json()).to.deep.equal({
      userId: 'user-1', clientId: 'client-1', organizationId: 'org-1', roles: ['agent'], ip: '203.0.113.9', userAgent: 'probe/1.0',
    });
  });

  describe('declared error codes', () => {
    const routes = () => [
      defineRoute({
        method: 'post', path: '/declared', tag: 'Test', summary: 'declares its conflict', responses: { 201: null }, errors: ['customer.email_taken'],
        handler: async () => { throw new AppError('customer.email_taken'); },
      }),
      defineRoute({
        method: 'post', path: '/undeclared', tag: 'Test', summary: 'declares nothing', responses: { 201: null },
        handler: async () => { throw new AppError('customer.email_taken'); },
      }),
      defineRoute({
        method: 'get', path: '/things/:id', tag: 'Test', summary: 'implied not found', params: z.object({ id: z.string() }), responses: { 200: null },
        handler: async () => { throw new AppError('resource.not_found'); },
      }),
    ];

    it('answers a declared code as the catalogue says', async () => {
      const { url, server } = await serve(routes());
      servers.push(server);
      expect((await fetch(`${url}/declared`, { method: 'POST' })).status).to.equal(409);
    });

    it('fails in strict mode when a handler throws a code its route does not declare', async () => {
      const { url, server } = await serve(routes());
      servers.push(server);
      expect((await fetch(`${url}/undeclared`, { method: 'POST' })).status).to.equal(500);
    });

    it('takes the generic codes as implied: a route with path parameters may answer 404 undeclared', async () => {
      const { url, server } = await serve(routes());
      servers.push(server);
      expect((await fetch(`${url}/things/1`)).status).to.equal(404);
    });

    it('answers an undeclared code as it is outside strict mode', async () => {
      const { url, server } = await serve(routes(), false);
      servers.push(server);
      expect((await fetch(`${url}/undeclared`, { method: 'POST' })).status).to.equal(409);
    });
  });
});
