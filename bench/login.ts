// Scenario "login" (bench/README.md): POST /api/v1/auth/login with the demo backoffice user's
// email and password (the password grant of the built-in first-party client) at
// BENCH_LOGIN_CONNECTIONS (default 16), against a server doing only argon2.verify of the same
// stored hash per request (bench/servers/argon2-verify-server.ts), with the same thread pool.
// Every request signs in with the right password: the sign-in throttle counts failures only
// (src/services/sign-in-throttle.ts), so it never refuses this load.
import { fileURLToPath } from 'node:url';

import type { Format, Measurement, Prepared, Request } from './types.ts';
import { LATCHKEY_SERVER, databaseUrl, fetchJson, latchkeyEnv, measure, settings, threadpoolSize, withServers, type LatchkeyInfo } from './harness.ts';
import { expectFormat } from './token.ts';

export const LOGIN_PATH = '/api/v1/auth/login';
const ARGON2_SERVER = fileURLToPath(new URL('./servers/argon2-verify-server.ts', import.meta.url));
/** Latchkey's access token format here (its default). */
const FORMAT: Format = 'opaque';

export function loginRequest(server: { issuer: string }, demo: Pick<Prepared['demo'], 'email' | 'password'>): Request {
  return {
    url: `${server.issuer}${LOGIN_PATH}`,
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ email: demo.email, password: demo.password }),
  };
}

/** Signs in once (before any load) and returns the access token, checked to be in `format`. */
export async function signIn(server: { issuer: string }, demo: Prepared['demo'], format: Format, label: string): Promise<string> {
  const body = await fetchJson(loginRequest(server, demo), label) as { access_token?: string; scope?: string; user?: { id?: string } };
  if (!body.access_token) throw new Error(`${label}: no access_token from POST ${LOGIN_PATH}: ${JSON.stringify(body)}`);
  if (body.user?.id !== demo.userId) throw new Error(`${label}: signed in as ${String(body.user?.id)}, not ${demo.userId}`);
  const kind = expectFormat(body.access_token, format, label);
  console.log(`  ${label}: signed in as ${demo.email} (${kind}, scope "${body.scope}")`);
  return body.access_token;
}

export async function benchLogin(prepared: Prepared): Promise<Measurement[]> {
  const { demo } = prepared;
  console.log(`\n[login] POST ${LOGIN_PATH} as ${demo.email}, ${settings.loginConnections} connections; thread pool ${threadpoolSize} for both servers`);
  return withServers(async (start) => {
    const reference = await start<{ issuer: string }>('argon2-login', ARGON2_SERVER, [], { BENCH_DATABASE_URL: databaseUrl, BENCH_EMAIL: demo.email });
    const latchkey = await start<LatchkeyInfo>('latchkey-login', LATCHKEY_SERVER, ['serve'], latchkeyEnv(FORMAT));
    // The reference verifies for real: the right password passes, a wrong one does not.
    await fetchJson(loginRequest(reference.info, demo), 'argon2.verify server');
    await fetchJson(loginRequest(reference.info, { ...demo, password: `${demo.password}-wrong` }), 'argon2.verify server', 401);
    console.log('  argon2.verify server: right password 200, wrong password 401');
    await signIn(latchkey.info, demo, FORMAT, 'Latchkey');
    return measure('login', FORMAT, [
      { target: 'argon2', request: loginRequest(reference.info, demo), server: reference },
      { target: 'latchkey', request: loginRequest(latchkey.info, demo), server: latchkey },
    ], settings.loginConnections);
  });
}
