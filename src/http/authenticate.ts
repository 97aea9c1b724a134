// Bearer and DPoP authentication for /api/v1 (RFC 6750, RFC 9449): `ctx.state.auth` carries the
// caller; every refusal is a 401 problem with the challenge RFC 6750 section 3 asks for.
import type { Context, Next } from 'koa';

import { DPOP_ALGORITHMS, TokenRejected, type AccessTokenPrincipal, type AccessTokenVerifier } from '../oidc/access-tokens.ts';
import { AppError } from '../platform/errors.ts';

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

export function authenticate(verifier: AccessTokenVerifier, publicBaseUrl: string) {
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
