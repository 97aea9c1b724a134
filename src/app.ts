// buildApp(deps): the one file that knows every mount point.
import Router from '@koa/router';
import Koa from 'koa';

import { apiRoutes } from './api/routes.ts';
import { authenticate } from './http/authenticate.ts';
import { mountRoutes } from './http/define-route.ts';
import { AppError } from './platform/errors.ts';
import { parseJsonBody } from './http/json-body.ts';
import { problemHandler, requestContext, securityHeaders } from './http/middleware.ts';
import { docsRoutes } from './http/docs.ts';
import { operationsRoutes } from './http/operations.ts';
import { interactionPages } from './oidc/interactions/interaction.routes.ts';
import { challengeEveryUnauthorized } from './oidc/oauth-challenge.ts';
import { rateLimit } from './http/rate-limits.ts';
import { OIDC_ROUTES } from './oidc/provider.ts';
import type { Dependencies } from './dependencies.ts';

export const API_PREFIX = '/api/v1';
// Endpoints that take a password or mint a session from one.
const SIGN_IN_PATHS = new Set([`${API_PREFIX}/auth/login`, `${API_PREFIX}/auth/register`, `${API_PREFIX}/auth/refresh`]);
export function buildApp(deps: Dependencies): Koa {
  const { config } = deps;
  const app = new Koa({ proxy: config.trustProxy });
  app.silent = true;
  // The provider runs on this app's context, so its signed cookies use these keys.
  app.keys = deps.cookieKeys;

  app.use(deps.metrics.middleware());
  app.use(requestContext(deps.logger));
  app.use(securityHeaders(config.secureCookies));
  app.use(problemHandler);

  const routes = apiRoutes(deps);
  const operations = new Router();
  operationsRoutes(operations, deps);
  docsRoutes(operations, config, routes, API_PREFIX);
  app.use(operations.routes());

  app.use(rateLimit(deps.store, {
    name: 'token', perMinute: config.rateLimits.token, answer: 'oauth',
    appliesTo: (ctx) => ctx.method === 'POST' && ctx.path === OIDC_ROUTES.token,
  }));
  app.use(rateLimit(deps.store, {
    name: 'login', perMinute: config.rateLimits.login,
    answer: (ctx) => (ctx.path.startsWith('/interaction/') ? 'page' : 'problem'),
    appliesTo: (ctx) => ctx.method === 'POST' && (SIGN_IN_PATHS.has(ctx.path) || ctx.path.startsWith('/interaction/')),
  }));

  // Sign-in and consent pages, their stylesheet, and the policy of the pages the provider renders.
  for (const middleware of interactionPages(deps)) app.use(middleware);
  app.use(challengeEveryUnauthorized(config.issuer));
  app.use(deps.providers.middleware());

  // /api/v1 takes JSON bodies only (API.md "Operations"); DELETE bodies carry id lists (DELETE /users/:id/roles {role_ids}).
  app.use((ctx, next) => (ctx.path.startsWith(`${API_PREFIX}/`) ? parseJsonBody(ctx, next) : next()));

  const api = new Router({ prefix: API_PREFIX });
  mountRoutes(api, routes, {
    authenticate: authenticate(deps.verifier, config.issuer),
    allows: (auth, permission) => deps.permissionResolver.allows(auth, permission),
    strictResponses: config.env !== 'production',
    afterWrite: (actor) => deps.reads.noteWrite(actor),
  });
  app.use(api.routes());
  app.use(api.allowedMethods({ throw: true, methodNotAllowed: () => new AppError('request.method_not_allowed') }));

  return app;
}
