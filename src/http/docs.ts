// GET /openapi.json, GET /docs (Swagger UI from this server's own copy: no CDN) and GET /
// (the landing page).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import type Router from '@koa/router';

import { renderPage, VIEWS_DIRECTORY } from './pages.ts';
import { VERSION } from '../platform/version.ts';
import type { RouteDefinition } from './define-route.ts';
import { buildOpenApiDocument } from './openapi.ts';
import type { Config } from '../platform/config.ts';

const SWAGGER_UI = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

// Only these names can ever be served.
const DOCS_ASSETS: Record<string, { file: string; type: string }> = {
  'swagger-ui.css': { file: path.join(SWAGGER_UI, 'swagger-ui.css'), type: 'text/css; charset=utf-8' },
  'swagger-ui-bundle.js': { file: path.join(SWAGGER_UI, 'swagger-ui-bundle.js'), type: 'text/javascript; charset=utf-8' },
  'docs-init.js': { file: path.join(VIEWS_DIRECTORY, 'static', 'docs-init.js'), type: 'text/javascript; charset=utf-8' },
};

// Swagger UI sets inline styles and loads images as data: URLs; scripts come only from here.
const DOCS_POLICY = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

export function docsRoutes(router: Router, config: Config, routes: RouteDefinition[], prefix: string): void {
  // Read on the first request for each (Swagger UI's bundle is 1.7 MB), then kept.
  const assets = new Map<string, { body: Buffer; type: string }>();
  const assetNamed = (name: string) => {
    const asset = Object.hasOwn(DOCS_ASSETS, name) ? DOCS_ASSETS[name] : undefined;
    if (!asset) return undefined;
    let loaded = assets.get(name);
    if (!loaded) {
      loaded = { body: readFileSync(asset.file), type: asset.type };
      assets.set(name, loaded);
    }
    return loaded;
  };
  let document: string | undefined;

  router.get('/openapi.json', (ctx) => {
    document ??= JSON.stringify(buildOpenApiDocument(routes, config, prefix));
    ctx.type = 'application/json';
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = document;
  });

  router.get('/docs', (ctx) => {
    renderPage(ctx, 'docs', {});
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.set('Content-Security-Policy', DOCS_POLICY);
  });

  router.get('/docs/assets/:name', (ctx) => {
    const asset = assetNamed(ctx.params.name ?? '');
    if (!asset) return;
    ctx.type = asset.type;
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.body = asset.body;
  });

  router.get('/', (ctx) => {
    renderPage(ctx, 'home', { title: 'Welcome', version: VERSION });
    ctx.set('Cache-Control', 'public, max-age=300');
  });
}
