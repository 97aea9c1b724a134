// The provider step around every endpoint that authenticates clients (src/services/client-auth-throttle.ts
// has the rules). Before: an address this process knows to be blocked is refused without
// reading the request. After: an invalid_client answer is counted, and past a limit becomes a 429.
import type { KoaContextWithOIDC } from 'oidc-provider';

import type { Logger } from '../platform/logger.ts';
import type { ClientAuthThrottle } from '../services/client-auth-throttle.ts';

/** Provider routes whose requests carry client authentication (RFC 6749 section 2.3). */
const CLIENT_AUTH_ROUTES = ['token', 'introspection', 'revocation', 'pushed_authorization_request', 'device_authorization'] as const;

/** RFC 6749 section 5.2's error shape, with RFC 6585's 429 and Retry-After. */
function answerThrottled(ctx: KoaContextWithOIDC, retryAfterSeconds: number, description: string): void {
  ctx.status = 429;
  ctx.set('Retry-After', String(retryAfterSeconds));
  ctx.set('Cache-Control', 'no-store');
  ctx.remove('WWW-Authenticate');
  ctx.body = { error: 'invalid_client', error_description: description };
}

export function throttleClientAuthentication(throttle: ClientAuthThrottle, routes: Record<(typeof CLIENT_AUTH_ROUTES)[number], string>, logger: Logger) {
  // The provider's router matches paths case-insensitively and with a trailing slash; so does this.
  const paths = new Set(CLIENT_AUTH_ROUTES.map((route) => routes[route].toLowerCase()));
  const routeNames = new Set<string>(CLIENT_AUTH_ROUTES);

  return async function limitFailedClientAuthentication(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
    if (!throttle.enabled || ctx.method !== 'POST' || !paths.has(ctx.path.replace(/(.)\/$/, '$1').toLowerCase())) return next();
    const waitSeconds = throttle.addressBlocked(ctx.ip);
    if (waitSeconds !== undefined) {
      return answerThrottled(ctx, waitSeconds, `too many failed client authentications from this address; retry in ${waitSeconds} s`);
    }
    await next();

    const body = ctx.body as { error?: unknown } | undefined;
    if (ctx.status !== 401 || body?.error !== 'invalid_client' || !routeNames.has(ctx.oidc?.route ?? '')) return;
    // Set once the provider found the client, before it checked the secret or assertion.
    const clientId = ctx.oidc.client?.clientId;
    const throttled = await throttle.recordFailure(ctx.ip, clientId);
    if (throttle.addressBlocked(ctx.ip) !== undefined) logger.warn({ ip: ctx.ip, route: ctx.oidc.route }, 'address blocked after failed client authentications');
    if (!throttled) return;
    answerThrottled(ctx, throttled.retryAfterSeconds, throttled.scope === 'address'
      ? `too many failed client authentications from this address; retry in ${throttled.retryAfterSeconds} s`
      : `too many failed authentications for this client; retry in ${throttled.retryAfterSeconds} s`);
  };
}
