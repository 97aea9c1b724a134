// buildApp(deps): the one file that knows every mount point.
import Router from '@koa/router';
import Koa, { type Middleware } from 'koa';
import compose from 'koa-compose';

import { apiRoutes } from './api/routes.ts';
import { authenticate } from './http/authenticate.ts';
import { mountRoutes } from './http/define-route.ts';
import { AppError } from './platform/errors.ts';
import { parseJsonBody } from './http/json-body.ts';
import { problemHandler, requestContext, securityHeaders } from './http/middleware.ts';
import { docsRoutes } from './http/docs.ts';
import { operationsRoutes } from './http/operations.ts';
import { accountPages } from './oidc/account/account-pages.ts';
import { securityPages } from './oidc/account/security-pages.ts';
import { interactionPages } from './oidc/interactions/interaction.routes.ts';
import { challengeEveryUnauthorized } from './oidc/oauth-challenge.ts';
import { rateLimit } from './http/rate-limits.ts';
import { OIDC_ROUTES } from './oidc/provider.ts';
import type { Dependencies } from './dependencies.ts';

export const API_PREFIX = '/api/v1';

/** Koa's composition of the steps that are on (a rate limit set to 0 is none). */
function chain(steps: (Middleware | undefined)[]): Middleware {
  return compose(steps.filter((step): step is Middleware => step !== undefined));
}
// Endpoints that take a password or mint a session from one, or mail a link to a typed address.
const SIGN_IN_PATHS = new Set([
  `${API_PREFIX}/auth/login`, `${API_PREFIX}/auth/mfa`, `${API_PREFIX}/auth/register`, `${API_PREFIX}/auth/refresh`,
  `${API_PREFIX}/auth/forgot-password`, `${API_PREFIX}/auth/reset-password`,
]);
// Their pages: the sign-in forms, and the forms that ask for or use a reset link.
const SIGN_IN_PAGES = ['/interaction/', '/account/forgot-password', '/account/reset-password'];
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

  const limitTokenRequests = rateLimit(deps.store, {
    name: 'token', perMinute: config.rateLimits.token, answer: 'oauth',
    appliesTo: (ctx) => ctx.method === 'POST' && ctx.path === OIDC_ROUTES.token,
  });
  const limitSignInRequests = rateLimit(deps.store, {
    name: 'login', perMinute: config.rateLimits.login,
    answer: (ctx) => (ctx.path.startsWith(`${API_PREFIX}/`) ? 'problem' : 'page'),
    appliesTo: (ctx) => ctx.method === 'POST' && (SIGN_IN_PATHS.has(ctx.path) || SIGN_IN_PAGES.some((prefix) => ctx.path.startsWith(prefix))),
  });

  // The resource API and the provider's side share nothing below the outer layers, so each
  // request enters only its own chain: an API call never passes through the provider's app and
  // the sign-in pages' path tests, nor a token request through the API router (issue 12).
  const api = new Router({ prefix: API_PREFIX });
  mountRoutes(api, routes, {
    authenticate: authenticate(deps.verifier, config.issuer),
    allows: (auth, permission) => deps.permissionResolver.allows(auth, permission),
    strictResponses: config.env !== 'production',
    afterWrite: (actor) => deps.reads.noteWrite(actor),
  });
  const apiChain = chain([
    limitSignInRequests,
    // /api/v1 takes JSON bodies only (API.md "Operations"); DELETE bodies carry id lists (DELETE /users/:id/roles {role_ids}).
    parseJsonBody,
    api.routes() as unknown as Middleware,
    api.allowedMethods({ throw: true, methodNotAllowed: () => new AppError('request.method_not_allowed') }) as unknown as Middleware,
  ]);
  const operationsRouter = operations.routes() as unknown as Middleware;
  const providerChain = chain([
    // Health, readiness and the API documentation; nothing under /oauth/ is theirs.
    (ctx, next) => (ctx.path.startsWith('/oauth/') ? next() : operationsRouter(ctx, next)),
    limitTokenRequests,
    limitSignInRequests,
    // The pages mailed links open (/account/*).
    accountPages(deps),
    // The signed-in user's second factors (/account/security) and the account pages' sign-in.
    securityPages(deps),
    // Sign-in and consent pages, their stylesheet, and the policy of the pages the provider renders.
    interactionPages(deps),
    challengeEveryUnauthorized(config.issuer),
    deps.providers.middleware(),
  ]);
  app.use((ctx, next) => (ctx.path.startsWith(`${API_PREFIX}/`) ? apiChain(ctx, next) : providerChain(ctx, next)));

  return app;
}
