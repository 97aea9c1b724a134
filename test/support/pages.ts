// Drives the server-rendered pages with plain HTTP: a cookie jar and manual redirects, so a
// test sees every status code and header a browser would get.
import { expect } from 'chai';
import * as client from 'openid-client';

import type { TestServer } from './harness.ts';
import { createClient } from './oauth.ts';

export class CookieJar {
  readonly #cookies = new Map<string, string>();

  /** Keeps the cookies a response sets; a cookie set to expire is forgotten. */
  store(response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = header.split(';');
      const separator = pair.indexOf('=');
      const name = pair.slice(0, separator).trim();
      const value = pair.slice(separator + 1).trim();
      const expired = attributes.some((attribute) => {
        const [key = '', raw = ''] = attribute.split('=');
        const lowered = key.trim().toLowerCase();
        return (lowered === 'expires' && Date.parse(raw) <= Date.now()) || (lowered === 'max-age' && Number(raw) <= 0);
      });
      if (expired || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

/** One user agent: its cookies, every request without following redirects. */
export class PageSession {
  readonly jar = new CookieJar();
  readonly #server: TestServer;

  constructor(server: TestServer) {
    this.#server = server;
  }

  #url(target: string | URL): string {
    return new URL(target, this.#server.url).href;
  }

  async get(target: string | URL, headers: Record<string, string> = {}): Promise<Response> {
    const response = await fetch(this.#url(target), { redirect: 'manual', headers: { cookie: this.jar.header(), accept: 'text/html', ...headers } });
    this.jar.store(response);
    return response;
  }

  async post(target: string | URL, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    const response = await fetch(this.#url(target), {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: this.jar.header(), accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form),
    });
    this.jar.store(response);
    return response;
  }

  /** Follows redirects on this server until a page answers, or one leaves for `stopAt` (a client's redirect_uri). */
  async follow(response: Response, stopAt?: string): Promise<Response> {
    let current = response;
    for (let hops = 0; hops < 10 && current.status >= 300 && current.status < 400; hops += 1) {
      const location = this.#url(current.headers.get('location')!);
      if (stopAt && location.startsWith(stopAt)) return current;
      current = await this.get(location);
    }
    return current;
  }
}

/** The value of a hidden input in a page. */
export function hiddenField(html: string, name: string): string {
  const match = new RegExp(`<input type="hidden" name="${name}" value="([^"]*)"`).exec(html);
  expect(match, `hidden field ${name}`).to.not.equal(null);
  return match![1]!;
}

export function formAction(html: string, pattern: RegExp): string {
  const match = /<form method="post" action="([^"]+)"/g;
  for (const found of html.matchAll(match)) if (pattern.test(found[1]!)) return found[1]!.replace(/&amp;/g, '&');
  throw new Error(`no form posting to ${pattern}`);
}

/** The interaction page an authorization request leads to. */
export async function openInteraction(session: PageSession, authorizationUrl: string | URL) {
  const started = await session.get(authorizationUrl);
  expect(started.status, 'authorization answers with a redirect').to.equal(303);
  const location = started.headers.get('location')!;
  expect(location).to.match(/^\/interaction\/[\w-]+$/);
  const page = await session.get(location);
  return { path: location, uid: location.split('/').pop()!, page, html: await page.text() };
}

/** Fills and posts the login form of an interaction page. */
export async function submitLogin(session: PageSession, interaction: { path: string; html: string }, fields: { identifier: string; password: string; organization?: string }) {
  return session.post(`${interaction.path}/login`, {
    csrf: hiddenField(interaction.html, 'csrf'),
    identifier: fields.identifier,
    password: fields.password,
    organization: fields.organization ?? '',
  });
}

export interface RegisteredClient {
  clientId: string;
  secret?: string;
}

/** A public code-flow client (PKCE, no secret) registered on the test server, as openid-client sees it. */
export async function registerPublicCodeClient(server: TestServer, clientName: string, redirectUri: string): Promise<client.Configuration> {
  const registered = await createClient(server, {
    client_name: clientName,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [redirectUri],
    token_endpoint_auth_method: 'none',
    scope: 'openid profile email',
  });
  return discoverClient(server, registered, redirectUri);
}

/** A page's text with Eta's HTML escapes undone, to compare with plain messages. */
export function decodeHtml(text: string): string {
  return text.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** openid-client's view of a registered client of the test server. */
export function discoverClient(server: TestServer, registered: RegisteredClient, redirectUri: string): Promise<client.Configuration> {
  return client.discovery(
    new URL(server.issuer),
    registered.clientId,
    { redirect_uris: [redirectUri], response_types: ['code'] },
    registered.secret ? client.ClientSecretBasic(registered.secret) : client.None(),
    { execute: [client.allowInsecureRequests] },
  );
}

export interface AuthorizationRequest {
  url: URL;
  codeVerifier: string;
  state: string;
  nonce: string;
}

/** An authorization code request with PKCE S256, state and nonce, built by openid-client. */
export async function codeFlowRequest(config: client.Configuration, redirectUri: string, parameters: Record<string, string>): Promise<AuthorizationRequest> {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...parameters,
  });
  return { url, codeVerifier, state, nonce };
}

/**
 * Signs in (and consents, when asked) through the pages over plain HTTP, and answers the URL the
 * browser would have been sent to at the client.
 */
export async function authorizeThroughPages(
  session: PageSession,
  request: AuthorizationRequest,
  redirectUri: string,
  user: { identifier: string; password: string },
  options: { consent?: 'approve' | 'deny' } = {},
): Promise<{ callback: URL; consentShown: boolean }> {
  let consentShown = false;
  let response = await session.follow(await session.get(request.url), redirectUri);
  for (let step = 0; step < 4; step += 1) {
    const location = response.headers.get('location');
    if (location?.startsWith(redirectUri)) return { callback: new URL(location), consentShown };
    expect(response.status, `unexpected ${response.status}`).to.equal(200);
    const html = await response.text();
    const path = new URL(response.url).pathname;
    if (html.includes('name="identifier"')) {
      response = await submitLogin(session, { path, html }, user);
    } else if (html.includes('name="decision"')) {
      consentShown = true;
      response = await session.post(`${path}/consent`, { csrf: hiddenField(html, 'csrf'), decision: options.consent ?? 'approve' });
    } else {
      throw new Error(`unexpected page: ${html.slice(0, 500)}`);
    }
    expect(response.status).to.equal(303);
    response = await session.follow(response, redirectUri);
  }
  throw new Error('the authorization did not come back to the client');
}
