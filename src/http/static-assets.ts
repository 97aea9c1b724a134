// The pages' own assets (a stylesheet, the passkey script and the WebAuthn browser library),
// served from this server so that the pages' policy can say `style-src 'self'` and
// `script-src 'self'`, and nothing is fetched from elsewhere.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';

import type { Context, Middleware, Next } from 'koa';

const CONTENT_TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};
const MAX_AGE_SECONDS = 24 * 60 * 60;

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** @simplewebauthn/browser's UMD bundle (a global `SimpleWebAuthnBrowser`), the same version as the server package's. */
export const WEBAUTHN_BROWSER_ASSET = 'simplewebauthn-browser.js';

export function webauthnBrowserBundle(): string {
  // The package exports only its entry point (script/index.js); the bundle sits beside it in dist/.
  const entry = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
  return join(dirname(entry), '..', 'dist', 'bundle', 'index.umd.min.js');
}

/**
 * Serves the files of `directory` under `prefix`, and `extraFiles` (name to path) beside them. They are read once at start: a request can
 * only name a file that was there, so no path from a URL ever reaches the file system.
 */
export function staticAssets(directory: string, prefix = '/static/', extraFiles: Record<string, string> = {}): Middleware {
  const assets = new Map<string, Asset>();
  const add = (name: string, path: string) => {
    const type = CONTENT_TYPES[extname(name)];
    if (!type) return;
    const body = readFileSync(path);
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` });
  };
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    if (entry.isFile()) add(entry.name, join(directory, entry.name));
  }
  for (const [name, path] of Object.entries(extraFiles)) add(name, path);

  return async function serveStaticAsset(ctx: Context, next: Next) {
    const asset = ctx.path.startsWith(prefix) ? assets.get(ctx.path.slice(prefix.length)) : undefined;
    if (!asset || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    ctx.status = 200;
    ctx.type = asset.type;
    ctx.set('Cache-Control', `public, max-age=${MAX_AGE_SECONDS}`);
    ctx.set('ETag', asset.etag);
    // RFC 9110 section 13.1.2: a matching If-None-Match answers 304 without the body.
    if (ctx.fresh) {
      ctx.status = 304;
      return;
    }
    ctx.body = asset.body;
  };
}
