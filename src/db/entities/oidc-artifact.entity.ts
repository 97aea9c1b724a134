import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

/**
 * Long-lived provider artefacts kept in PostgreSQL (API.md section 2): grants and refresh tokens.
 * The payload is the provider's own; the columns beside it exist for lookups and clean-up.
 */
export const OidcArtifact = defineEntity({
  name: 'OidcArtifact',
  tableName: 'oidc_artifact',
  indexes: [{ properties: ['grantId'] }, { properties: ['accountId'] }, { properties: ['expiresAt'] }],
  properties: {
    model: p.string().length(32).primary(),
    id: p.string().length(128).primary(),
    grantId: p.string().length(128).nullable(),
    accountId: p.string().length(128).nullable(),
    clientId: p.string().length(128).nullable(),
    // The organization an artefact belongs to where the provider has no notion of one
    // (an initial access token issued by an organization's admin).
    organizationId: p.uuid().nullable(),
    payload: p.json<Record<string, unknown>>(),
    expiresAt: p.datetime().nullable(),
    consumedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type OidcArtifact = InferEntity<typeof OidcArtifact>;
