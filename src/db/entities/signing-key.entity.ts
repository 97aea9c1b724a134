import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

/**
 * Signing keys shared by every process. A key signs while it is the newest of its algorithm;
 * after a rotation it stays published in JWKS until `retireAt`, when every token it signed has expired.
 */
export const SigningKey = defineEntity({
  name: 'SigningKey',
  tableName: 'signing_key',
  properties: {
    kid: p.string().length(64).primary(),
    alg: p.string().length(16),
    privateJwk: p.json<Record<string, unknown>>().hidden(),
    publicJwk: p.json<Record<string, unknown>>(),
    createdAt: p.datetime().onCreate(() => new Date()),
    retireAt: p.datetime().nullable(),
  },
});
export type SigningKey = InferEntity<typeof SigningKey>;
