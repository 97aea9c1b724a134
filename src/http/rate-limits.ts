// Request-rate limits per client IP on the endpoints that take credentials (koa-ratelimit, over
// Redis or an in-process map). They bound volume; the sign-in throttle bounds guessing.
import type { Redis } from 'ioredis';
import type { Context, Middleware, Next } from 'koa';
import ratelimit from 'koa-ratelimit';

import { RedisStore } from '../platform/redis-store.ts';
import { StoreUnavailableError, type KeyValueStore } from '../platform/store.ts';
import { AppError } from '../platform/errors.ts';
import { writeProblem } from './middleware.ts';
import { writeOAuthUnavailable } from './oauth-errors.ts';
import { renderPage } from './pages.ts';

export interface RateLimitRule {
  /** Storage namespace, also the rule's name. */
  name: string;
  /** Requests per IP per minute; 0 turns the rule off. */
  perMinute: number;
  appliesTo(ctx: Context): boolean;
  /** OAuth endpoints answer in RFC 6749's JSON error shape, the API in problem+json, the sign-in pages with a page. */
  answer: 'oauth' | 'problem' | ((ctx: Context) => 'oauth' | 'problem' | 'page');
}

/** The rule as a middleware; none when it is off (0), so that no chain carries a step doing nothing. */
export function rateLimit(store: KeyValueStore, rule: RateLimitRule): Middleware | undefined {
  if (rule.perMinute === 0) return undefined;
  const limiter = ratelimit({
    // The limiter defines one single-key script and calls it, which a Cluster serves as well as
    // one Redis does; its type names only the single-server client.
    ...(store instanceof RedisStore ? { driver: 'redis' as const, db: store.client as Redis } : { driver: 'memory' as const, db: new Map() }),
    namespace: `ratelimit:${rule.name}`,
    duration: 60_000,
    max: rule.perMinute,
    id: (ctx: Context) => ctx.ip,
    headers: { remaining: 'RateLimit-Remaining', reset: 'RateLimit-Reset', total: 'RateLimit-Limit' },
  });
  return async function limitRequestRate(ctx: Context, next: Next) {
    if (!rule.appliesTo(ctx)) return next();
    let admitted = false;
    try {
      await limiter(ctx, () => {
        admitted = true;
        return next();
      });
    } catch (error) {
      // A failure before admission is the limiter's store; errors from downstream pass through.
      if (admitted) throw error;
      if (rule.answer !== 'oauth') throw new StoreUnavailableError(error);
      writeOAuthUnavailable(ctx);
      return;
    }
    const limited = (ctx.state as { rateLimit?: { after: number } }).rateLimit;
    if (!limited || ctx.status !== 429) return;
    const retryAfter = String(Math.max(1, limited.after));
    const answer = typeof rule.answer === 'function' ? rule.answer(ctx) : rule.answer;
    if (answer === 'page') {
      renderPage(ctx, 'error', {
        title: 'Too many attempts', message: `Too many requests came from your network. Wait ${retryAfter} seconds, then try again.`,
      }, { status: 429, headers: { 'Retry-After': retryAfter } });
    } else if (answer === 'problem') {
      writeProblem(ctx, new AppError('request.rate_limited', 'Too many requests from this address; slow down', { headers: { 'Retry-After': retryAfter } }));
    } else {
      ctx.set('Retry-After', retryAfter);
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'slow_down', error_description: 'too many requests from this address' };
    }
  };
}
