// RFC 9110 section 15.5.2: a 401 MUST carry WWW-Authenticate. node-oidc-provider adds one when the
// client authenticated through the Authorization header (RFC 6749 section 5.2) or presented a bearer
// token, but not when it sent its credentials in the body (client_secret_post, private_key_jwt):
// such a 401 gets the challenge of the scheme the token endpoint also accepts.
import type { Context, Next } from 'koa';

export function challengeEveryUnauthorized(realm: string) {
  const challenge = `Basic realm="${realm.replace(/["\\]/g, '')}", error="invalid_client"`;
  return async function addMissingChallenge(ctx: Context, next: Next) {
    await next();
    if (ctx.status === 401 && !ctx.response.get('WWW-Authenticate')) ctx.set('WWW-Authenticate', challenge);
  };
}
