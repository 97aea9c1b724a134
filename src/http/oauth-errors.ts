// Answers written for the provider's /oauth/ endpoints outside node-oidc-provider itself (its
// store outages, our rate limits), in the shape it uses, so a client sees one kind of error there.
import type { Context } from 'koa';

import { RETRY_AFTER_SECONDS } from './middleware.ts';
import { renderPage } from './pages.ts';

/** An OAuth error answer (RFC 6749 section 5.2 shape), or a page for a browser, as the provider itself chooses. */
export function writeOAuthError(ctx: Context, status: number, error: string, description: string, headers: Record<string, string> = {}): void {
  if (ctx.accepts('json', 'html') === 'html') {
    renderPage(ctx, 'error', {
      title: status >= 500 ? 'Latchkey is briefly unavailable' : 'This request cannot continue', message: description, code: error,
    }, { status, headers });
    return;
  }
  ctx.status = status;
  for (const [name, value] of Object.entries(headers)) ctx.set(name, value);
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error, error_description: description };
}

/** A backing store is down: 503 temporarily_unavailable (RFC 6749 section 4.1.2.1) with Retry-After. */
export function writeOAuthUnavailable(ctx: Context): void {
  writeOAuthError(ctx, 503, 'temporarily_unavailable', 'a backing store is unavailable; retry shortly', { 'Retry-After': String(RETRY_AFTER_SECONDS) });
}
