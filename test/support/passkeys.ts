// A passkey row for the tests that do not run a WebAuthn ceremony (the API, the account pages'
// forms): the credential is random bytes no authenticator holds, and the user's first factor
// comes with its recovery codes, as a registration would give.
import { randomBytes } from 'node:crypto';

import { executeStatement } from '../../src/platform/database.ts';
import { replaceRecoveryCodes } from '../../src/services/mfa.service.ts';
import type { TestServer } from './harness.ts';

export async function addPasskeyRow(server: TestServer, userId: string, name: string): Promise<{ id: string; recoveryCodes?: string[] }> {
  const id = crypto.randomUUID();
  const recoveryCodes = await server.deps.orm.em.fork().transactional(async (em) => {
    await executeStatement(em,
      `insert into mfa_factor (id, user_id, kind, name, credential_id, public_key, sign_count, transports, backed_up, confirmed_at, created_at)
       values (?, ?, 'passkey', ?, ?, decode(?, 'base64'), 0, '{internal}', false, now(), now())`,
      [id, userId, name, randomBytes(16).toString('base64url'), randomBytes(77).toString('base64')]);
    const [row] = await em.getConnection().execute<{ n: number }[]>('select count(*)::int as n from recovery_code where user_id = ? and used_at is null', [userId]);
    return row!.n === 0 ? replaceRecoveryCodes(em, userId) : undefined;
  });
  return { id, recoveryCodes };
}
