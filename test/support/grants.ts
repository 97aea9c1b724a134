// Seeds a user's grant the way the login and consent pages will (issue: sign-in flows): through
// the provider's own models. The tokens themselves are then obtained at the real token endpoint.
import { createHash, randomBytes } from 'node:crypto';

import type { TestServer } from './harness.ts';
import { createClient } from './oauth.ts';

export const REDIRECT_URI = 'http://127.0.0.1:9/callback';

export async function createCodeClient(server: TestServer) {
  return createClient(server, {
    client_name: 'code flow test client',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [REDIRECT_URI],
    scope: 'openid profile email offline_access crm:read crm:write',
  });
}

export interface IssuedCode {
  code: string;
  verifier: string;
  grantId: string;
}

/** An authorization code for `userId`, as the authorization endpoint would issue after consent. */
export async function issueAuthorizationCode(
  server: TestServer,
  options: { clientId: string; userId: string; scope: string; apiScope?: string },
): Promise<IssuedCode> {
  const provider = server.deps.providers.current;
  const client = await provider.Client.find(options.clientId);
  if (!client) throw new Error('unknown client');
  const grant = new provider.Grant({ accountId: options.userId, clientId: options.clientId });
  grant.addOIDCScope(options.scope);
  if (options.apiScope) grant.addResourceScope(server.config.apiAudience, options.apiScope);
  const grantId = await grant.save();
  const verifier = randomBytes(32).toString('base64url');
  const code = new provider.AuthorizationCode({
    accountId: options.userId,
    client,
    grantId,
    scope: [options.scope, options.apiScope].filter(Boolean).join(' '),
    redirectUri: REDIRECT_URI,
    codeChallenge: createHash('sha256').update(verifier).digest('base64url'),
    codeChallengeMethod: 'S256',
    gty: 'authorization_code',
    ...(options.apiScope ? { resource: server.config.apiAudience } : {}),
  });
  return { code: await code.save(), verifier, grantId };
}

export function codeExchangeForm(issued: IssuedCode, extra: Record<string, string> = {}): Record<string, string> {
  return { grant_type: 'authorization_code', code: issued.code, code_verifier: issued.verifier, redirect_uri: REDIRECT_URI, ...extra };
}
