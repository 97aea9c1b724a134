// Bearer and DPoP authentication for /api/v1 (RFC 6750, RFC 9449): `ctx.state.auth` carries the
// caller; every refusal is a 401 problem with the challenge RFC 6750 section 3 asks for.
import type { Context, Next } from 'koa';

import { AppError } from '../platform/errors.ts';

/** The proof algorithms a DPoP challenge offers (RFC 9449 section 7.1 `algs`) and the verifier accepts. */
export const DPOP_ALGORITHMS = ['ES256', 'EdDSA', 'RS256', 'PS256'];

/** What a verified access token says (docs/architecture.md glossary "principal"). */
export interface AccessTokenPrincipal {
  format: 'opaque' | 'jwt';
  clientId: string;
  /** The user the token acts for: its subject, or a personal client's owner. */
  userId?: string;
  organizationId?: string;
  roles: string[];
  scopes: Set<string>;
  grantId?: string;
  jti?: string;
  expiresAt: number;
  /** When the user signed in (seconds; the token's `auth_time`), for actions that need a recent sign-in. */
  authTime?: number;
}

/** Why a presented token is refused; `dpop` failures get the DPoP challenge. */
export class TokenRejected extends Error {
  readonly scheme: 'Bearer' | 'DPoP';
  readonly error: 'invalid_token' | 'invalid_dpop_proof';
  constructor(description: string, scheme: 'Bearer' | 'DPoP' = 'Bearer', error: 'invalid_token' | 'invalid_dpop_proof' = 'invalid_token') {
    super(description);
    this.name = 'TokenRejected';
    this.scheme = scheme;
    this.error = error;
  }
}

/** A token as the request presented it, with what a DPoP proof is checked against. */
export interface PresentedToken {
  scheme: 'Bearer' | 'DPoP';
  value: string;
  dpopProof?: string;
  method: string;
  /** The request URL without query and fragment (RFC 9449 section 4.3 `htu`). */
  url: string;
}

/**
 * What authentication needs from whoever checks tokens. http/ owns the interface and oidc/
 * implements it (oidc/access-tokens.ts), so this layer never imports the provider's side.
 */
export interface TokenVerifier {
  /** Resolves with the token's principal, or throws TokenRejected. */
  verify(token: PresentedToken): Promise<AccessTokenPrincipal>;
}

declare module 'koa' {
  interface DefaultState {
    auth: AccessTokenPrincipal;
  }
}

export const REALM = 'latchkey';
const SCHEME = /^(Bearer|DPoP)\s+(.*)$/i;
// RFC 6750 section 2.1 b64token.
const TOKEN = /^[\w~+/.-]+=*$/;

function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, '')}"`;
}

export function challenge(scheme: 'Bearer' | 'DPoP', error?: { code: string; description: string }): string {
  const params = [`realm=${quoted(REALM)}`];
  if (scheme === 'DPoP') params.push(`algs=${quoted(DPOP_ALGORITHMS.join(' '))}`);
  if (error) params.push(`error=${quoted(error.code)}`, `error_description=${quoted(error.description)}`);
  return `${scheme} ${params.join(', ')}`;
}

export function authenticate(verifier: TokenVerifier, publicBaseUrl: string) {
  return async function authenticateBearer(ctx: Context, next: Next) {
    const header = ctx.get('authorization');
    if (!header) {
      throw new AppError('auth.token_missing', 'An access token is required (Authorization: Bearer <token>)', {
        headers: { 'WWW-Authenticate': challenge('Bearer') },
      });
    }
    const match = SCHEME.exec(header);
    if (!match) {
      throw new AppError('auth.token_missing', 'The Authorization header must be "Bearer <token>" or "DPoP <token>"', {
        headers: { 'WWW-Authenticate': challenge('Bearer') },
      });
    }
    const scheme = match[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
    if (!TOKEN.test(match[2]!)) {
      throw new AppError('auth.token_invalid', 'The access token is malformed', {
        headers: { 'WWW-Authenticate': challenge(scheme, { code: 'invalid_token', description: 'malformed access token' }) },
      });
    }
    try {
      ctx.state.auth = await verifier.verify({
        scheme,
        value: match[2]!,
        dpopProof: ctx.get('dpop') || undefined,
        method: ctx.method,
        url: new URL(ctx.path, publicBaseUrl).href,
      });
    } catch (error) {
      if (!(error instanceof TokenRejected)) throw error;
      const code = error.error === 'invalid_dpop_proof' ? 'auth.dpop_invalid' : 'auth.token_invalid';
      throw new AppError(code, error.message, {
        headers: { 'WWW-Authenticate': challenge(error.scheme === 'DPoP' || scheme === 'DPoP' ? 'DPoP' : 'Bearer', { code: error.error, description: error.message }) },
      });
    }
    await next();
  };
}
