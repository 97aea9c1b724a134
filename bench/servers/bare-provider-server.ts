// The baseline: node-oidc-provider on its own, with its default in-memory adapter and one static
// client, configured like Latchkey's provider for client_credentials (src/oidc/provider.ts): same
// token route, same resource (ISSUER/api) with the same scopes, token format, ES256 signing and
// TTL. It does none of Latchkey's own work (Koa app and middleware, client registry, token
// claims, revocation generations, Redis/PostgreSQL storage).
//
//   node bench/servers/bare-provider-server.ts     prints "bench-ready {port, issuer, clientId, clientSecret, ...}"
//
// Input (environment): BENCH_TOKEN_FORMAT (opaque | jwt), BENCH_ACCESS_TOKEN_TTL (default 3600).
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { Provider, errors, type ResourceServer } from 'oidc-provider';

import { API_SCOPES, OIDC_SCOPES } from '../../src/services/scopes.ts';
import { failAndExit, listenOnLoopback, report, stopOnSignal } from './lifecycle.ts';

const ACCESS_TOKEN_ALG = 'ES256';
const ID_TOKEN_ALG = 'RS256';

async function signingKey(alg: string): Promise<JWK> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  return { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
}

async function main(): Promise<void> {
  const format = process.env.BENCH_TOKEN_FORMAT === 'jwt' ? 'jwt' : 'opaque';
  const ttl = Number(process.env.BENCH_ACCESS_TOKEN_TTL ?? 3600);

  const server = createServer();
  const port = await listenOnLoopback(server);
  const issuer = `http://127.0.0.1:${port}`;
  const audience = `${issuer}/api`;
  const clientId = 'bench-client';
  const clientSecret = randomBytes(32).toString('base64url');

  const apiResource = {
    scope: API_SCOPES.join(' '),
    audience,
    accessTokenTTL: ttl,
    accessTokenFormat: format,
    jwt: { sign: { alg: ACCESS_TOKEN_ALG } },
  } satisfies ResourceServer;

  const provider = new Provider(issuer, {
    jwks: { keys: [await signingKey(ID_TOKEN_ALG), await signingKey(ACCESS_TOKEN_ALG)] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    routes: { token: '/oauth/token', jwks: '/oauth/jwks' },
    scopes: [...OIDC_SCOPES, ...API_SCOPES],
    clientAuthMethods: ['client_secret_basic'],
    enabledJWA: { idTokenSigningAlgValues: [ID_TOKEN_ALG, ACCESS_TOKEN_ALG] },
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: API_SCOPES.join(' '),
    }],
    ttl: { AccessToken: ttl, ClientCredentials: ttl },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx, client, oneOf) => (oneOf ? oneOf : audience),
        useGrantedResource: async () => false,
        getResourceServerInfo: async (ctx, resourceIndicator) => {
          if (resourceIndicator === audience) return apiResource;
          throw new errors.InvalidTarget('unknown resource indicator');
        },
      },
    },
  });
  server.on('request', provider.callback());
  stopOnSignal(server);
  report({ port, issuer, audience, format, clientId, clientSecret });
}

main().catch(failAndExit);
