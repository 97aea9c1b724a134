// TOTP codes computed in the test from the enrolled secret, at the server's (movable) clock.
import { Secret, TOTP } from 'otpauth';

import type { TestServer } from './harness.ts';
import { postJson } from './users.ts';

export const TOTP_PERIOD_MS = 30_000;

/** The code for `secret` at the server's clock, `steps` time steps away. */
export function totpCode(server: TestServer, secret: string, steps = 0): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: server.deps.clock.now() + steps * TOTP_PERIOD_MS });
}

/** Stops the server's clock at a moment in the middle of a time step; answers a function that moves it. */
export function freezeClock(server: TestServer, start = Date.now()): (byMs: number) => void {
  let now = Math.floor(start / TOTP_PERIOD_MS) * TOTP_PERIOD_MS + TOTP_PERIOD_MS / 2;
  server.deps.clock.now = () => now;
  return (byMs: number) => { now += byMs; };
}

/** Enrols and confirms TOTP for the token's user; answers the secret and the first recovery codes. */
export async function enrolTotp(server: TestServer, accessToken: string): Promise<{ secret: string; recoveryCodes: string[] }> {
  const started = await postJson(server, '/me/mfa/totp', {}, accessToken);
  if (started.status !== 201) throw new Error(`enrolment failed: ${started.status} ${await started.text()}`);
  const { secret } = await started.json() as { secret: string };
  const confirmed = await postJson(server, '/me/mfa/totp/verify', { code: totpCode(server, secret) }, accessToken);
  if (confirmed.status !== 200) throw new Error(`confirmation failed: ${confirmed.status} ${await confirmed.text()}`);
  return { secret, recoveryCodes: (await confirmed.json() as { recovery_codes: string[] }).recovery_codes };
}
