import Router from '@koa/router';
import { expect } from 'chai';
import { Validator } from '@seriousme/openapi-schema-validator';

import { API_PREFIX } from '../../src/app.ts';
import { apiRoutes } from '../../src/api/routes.ts';
import { mountRoutes } from '../../src/http/define-route.ts';
import { openApiPath } from '../../src/http/openapi.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';

describe('GET /openapi.json, /docs and /', () => {
  let server: TestServer;
  let document: { openapi: string; paths: Record<string, Record<string, unknown>>; components: { securitySchemes: Record<string, unknown> } };

  before(async () => {
    server = await startTestServer();
    document = await (await fetch(`${server.url}/openapi.json`)).json();
  });
  after(async () => { await server.close(); });

  it('is a valid OpenAPI 3.1 document', async () => {
    expect(document.openapi).to.equal('3.1.0');
    const result = await new Validator().validate(document as unknown as Parameters<Validator["validate"]>[0]);
    expect(result.errors ?? [], JSON.stringify(result.errors ?? []).slice(0, 2000)).to.deep.equal([]);
    expect(result.valid).to.equal(true);
  });

  it('lists every route the router has, and nothing else', () => {
    // Walk the router as the app builds it, layer by layer.
    const router = new Router({ prefix: API_PREFIX });
    mountRoutes(router, apiRoutes(server.deps), { authenticate: async (_ctx, next) => next(), allows: async () => true, strictResponses: true });
    const routed = router.stack.flatMap((layer) => layer.methods.filter((method) => method !== 'HEAD')
      .map((method) => `${method.toLowerCase()} ${openApiPath(String(layer.path))}`)).sort();
    const documented = Object.entries(document.paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method} ${path}`)).sort();
    expect(documented).to.deep.equal(routed);
    expect(routed.length).to.be.greaterThan(50);
  });

  it('shows the methods, fields and parameters the seeds send', () => {
    for (const path of ['/organizations/{id}', '/roles/{id}', '/permissions/{id}', '/locations/{id}', '/users/{id}', '/me', '/customers/{id}']) {
      expect(document.paths[`/api/v1${path}`], path).to.include.keys('put', 'patch');
    }
    const schemas = (document.components as unknown as { schemas: Record<string, { properties: Record<string, unknown> }> }).schemas;
    const fields = (name: string) => Object.keys(schemas[name]?.properties ?? {});
    expect(fields('RoleCreate')).to.include.members(['name', 'key']);
    expect(fields('Role')).to.include.members(['key', 'name']);
    expect(fields('PermissionCreate')).to.include.members(['name', 'resource', 'action']);
    const profile = ['organisation', 'contact_name', 'contact_phone', 'contact_email', 'address', 'industry', 'use_case'];
    expect(fields('UserCreate')).to.include.members(['full_name', ...profile]);
    expect(fields('UserPatch')).to.include.members(['full_name', 'is_active', 'is_verified', ...profile]);
    expect(fields('ProfilePatch')).to.include.members(['full_name', ...profile]);
    expect(fields('UserReplace')).to.include.members(['username', 'first_name', 'last_name', 'full_name', 'is_active', 'is_verified', ...profile]);
    expect(fields('ProfileReplace')).to.include.members(['username', 'first_name', 'last_name', 'full_name', ...profile]);
    expect(fields('UserProfile')).to.include.members(profile);
    expect(fields('RegisterRequest')).to.include.members(['organization_slug', 'organization_id', ...profile]);
    const parameters = (path: string) => ((document.paths[`/api/v1${path}`]!.get as { parameters: { name: string }[] }).parameters).map((parameter) => parameter.name);
    expect(parameters('/audit/logs')).to.include.members(['page_size', 'limit', 'size', 'cursor', 'page']);
    expect(parameters('/users')).to.include.members(['page', 'skip', 'page_size', 'limit', 'size']);
  });

  it('describes the security schemes and links the OAuth endpoints to discovery', () => {
    expect(document.components.securitySchemes).to.have.keys('bearer', 'dpop', 'oauth2', 'openIdConnect');
    expect(JSON.stringify(document)).to.include(`${server.issuer}/.well-known/openid-configuration`);
  });

  it('serves the reference page and its assets from this server, with a script policy of self only', async () => {
    const page = await fetch(`${server.url}/docs`);
    expect(page.status).to.equal(200);
    const html = await page.text();
    expect(html).to.include('/docs/assets/swagger-ui-bundle.js').and.not.include('https://');
    expect(page.headers.get('content-security-policy')).to.include("script-src 'self'").and.include("frame-ancestors 'none'");
    for (const asset of ['swagger-ui.css', 'swagger-ui-bundle.js', 'docs-init.js']) {
      expect((await fetch(`${server.url}/docs/assets/${asset}`)).status, asset).to.equal(200);
    }
    expect((await fetch(`${server.url}/docs/assets/..%2Fpackage.json`)).status).to.equal(404);
  });

  it('serves a landing page linking the docs, discovery and device sign-in', async () => {
    const page = await fetch(`${server.url}/`);
    expect(page.status).to.equal(200);
    const html = await page.text();
    for (const link of ['/docs', '/.well-known/openid-configuration', '/oauth/device']) expect(html).to.include(`href="${link}"`);
  });
});
