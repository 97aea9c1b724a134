// The outer layers of every request: a request id and logger, problem+json for errors, security
// headers, and the 503 answer when a backing store is down.
import { randomUUID } from 'node:crypto';

import type { Context, Next } from 'koa';

import { isDatabaseUnavailable, isUniqueViolation, isUnstorableText } from '../platform/database.ts';
import type { Logger } from '../platform/logger.ts';
import { StoreUnavailableError } from '../platform/store.ts';
import { AppError } from '../platform/errors.ts';
import { REALM, challenge } from './authenticate.ts';
import { bodyTooLarge } from './json-body.ts';

export const RETRY_AFTER_SECONDS = 5;

declare module 'koa' {
  interface DefaultState {
    requestId: string;
    log: Logger;
  }
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

export function isStoreOutage(error: unknown): boolean {
  return error instanceof StoreUnavailableError || isDatabaseUnavailable(error);
}

/**
 * What every request carries: its id, and a logger bound to it. The child logger is made on first
 * use: most requests never log beyond their access line.
 */
class RequestState {
  readonly requestId: string;
  readonly #logger: Logger;
  #log: Logger | undefined;

  constructor(requestId: string, logger: Logger) {
    this.requestId = requestId;
    this.#logger = logger;
  }

  get log(): Logger {
    return (this.#log ??= this.#logger.child({ reqId: this.requestId }));
  }
}

export function requestContext(logger: Logger) {
  const logsRequests = logger.isLevelEnabled('info');
  return async function assignRequestId(ctx: Context, next: Next) {
    const incoming = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    // Set before anything else has written to the state (this is the first step that does); the
    // rest of DefaultState (`auth`, ...) is filled in by later steps.
    ctx.state = new RequestState(requestId, logger) as unknown as Context['state'];
    ctx.res.setHeader('X-Request-Id', requestId);
    const started = logsRequests ? performance.now() : 0;
    await next();
    if (!logsRequests) return;
    ctx.state.log.info({
      method: ctx.method,
      path: ctx.path,
      status: ctx.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    }, 'request');
  };
}

/**
 * RFC 9110 section 15.5.2: a 401 MUST carry a challenge. A Bearer one always (the API's scheme),
 * with `invalid_token` when a presented token was refused (RFC 6750 section 3.1); a client that
 * failed Basic authentication also gets a challenge in its own scheme (RFC 6749 section 5.2).
 */
function challengeFor(ctx: Context, error: AppError): string {
  const bearer = challenge('Bearer', error.refusedToken ? { code: 'invalid_token', description: error.message } : undefined);
  return error.code === 'auth.invalid_client' && /^Basic\s/i.test(ctx.get('authorization')) ? `Basic realm="${REALM}", ${bearer}` : bearer;
}

export function writeProblem(ctx: Context, error: AppError): void {
  ctx.status = error.status;
  for (const [name, value] of Object.entries(error.headers)) ctx.set(name, value);
  if (error.status === 401 && !Object.keys(error.headers).some((name) => name.toLowerCase() === 'www-authenticate')) {
    ctx.set('WWW-Authenticate', challengeFor(ctx, error));
  }
  ctx.type = 'application/problem+json';
  ctx.body = error.toProblem();
}

/** Outermost: every error leaves as problem+json, without internals. */
export async function problemHandler(ctx: Context, next: Next) {
  try {
    await next();
    if (ctx.status === 404 && ctx.body === undefined) throw new AppError('resource.not_found', `No route for ${ctx.method} ${ctx.path}`);
  } catch (error) {
    writeProblem(ctx, toAppError(ctx, error));
  }
}

function toAppError(ctx: Context, error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (isStoreOutage(error)) {
    ctx.state.log?.warn({ err: (error as Error).message }, 'backing store unavailable');
    return new AppError('server.unavailable', 'A backing store is unavailable; retry shortly', {
      headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) },
    });
  }
  if (isUnstorableText(error)) return new AppError('request.malformed', 'The request holds text that cannot be stored (a NUL character or an unpaired surrogate)');
  // A unique index caught a race the service's own check could not: still a conflict, not a 500.
  if (isUniqueViolation(error)) return new AppError('request.conflict', 'The change conflicts with existing data');
  // koa-body and http-errors failures carry a 4xx status of their own.
  const status = (error as { status?: number; expose?: boolean }).status;
  if (status === 413) return bodyTooLarge();
  if (status === 415) return new AppError('request.unsupported_media_type', 'Request bodies must be application/json');
  if (status && status >= 400 && status < 500) return new AppError('request.malformed', 'The request could not be parsed');
  ctx.state.log?.error({ err: error }, 'unhandled error');
  return new AppError('server.internal', 'An unexpected error occurred');
}

export function securityHeaders(secureTransport: boolean) {
  return async function setSecurityHeaders(ctx: Context, next: Next) {
    await next();
    // Straight onto the response: Koa's ctx.set builds arrays for every header it sets.
    const { res } = ctx;
    if (res.headersSent) return;
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Frame-Options', 'DENY');
    if (secureTransport) res.setHeader('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    // Koa's `type` is the media type without parameters: no type-is parse on every answer.
    if (ctx.response.type === 'text/html' && !ctx.response.get('Content-Security-Policy')) {
      ctx.set('Content-Security-Policy', "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'");
    }
  };
}
