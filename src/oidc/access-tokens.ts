// Latchkey's resource server side of token validation. An opaque token is read through the
// provider's own models (in process, no introspection round trip); a JWT (RFC 9068) is verified
// locally against the provider's keys. Both then pass the revocation check and, when
// sender-constrained, the DPoP proof check (RFC 9449 section 7).
import { createHash } from 'node:crypto';

import {
  EmbeddedJWK, calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, jwtVerify,
  type JSONWebKeySet, type JWK, type JWTPayload,
} from 'jose';
import type { Provider } from 'oidc-provider';

import {
  DPOP_ALGORITHMS, TokenRejected, type AccessTokenPrincipal, type PresentedToken, type TokenVerifier,
} from '../http/authenticate.ts';
import { boundedLruCache } from '../platform/lru-cache.ts';
import type { KeyValueStore } from '../platform/store.ts';
import type { RevocationService } from '../services/revocation.service.ts';
import { ACCESS_TOKEN_ALG } from '../services/signing-keys.service.ts';

const DPOP_PROOF_MAX_AGE_SECONDS = 300;
// Verified tokens kept per process: a bound on memory, not on correctness (see #verified).
const VERIFIED_TOKENS_KEPT = 10_000;
const CLOCK_TOLERANCE_SECONDS = 15;

interface TokenFacts {
  clientId: string;
  accountId?: string;
  aud?: string | string[];
  scope?: string;
  jti?: string;
  exp: number;
  jkt?: string;
  extra: Record<string, unknown>;
}

interface VerifiedToken {
  format: 'opaque' | 'jwt';
  facts: TokenFacts;
  /** Epoch milliseconds after which the token is refused as expired. */
  goodUntil: number;
}

function isJwt(value: string): boolean {
  if (value.split('.').length !== 3) return false;
  try {
    decodeProtectedHeader(value);
    return true;
  } catch {
    return false;
  }
}

/** The token verifier http/authenticate.ts asks for, backed by the provider and the revocation state. */
export class AccessTokenVerifier implements TokenVerifier {
  readonly #providerRef: () => Provider;
  readonly #revocation: RevocationService;
  readonly #store: KeyValueStore;
  readonly #issuer: string;
  readonly #audience: string;
  #jwks: ReturnType<typeof createLocalJWKSet>;
  /**
   * What a token said when it was last read or its signature checked, until it expires. A token
   * never changes once minted; what can end it early is the revocation state (a revoked token id,
   * grant, user or client generation), which verify() consults on every call and which every
   * process learns at once through the store's pub/sub. Destroying an opaque token records its id
   * as revoked (oidc/adapter.ts), so no call is answered from this memory after a revocation.
   */
  readonly #verified = boundedLruCache<string, VerifiedToken>({ maxEntries: VERIFIED_TOKENS_KEPT });

  constructor(options: {
    provider: () => Provider;
    revocation: RevocationService;
    store: KeyValueStore;
    issuer: string;
    audience: string;
    publicKeys: JWK[];
  }) {
    this.#providerRef = options.provider;
    this.#revocation = options.revocation;
    this.#store = options.store;
    this.#issuer = options.issuer;
    this.#audience = options.audience;
    this.#jwks = createLocalJWKSet({ keys: options.publicKeys } as JSONWebKeySet);
  }

  /** Called after a key rotation so JWTs signed with the new key verify here too. */
  useKeys(publicKeys: JWK[]): void {
    this.#jwks = createLocalJWKSet({ keys: publicKeys } as JSONWebKeySet);
    // A retired key takes its tokens with it: each is verified again against the keys now published.
    this.#verified.clear();
  }

  async verify(presented: PresentedToken): Promise<AccessTokenPrincipal> {
    const { format, facts, goodUntil } = this.#verified.get(presented.value) ?? await this.#read(presented.value);
    if (goodUntil <= Date.now()) {
      this.#verified.delete(presented.value);
      throw new TokenRejected('the access token is unknown, expired or revoked');
    }

    await this.#checkSenderConstraint(presented, facts);

    const extra = facts.extra;
    const userId = facts.accountId ?? (typeof extra.user_id === 'string' ? extra.user_id : undefined);
    const grantId = typeof extra.grant_id === 'string' ? extra.grant_id : undefined;
    const reason = await this.#revocation.check({
      jti: facts.jti,
      grantId,
      clientId: facts.clientId,
      userId,
      userGeneration: typeof extra.user_gen === 'number' ? extra.user_gen : undefined,
      clientGeneration: typeof extra.client_gen === 'number' ? extra.client_gen : undefined,
    });
    if (reason) throw new TokenRejected(`the access token has been revoked (${reason})`);

    return {
      format,
      clientId: facts.clientId,
      userId,
      organizationId: typeof extra.org_id === 'string' ? extra.org_id : undefined,
      roles: Array.isArray(extra.roles) ? extra.roles.filter((role): role is string => typeof role === 'string') : [],
      scopes: new Set((facts.scope ?? '').split(' ').filter(Boolean)),
      grantId,
      jti: facts.jti,
      expiresAt: facts.exp,
      ...(typeof extra.auth_time === 'number' ? { authTime: extra.auth_time } : {}),
    };
  }

  /** Reads or verifies a token not in memory; only a token good for this resource server is kept. */
  async #read(value: string): Promise<VerifiedToken> {
    const format: VerifiedToken['format'] = isJwt(value) ? 'jwt' : 'opaque';
    const facts = format === 'jwt' ? await this.#readJwt(value) : await this.#readOpaque(value);
    const audiences = Array.isArray(facts.aud) ? facts.aud : facts.aud ? [facts.aud] : [];
    if (!audiences.includes(this.#audience)) throw new TokenRejected('the access token is not for this resource server');
    // A JWT keeps the clock tolerance its signature check allowed; the provider's own lookup of an
    // opaque token allows none.
    const goodUntil = (facts.exp + (format === 'jwt' ? CLOCK_TOLERANCE_SECONDS : 0)) * 1000;
    const verified = { format, facts, goodUntil };
    if (goodUntil > Date.now()) this.#verified.set(value, verified, { ttl: Math.ceil(goodUntil - Date.now()) });
    return verified;
  }

  async #readOpaque(value: string): Promise<TokenFacts> {
    const provider = this.#providerRef();
    if (!/^[\w-]{20,128}$/.test(value)) throw new TokenRejected('the access token is malformed');
    const [accessToken, clientCredentials] = await Promise.all([
      provider.AccessToken.find(value),
      provider.ClientCredentials.find(value),
    ]);
    const token = accessToken ?? clientCredentials;
    if (!token) throw new TokenRejected('the access token is unknown, expired or revoked');
    const grantId = accessToken?.grantId;
    return {
      clientId: token.clientId!,
      accountId: accessToken?.accountId,
      aud: token.aud as string | string[] | undefined,
      scope: token.scope,
      jti: token.jti,
      exp: token.exp!,
      jkt: token.jkt,
      extra: { ...(token.extra ?? {}), ...(grantId ? { grant_id: grantId } : {}) },
    };
  }

  async #readJwt(value: string): Promise<TokenFacts> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(value, this.#jwks, {
        issuer: this.#issuer,
        audience: this.#audience,
        typ: 'at+jwt',
        algorithms: [ACCESS_TOKEN_ALG],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['exp', 'iat', 'jti', 'client_id'],
      }));
    } catch (error) {
      throw new TokenRejected(`the access token could not be verified: ${(error as Error).message}`);
    }
    const { client_id: clientId, sub, aud, scope, jti, exp, cnf, ...extra } = payload as JWTPayload & Record<string, unknown>;
    return {
      clientId: clientId as string,
      // RFC 9068: for client credentials `sub` is the client itself, not a user.
      accountId: sub !== clientId ? sub : undefined,
      aud,
      scope: typeof scope === 'string' ? scope : undefined,
      jti,
      exp: exp!,
      jkt: (cnf as { jkt?: string } | undefined)?.jkt,
      extra,
    };
  }

  async #checkSenderConstraint(presented: PresentedToken, facts: TokenFacts): Promise<void> {
    if (!facts.jkt) {
      if (presented.scheme === 'DPoP') throw new TokenRejected('the access token is not DPoP-bound; use the Bearer scheme');
      return;
    }
    if (presented.scheme !== 'DPoP') throw new TokenRejected('a DPoP-bound access token must be presented with the DPoP scheme', 'DPoP');
    if (!presented.dpopProof) throw new TokenRejected('the DPoP proof is missing', 'DPoP', 'invalid_dpop_proof');

    let proof: JWTPayload;
    let jwk: JWK;
    try {
      const verified = await jwtVerify(presented.dpopProof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: DPOP_ALGORITHMS,
        requiredClaims: ['iat', 'jti', 'htm', 'htu', 'ath'],
        maxTokenAge: DPOP_PROOF_MAX_AGE_SECONDS,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      });
      proof = verified.payload;
      jwk = verified.protectedHeader.jwk!;
    } catch (error) {
      throw new TokenRejected(`the DPoP proof is invalid: ${(error as Error).message}`, 'DPoP', 'invalid_dpop_proof');
    }
    const reject = (why: string): never => { throw new TokenRejected(why, 'DPoP', 'invalid_dpop_proof'); };
    if (proof.htm !== presented.method) reject('the DPoP proof htm does not match the request method');
    if (!sameResource(proof.htu, presented.url)) reject('the DPoP proof htu does not match the request URL');
    if (proof.ath !== createHash('sha256').update(presented.value).digest('base64url')) reject('the DPoP proof ath does not match the access token');
    if (await calculateJwkThumbprint(jwk) !== facts.jkt) reject('the DPoP proof key is not the key the token is bound to');
    // Each proof is single-use (RFC 9449 section 11.1).
    const fresh = await this.#store.setIfAbsent(`dpop:jti:${facts.jkt}:${String(proof.jti)}`, '1', DPOP_PROOF_MAX_AGE_SECONDS + CLOCK_TOLERANCE_SECONDS);
    if (!fresh) reject('the DPoP proof has already been used');
  }
}

function sameResource(htu: unknown, url: string): boolean {
  if (typeof htu !== 'string') return false;
  try {
    const claimed = new URL(htu);
    claimed.search = '';
    claimed.hash = '';
    return claimed.href === new URL(url).href;
  } catch {
    return false;
  }
}
