import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

import { User } from './user.entity.ts';

/**
 * One of a user's 10 single-use recovery codes, kept only as the SHA-256 of the code (hex): the
 * codes carry 60 random bits, so a plain hash is enough (no password hashing needed). A new set
 * replaces the old; `usedAt` marks a spent code.
 */
export const RecoveryCode = defineEntity({
  name: 'RecoveryCode',
  tableName: 'recovery_code',
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    user: () => p.manyToOne(User).deleteRule('cascade').index(),
    codeHash: p.string().length(64).hidden(),
    usedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type RecoveryCode = InferEntity<typeof RecoveryCode>;
