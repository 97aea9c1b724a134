// Server-rendered pages (API.md section 2: login and consent "server-rendered from views/").
// Templates are Eta files under views/, escaped by default; every page gets a strict policy.
import type { Context } from 'koa';

import { htmlTemplates as templates, PRODUCT_NAME, VIEWS_DIRECTORY } from '../platform/templates.ts';

export { PRODUCT_NAME, VIEWS_DIRECTORY };
export const STYLESHEET_PATH = '/static/latchkey.css';
/** The WebAuthn browser library, then the page script that runs a passkey form's ceremony (views/static/passkeys.js). */
const PASSKEY_SCRIPTS = ['/static/simplewebauthn-browser.js', '/static/passkeys.js'];

/**
 * Content-Security-Policy of a page: no scripts (the passkey pages: this server's script files only), styles from /static only, never framed.
 * Browsers apply `form-action` to the redirects that follow a form submission too (Chromium
 * does), so it lists the origins a form's answer redirects to, such as the client's
 * redirect_uri after sign-in.
 */
export function pagePolicy(formTargets: readonly string[] = [], scripts = false): string {
  const targets = [...new Set(formTargets.map(sourceOf).filter((source): source is string => !!source))];
  return [
    "default-src 'none'",
    // Only pages with a WebAuthn ceremony run scripts, and only this server's files (no inline code).
    ...(scripts ? ["script-src 'self'"] : []),
    "style-src 'self'",
    "img-src 'self'",
    `form-action 'self'${targets.map((target) => ` ${target}`).join('')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

/** A CSP source for a URL: its origin for http(s), its scheme for a native app's private-use URI. */
function sourceOf(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') return url.origin;
  // RFC 8252 section 7.1 private-use schemes ("com.example.app:/cb") have no origin.
  return /^[a-z][a-z0-9+.-]*:$/i.test(url.protocol) ? url.protocol : undefined;
}

export interface PageOptions {
  status?: number;
  /** URLs the page's forms may end up at (see pagePolicy). */
  formTargets?: readonly string[];
  headers?: Record<string, string>;
  /** The page runs the passkey script (a WebAuthn ceremony): its policy allows this server's scripts. */
  scripts?: boolean;
}

/** Renders views/<view>.eta into the response with the page headers. */
export function renderPage(ctx: Context, view: string, data: Record<string, unknown>, options: PageOptions = {}): void {
  ctx.status = options.status ?? 200;
  ctx.type = 'html';
  // Pages carry per-interaction form tokens and account details: never cached (RFC 9111 section 5.2.2.5).
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Content-Security-Policy', pagePolicy(options.formTargets, options.scripts));
  for (const [name, value] of Object.entries(options.headers ?? {})) ctx.set(name, value);
  ctx.body = templates.render(view, {
    productName: PRODUCT_NAME, stylesheet: STYLESHEET_PATH, scripts: options.scripts ? PASSKEY_SCRIPTS : [], ...data,
  });
}

/** "45 seconds", "1 minute", "15 minutes": the wait shown on a throttled sign-in. */
export function describeWait(seconds: number): string {
  if (seconds < 60) return seconds === 1 ? '1 second' : `${seconds} seconds`;
  const minutes = Math.ceil(seconds / 60);
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}
