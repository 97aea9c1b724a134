import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

/** Secrets made on first start and shared by every process (cookie keys, cursor signing key, ...). */
export const ServerSecret = defineEntity({
  name: 'ServerSecret',
  tableName: 'server_secret',
  properties: {
    name: p.string().length(64).primary(),
    value: p.text().hidden(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type ServerSecret = InferEntity<typeof ServerSecret>;
