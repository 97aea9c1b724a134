import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

import { Organization } from './organization.entity.ts';
import { User } from './user.entity.ts';

/**
 * The OAuth client registry node-oidc-provider reads through its adapter. `metadata` holds the
 * RFC 7591 metadata as the provider expects it, with `client_secret` replaced by its hash.
 */
export const OAuthClient = defineEntity({
  name: 'OAuthClient',
  tableName: 'oauth_client',
  indexes: [{ properties: ['owner'] }, { properties: ['organization'] }],
  properties: {
    clientId: p.string().length(128).primary(),
    organization: () => p.manyToOne(Organization).nullable().deleteRule('cascade'),
    // A personal client acts for its owner (API.md section 2).
    owner: () => p.manyToOne(User).nullable().deleteRule('cascade'),
    kind: p.enum(['application', 'personal', 'dynamic'] as const).default('application'),
    firstParty: p.boolean().default(false),
    metadata: p.json<Record<string, unknown>>(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});
export type OAuthClient = InferEntity<typeof OAuthClient>;
