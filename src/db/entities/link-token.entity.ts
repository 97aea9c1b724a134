import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

import { Organization } from './organization.entity.ts';
import { User } from './user.entity.ts';

/**
 * A single-use token carried by a mailed link (services/link-tokens.service.ts). The token itself
 * is never stored: `tokenHash` is the hex SHA-256 of it. `data` is small and holds no secret.
 */
export const LinkToken = defineEntity({
  name: 'LinkToken',
  tableName: 'link_token',
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    tokenHash: p.string().length(64).unique(),
    purpose: p.string().length(32),
    user: () => p.manyToOne(User).nullable().deleteRule('cascade'),
    organization: () => p.manyToOne(Organization).nullable().deleteRule('cascade'),
    data: p.json<Record<string, unknown>>(),
    createdAt: p.datetime().onCreate(() => new Date()),
    expiresAt: p.datetime(),
    consumedAt: p.datetime().nullable(),
    revokedAt: p.datetime().nullable(),
  },
});
export type LinkToken = InferEntity<typeof LinkToken>;
