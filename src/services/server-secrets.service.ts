import { randomBytes } from 'node:crypto';

import type { MikroORM } from '@mikro-orm/postgresql';

import { ServerSecret } from '../db/entities/server-secret.entity.ts';

/**
 * Returns the named secret, creating it on first use. Concurrent first starts race on the insert;
 * `on conflict do nothing` lets exactly one value win and everyone reads that one.
 */
export async function serverSecret(orm: MikroORM, name: string, bytes = 32): Promise<string> {
  const em = orm.em.fork();
  const existing = await em.findOne(ServerSecret, { name });
  if (existing) return existing.value;
  await em.getConnection().execute(
    'insert into server_secret (name, value, created_at) values (?, ?, now()) on conflict (name) do nothing',
    [name, randomBytes(bytes).toString('base64url')],
  );
  const created = await orm.em.fork().findOneOrFail(ServerSecret, { name });
  return created.value;
}
