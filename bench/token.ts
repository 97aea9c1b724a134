// Scenario "token" (bench/README.md): POST /oauth/token, grant_type=client_credentials,
// client_secret_basic with the first super admin's personal client, on Latchkey and on a bare
// node-oidc-provider configured alike (bench/servers/bare-provider-server.ts), side by side in
// alternating slices; once with opaque access tokens, once with ES256 JWTs. Scenario "rss"
// (bench/rss.ts) uses the same requests.
import { fileURLToPath } from 'node:url';

import { FORMATS, type Format, type Measurement, type Prepared, type Request, type StartedChild } from './types.ts';
import { LATCHKEY_SERVER, fetchJson, latchkeyEnv, measure, withServers, type LatchkeyInfo } from './harness.ts';

export const SCOPE = 'crm:read';
export const TOKEN_PATH = '/oauth/token';
export const BARE_PROVIDER_SERVER = fileURLToPath(new URL('./servers/bare-provider-server.ts', import.meta.url));

export interface Credentials {
  clientId: string;
  clientSecret: string;
}

/** What bench/servers/bare-provider-server.ts reports: where it listens and its one client. */
export interface BareProviderInfo extends Credentials {
  port: number;
  issuer: string;
  format: Format;
}

export function tokenRequest(server: { issuer: string }, credentials: Credentials): Request {
  // RFC 6749 section 2.3.1: both parts are form-urlencoded before the Basic encoding.
  const basic = Buffer.from(`${encodeURIComponent(credentials.clientId)}:${encodeURIComponent(credentials.clientSecret)}`).toString('base64');
  return {
    url: `${server.issuer}${TOKEN_PATH}`,
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: SCOPE }).toString(),
  };
}

/** "opaque", or "jwt (alg, typ)" from the token's header. */
export function describeToken(token: string): string {
  const parts = token.split('.');
  if (parts.length !== 3) return 'opaque';
  const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as { alg?: string; typ?: string };
  return `jwt (${header.alg ?? '?'}, ${header.typ ?? '?'})`;
}

export function expectFormat(token: string, format: Format, label: string): string {
  const kind = describeToken(token);
  const expected = format === 'jwt' ? 'jwt (ES256, at+jwt)' : 'opaque';
  if (kind !== expected) throw new Error(`${label}: expected a ${expected} access token, got ${kind}`);
  return kind;
}

/** One request before any load: the target must answer 200 with an access token in the expected format. */
export async function fetchToken(server: { issuer: string; format: Format }, credentials: Credentials, label: string): Promise<string> {
  const body = await fetchJson(tokenRequest(server, credentials), label) as { access_token?: string; expires_in?: number; scope?: string };
  if (!body.access_token) throw new Error(`${label}: no access_token in ${JSON.stringify(body)}`);
  const kind = expectFormat(body.access_token, server.format, label);
  console.log(`  ${label}: token ok: ${kind}, expires_in ${body.expires_in}, scope "${body.scope}"`);
  return body.access_token;
}

/** Bare provider and Latchkey, fresh, in one format; `work` gets both, and both stop afterwards. */
export function withTokenServers<T>(format: Format, name: string, work: (bare: StartedChild<BareProviderInfo>, latchkey: StartedChild<LatchkeyInfo>) => Promise<T>): Promise<T> {
  return withServers(async (start) => {
    const bare = await start<BareProviderInfo>(`bare-${name}-${format}`, BARE_PROVIDER_SERVER, [], { BENCH_TOKEN_FORMAT: format });
    const latchkey = await start<LatchkeyInfo>(`latchkey-${name}-${format}`, LATCHKEY_SERVER, ['serve'], latchkeyEnv(format));
    return work(bare, latchkey);
  });
}

export async function benchToken(prepared: Prepared): Promise<Measurement[]> {
  const measurements: Measurement[] = [];
  for (const format of FORMATS) {
    console.log(`\n[token, ${format}] POST ${TOKEN_PATH} (client_credentials, client_secret_basic, scope=${SCOPE})`);
    measurements.push(...await withTokenServers(format, 'token', async (bare, latchkey) => {
      await fetchToken(bare.info, bare.info, `bare oidc-provider (${format})`);
      await fetchToken(latchkey.info, prepared.admin, `Latchkey (${format})`);
      return measure('token', format, [
        { target: 'bare', request: tokenRequest(bare.info, bare.info), server: bare },
        { target: 'latchkey', request: tokenRequest(latchkey.info, prepared.admin), server: latchkey },
      ]);
    }));
  }
  return measurements;
}
