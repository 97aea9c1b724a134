// The JSON auth endpoints (API.md "Auth") are conveniences over the provider's own token endpoint:
// they inject a form request into it in process, so every token still comes from one factory.
import type { IncomingMessage, ServerResponse } from 'node:http';

import { inject } from 'light-my-request';
import type { Provider } from 'oidc-provider';


export interface ClientCredentials {
  clientId: string;
  /** Absent for a public client. */
  clientSecret?: string;
}

export interface TokenEndpointAnswer {
  status: number;
  body: Record<string, unknown>;
  retryAfter?: string;
}

/**
 * Where the JSON request came from; the injected request carries the same address and agent. Not
 * an Actor: nobody is known yet when a password or refresh token is exchanged here.
 */
export interface RequestOrigin {
  ip: string;
  userAgent?: string;
}

type Handler = (request: IncomingMessage, response: ServerResponse) => void;
const handlers = new WeakMap<Provider, Handler>();

function handlerOf(provider: Provider): Handler {
  let handler = handlers.get(provider);
  if (!handler) {
    handler = provider.callback() as unknown as Handler;
    handlers.set(provider, handler);
  }
  return handler;
}

export async function callTokenEndpoint(
  provider: Provider,
  tokenPath: string,
  form: Record<string, string>,
  client: ClientCredentials,
  origin: RequestOrigin,
): Promise<TokenEndpointAnswer> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (origin.userAgent) headers['user-agent'] = origin.userAgent;
  const body = new URLSearchParams(form);
  if (client.clientSecret === undefined) {
    body.set('client_id', client.clientId);
  } else {
    // RFC 6749 section 2.3.1: form-urlencode both parts before Basic encoding.
    const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
    headers.authorization = `Basic ${Buffer.from(`${encode(client.clientId)}:${encode(client.clientSecret)}`).toString('base64')}`;
  }
  const response = await inject(handlerOf(provider), {
    method: 'POST', url: tokenPath, headers, payload: body.toString(), remoteAddress: origin.ip,
  });
  const retryAfter = response.headers['retry-after'];
  return {
    status: response.statusCode,
    body: response.json() as Record<string, unknown>,
    retryAfter: retryAfter === undefined ? undefined : String(retryAfter),
  };
}
