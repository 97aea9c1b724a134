import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import Router from '@koa/router';
import { expect } from 'chai';
import Koa from 'koa';

import { defineRoute, mountRoutes, type RouteDefinition } from '../../src/http/define-route.ts';
import type { AccessTokenPrincipal } from '../../src/http/authenticate.ts';
import { problemHandler, requestContext } from '../../src/http/middleware.ts';
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
});
