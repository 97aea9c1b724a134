// Small helpers over the real token endpoint; tests that prove interoperability use
// openid-client and oauth4webapi directly instead.
import * as oauth from 'oauth4webapi';

import { personalClientMetadata } from '../../src/services/bootstrap.service.ts';
import type { TestServer } from './harness.ts';

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope?: string;
  refresh_token?: string;
}

export function basicAuth(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

export async function postForm(url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form),
  });
}

/** A client_credentials token for the admin's personal client (or the given one). */
export async function clientCredentialsToken(
  server: TestServer,
  options: { clientId?: string; secret?: string; scope?: string; resource?: string } = {},
): Promise<TokenResponse> {
  const clientId = options.clientId ?? server.admin.clientId;
  const secret = options.secret ?? server.admin.clientSecret;
  const form: Record<string, string> = { grant_type: 'client_credentials' };
  if (options.scope) form.scope = options.scope;
  if (options.resource) form.resource = options.resource;
  const response = await postForm(`${server.url}/oauth/token`, form, { authorization: basicAuth(clientId, secret) });
  if (response.status !== 200) throw new Error(`token request failed: ${response.status} ${await response.text()}`);
  return (await response.json()) as TokenResponse;
}

export async function callApi(server: TestServer, path: string, token: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${server.url}/api/v1${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> | undefined) },
  });
}

export async function discoverWithOauth4webapi(server: TestServer): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(server.issuer);
  const response = await oauth.discoveryRequest(issuer, { [oauth.allowInsecureRequests]: true });
  return oauth.processDiscoveryResponse(issuer, response);
}

/** A confidential application client in the registry, as an admin would create it. */
export async function createClient(server: TestServer, metadata: Record<string, unknown> = {}, options: { ownerId?: string; firstParty?: boolean } = {}) {
  const base = options.ownerId ? personalClientMetadata('test personal client') : {
    client_name: 'test application',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'crm:read crm:write',
  };
  const created = await server.deps.clientRegistry.create({
    kind: options.ownerId ? 'personal' : 'application',
    ownerId: options.ownerId,
    firstParty: options.firstParty,
    metadata: { ...base, ...metadata },
  });
  return { clientId: created.clientId, secret: created.clientSecret! };
}
