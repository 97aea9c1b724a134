// One declaration per route (STYLE.md "One schema, three jobs"): method, path, scope, zod schemas
// for params, query, body and responses. From it come the runtime validation, the handler's
// types, and the OpenAPI document.
import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z, type ZodType } from 'zod';

import type { Actor } from '../platform/actor.ts';
import { challenge, type AccessTokenPrincipal } from './authenticate.ts';
import { queryWithAliases } from './pagination.ts';
import { AppError, validationError, type ErrorCode } from '../platform/errors.ts';
import { rejectUnstorableText } from './storable-text.ts';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface HandlerInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  auth: AccessTokenPrincipal;
  /** Who is calling, built once by the pipeline from `auth` and the request (not set on public routes). */
  actor: Actor;
  ctx: Context;
}

export interface HandlerResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface RouteDefinition<P = unknown, Q = unknown, B = unknown> {
  method: HttpMethod;
  /** koa-router syntax, relative to /api/v1: `/customers/:id`. */
  path: string;
  tag: string;
  summary: string;
  /** false for the few public routes (register, login, refresh). */
  authenticated?: boolean;
  /**
   * OAuth scope the token must carry. Left out, the /api/v1 router derives it from the permission
   * (api/routes.ts); null means none on purpose, with the reason written on the route.
   */
  scope?: string | null;
  /** Set by the router when it derived `scope` from the permission. */
  scopeFollowsPermission?: boolean;
  /** RBAC permission (`resource:action`) the caller's roles must hold. */
  permission?: string;
  params?: ZodType<P>;
  query?: ZodType<Q>;
  body?: ZodType<B>;
  responses: Record<number, ZodType | null>;
  /** For a body that is not JSON (a download): its media types, for the OpenAPI document. */
  produces?: string[];
  /**
   * The codes the handler may throw besides the implied ones (impliedErrors). In strict mode a
   * handler that throws another code fails, so this list, and the OpenAPI document made from it,
   * can be trusted.
   */
  errors?: ErrorCode[];
  handler: (input: HandlerInput<P, Q, B>) => Promise<HandlerResult>;
}

/** Keeps the generic types of one route together while lists of routes stay heterogeneous. */
export function defineRoute<P = undefined, Q = undefined, B = undefined>(route: RouteDefinition<P, Q, B>): RouteDefinition {
  return route as unknown as RouteDefinition;
}

/**
 * Codes any route may answer without declaring them, because the pipeline or the organization
 * boundary answers them for every route alike: malformed or invalid input, an exhausted rate
 * limit, an outage; with a token, its refusal, a missing scope and a refused permission or
 * organization (auth.forbidden); with path parameters, a row that is not there or not visible.
 * They are the statuses the OpenAPI document lists for every operation of that kind.
 */
export function impliedErrors(route: Pick<RouteDefinition, 'authenticated' | 'params'>): ErrorCode[] {
  const codes: ErrorCode[] = ['request.malformed', 'request.validation_failed', 'request.rate_limited', 'server.internal', 'server.unavailable'];
  if (route.authenticated !== false) codes.push('auth.token_missing', 'auth.token_invalid', 'auth.dpop_invalid', 'auth.insufficient_scope', 'auth.forbidden');
  if (route.params) codes.push('resource.not_found');
  return codes;
}

function requireScope(scope: string | null | undefined) {
  return function checkScope(ctx: Context) {
    if (scope && !ctx.state.auth.scopes.has(scope)) {
      throw new AppError('auth.insufficient_scope', `This operation needs the "${scope}" scope`, {
        headers: { 'WWW-Authenticate': `${challenge('Bearer', { code: 'insufficient_scope', description: `requires ${scope}` })}, scope="${scope}"` },
      });
    }
  };
}

/**
 * The query parameters a route declares, read the same way on every route: a parameter the route
 * does not declare is a 422 (a misspelt filter must not answer an unfiltered list), and an empty
 * value (`?status=`, as form-built URLs send) means the parameter is absent.
 */
function queryKeysOf(route: RouteDefinition): ReadonlySet<string> {
  if (!route.query) return new Set();
  if (!(route.query instanceof z.ZodObject)) throw new Error(`the query schema of ${route.method} ${route.path} must be an object`);
  return new Set(Object.keys(route.query.shape));
}

function readQuery(query: Context['query'], known: ReadonlySet<string>): Record<string, string | string[]> {
  const unknown = Object.keys(query).filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new AppError('request.validation_failed', `Unknown query parameter${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`, {
      errors: unknown.map((name) => ({ path: ['query', name], message: 'is not a parameter of this operation', code: 'unrecognized_keys' })),
    });
  }
  const present: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(query)) {
    const values = (Array.isArray(value) ? value : [value]).filter((item): item is string => item !== undefined && item !== '');
    if (values.length > 0) present[name] = values.length === 1 ? values[0]! : values;
  }
  return queryWithAliases(present);
}

function parse<T>(schema: ZodType<T> | undefined, value: unknown, location: 'params' | 'query' | 'body'): T {
  if (!schema) return undefined as T;
  const result = schema.safeParse(value);
  if (!result.success) throw validationError(location, result.error);
  return result.data;
}

export interface MountOptions {
  authenticate: Middleware;
  /** Whether the caller's roles hold the permission (organization boundary included). */
  allows(auth: AccessTokenPrincipal, permission: string): Promise<boolean>;
  /**
   * Whether answers must match their declarations: in development and tests a response that does
   * not match its schema, or an error code the route does not declare, fails the request (500).
   * In production neither is checked: the schemas are proven by the test suite, and parsing every
   * answer again cost a CRM list read about a fifth of its time (bench/README.md).
   */
  strictResponses: boolean;
  /**
   * Told of each successful mutating request of a caller before the answer leaves, so that the
   * caller's next reads see its write (read replicas: platform/read-replicas.ts). Failing it only
   * costs that guarantee, never the answer to a write that has committed.
   */
  afterWrite?(actor: Actor): Promise<void>;
}

export function mountRoutes(router: Router, routes: RouteDefinition[], options: MountOptions): void {
  for (const route of routes) {
    const checkScope = requireScope(route.scope);
    const queryKeys = queryKeysOf(route);
    const declaredErrors = new Set<ErrorCode>([...impliedErrors(route), ...route.errors ?? []]);
    const runHandler = async (input: HandlerInput<unknown, unknown, unknown>) => {
      try {
        return await route.handler(input);
      } catch (error) {
        if (options.strictResponses && error instanceof AppError && !declaredErrors.has(error.code)) {
          throw new Error(`${route.method} ${route.path} answered ${error.code}, which its errors do not declare`, { cause: error });
        }
        throw error;
      }
    };
    const steps: Middleware[] = [];
    if (route.authenticated !== false) steps.push(options.authenticate);
    steps.push(async function runRoute(ctx) {
      if (route.authenticated !== false) {
        // A scope derived from the permission is checked after it: a caller without the
        // permission hears that, and one holding it learns which scope the token lacks.
        if (!route.scopeFollowsPermission) checkScope(ctx);
        if (route.permission && !await options.allows(ctx.state.auth, route.permission)) {
          throw new AppError('auth.forbidden', `This operation needs the "${route.permission}" permission`);
        }
        if (route.scopeFollowsPermission) checkScope(ctx);
      }
      rejectUnstorableText({ params: ctx.params, query: ctx.query, body: (ctx.request as { body?: unknown }).body });
      const params = parse(route.params, ctx.params, 'params');
      const query = parse(route.query, readQuery(ctx.query, queryKeys), 'query');
      const body = parse(route.body, (ctx.request as { body?: unknown }).body ?? {}, 'body');
      const auth = ctx.state.auth;
      const actor = (auth ? actorOf({ auth, ctx }) : undefined) as Actor;
      const result = await runHandler({ params, query, body, auth, actor, ctx });
      if (route.method !== 'get' && actor && options.afterWrite) {
        await options.afterWrite(actor).catch((error: unknown) => ctx.state.log.warn({ err: (error as Error).message }, 'could not mark the caller\'s write for read-your-writes'));
      }
      const schema = route.responses[result.status];
      if (options.strictResponses && schema && result.body !== undefined) {
        const checked = schema.safeParse(result.body);
        if (!checked.success) {
          ctx.state.log.error({ route: `${route.method} ${route.path}`, issues: checked.error.issues }, 'response does not match its schema');
          throw new Error(`response schema mismatch on ${route.method} ${route.path}`);
        }
      }
      for (const [name, value] of Object.entries(result.headers ?? {})) ctx.set(name, value);
      ctx.status = result.status;
      if (result.body !== undefined) ctx.body = result.body;
    });
    router[route.method](route.path, ...steps);
  }
}

/** Shared schema pieces. */
export const uuidParam = z.uuid({ error: 'expected a UUID' });

/**
 * The acting principal as services take it: the token's facts plus the request's origin. The
 * pipeline hands it to every handler as `input.actor`; route files do not call this themselves.
 */
function actorOf(input: { auth: AccessTokenPrincipal; ctx: Context }): Actor {
  const { auth, ctx } = input;
  return {
    userId: auth.userId, clientId: auth.clientId, organizationId: auth.organizationId, roles: auth.roles,
    ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined,
  };
}
