// Scenario "me" (bench/README.md): GET /api/v1/me with the demo backoffice user's opaque access
// token (from POST /api/v1/auth/login), against bare Koa + pg reading the same profile with the
// same SQL and mapping and no authentication (bench/servers/bare-koa-server.ts). Before any load
// both must answer the same JSON. The extra scenario "me-jwt" does the same with an ES256 JWT
// access token (Latchkey verifies its signature instead of looking it up in Redis).
import { isDeepStrictEqual } from 'node:util';

import type { Format, Measurement, Prepared, Request } from './types.ts';
import { BARE_KOA_SERVER, LATCHKEY_SERVER, databaseUrl, fetchJson, latchkeyEnv, measure, withServers, type LatchkeyInfo } from './harness.ts';
import { signIn } from './login.ts';

const ME_PATH = '/api/v1/me';

function meRequest(server: { issuer: string }, headers: Record<string, string>): Request {
  return { url: `${server.issuer}${ME_PATH}`, method: 'GET', headers: { accept: 'application/json', ...headers } };
}

export async function benchMe(prepared: Prepared, format: Format): Promise<Measurement[]> {
  const { demo } = prepared;
  console.log(`\n[me, ${format}] GET ${ME_PATH} with ${demo.email}'s ${format} access token; bare Koa + pg reads the same profile`);
  return withServers(async (start) => {
    const bare = await start<{ issuer: string }>(`bare-koa-me-${format}`, BARE_KOA_SERVER, [], {
      BENCH_DATABASE_URL: databaseUrl, BENCH_ORGANIZATION_ID: demo.organizationId, BENCH_USER_ID: demo.userId,
    });
    const latchkey = await start<LatchkeyInfo>(`latchkey-me-${format}`, LATCHKEY_SERVER, ['serve'], latchkeyEnv(format));
    const bearer = { authorization: `Bearer ${await signIn(latchkey.info, demo, format, 'Latchkey')}` };
    const bareBody = await fetchJson(meRequest(bare.info, {}), 'bare Koa + pg');
    const latchkeyBody = await fetchJson(meRequest(latchkey.info, bearer), 'Latchkey');
    if (!isDeepStrictEqual(bareBody, latchkeyBody)) {
      throw new Error(`GET ${ME_PATH}: bare Koa + pg and Latchkey answer differently (has findActiveProfile changed?)\n`
        + `bare:     ${JSON.stringify(bareBody)}\nLatchkey: ${JSON.stringify(latchkeyBody)}`);
    }
    console.log(`  same answer from both (${JSON.stringify(bareBody).length} bytes)`);
    return measure('me', format, [
      { target: 'bare-koa', request: meRequest(bare.info, {}), server: bare },
      { target: 'latchkey', request: meRequest(latchkey.info, bearer), server: latchkey },
    ]);
  });
}
