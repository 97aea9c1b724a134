import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { expect } from 'chai';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as client from 'openid-client';
import type { Browser } from 'playwright-core';

import { captureCallback, launchBrowser } from '../support/browser.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { callApi, createClient } from '../support/oauth.ts';
import { PageSession, authorizeThroughPages, codeFlowRequest, discoverClient, hiddenField } from '../support/pages.ts';
import { DEMO_PASSWORD, seedDemoUsers } from '../support/users.ts';

const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const POST_LOGOUT_REDIRECT_URI = 'http://127.0.0.1:9/signed-out';
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** A client's back-channel logout endpoint on loopback: keeps every logout_token it is sent. */
async function startLogoutReceiver(): Promise<{ url: string; logoutTokens: string[]; server: Server }> {
  const logoutTokens: string[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => { body += chunk.toString(); });
    request.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      if (request.method === 'POST' && token) logoutTokens.push(token);
      response.writeHead(200, { 'cache-control': 'no-store' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel-logout`, logoutTokens, server };
}

async function registerRelyingParty(server: TestServer, backchannelLogoutUri: string, extra: Record<string, unknown> = {}) {
  return createClient(server, {
    ...extra,
    client_name: 'Field Notes',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [REDIRECT_URI],
    post_logout_redirect_uris: [POST_LOGOUT_REDIRECT_URI],
    backchannel_logout_uri: backchannelLogoutUri,
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid profile crm:read',
  });
}

describe('RP-initiated and back-channel logout', () => {
  let server: TestServer;
  let browser: Browser;
  let receiver: Awaited<ReturnType<typeof startLogoutReceiver>>;

  before(async () => {
    receiver = await startLogoutReceiver();
    // The receiver listens on loopback, which outbound calls may reach only when allowed.
    [server, browser] = await Promise.all([startTestServer({ OUTBOUND_ALLOW_PRIVATE: 'true' }), launchBrowser()]);
    await seedDemoUsers(server);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    receiver?.server.close();
  });

  it('asks on a Latchkey page, signs out, notifies the client back-channel and ends its tokens', async () => {
    const registered = await registerRelyingParty(server, receiver.url);
    const config = await discoverClient(server, registered, REDIRECT_URI);
    const context = await browser.newContext();
    const page = await context.newPage();

    const callback = captureCallback(context, REDIRECT_URI);
    const flow = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid crm:read', resource: server.config.apiAudience });
    await page.goto(flow.url.href);
    await page.getByLabel('Email or username').fill('agent1@demo.example');
    await page.getByLabel('Password').fill(DEMO_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    const tokens = await client.authorizationCodeGrant(config, await callback,
      { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce }, { resource: server.config.apiAudience });
    expect((await callApi(server, '/me', tokens.access_token)).status).to.equal(200);

    const signedOut = captureCallback(context, POST_LOGOUT_REDIRECT_URI);
    const logoutUrl = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI, state: 'bye' });
    const confirmation = await page.goto(logoutUrl.href);
    expect(confirmation!.status()).to.equal(200);
    expect(confirmation!.headers()['content-security-policy']).to.include("frame-ancestors 'none'").and.include("form-action 'self' http://127.0.0.1:9");
    await page.getByRole('heading', { name: 'Sign out of Latchkey?' }).waitFor();
    expect(await page.textContent('main')).to.include('Field Notes asked to sign you out.');
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();

    const landed = await signedOut;
    expect(landed.searchParams.get('state')).to.equal('bye');
    expect(receiver.logoutTokens).to.have.length(1);
    // OIDC Back-Channel Logout 1.0 section 2.4: a signed JWT with iss, aud, sub and the logout event, never a nonce.
    const { payload } = await jwtVerify(receiver.logoutTokens[0]!, createRemoteJWKSet(new URL(`${server.issuer}/oauth/jwks`)),
      { issuer: server.issuer, audience: registered.clientId });
    expect(payload.sub).to.equal(tokens.claims()!.sub);
    expect(payload.events).to.deep.equal({ [BACKCHANNEL_EVENT]: {} });
    expect(payload).to.not.have.property('nonce');
    expect((await callApi(server, '/me', tokens.access_token)).status, 'the session\'s grant is revoked').to.equal(401);
    await context.close();
  });

  it('puts the session\'s sid in the ID token and, for a client that requires it, in the logout token (Back-Channel Logout 1.0 sections 2.1, 2.4)', async () => {
    const registered = await registerRelyingParty(server, receiver.url, { backchannel_logout_session_required: true });
    const config = await discoverClient(server, registered, REDIRECT_URI);
    const session = new PageSession(server);
    const flow = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid' });
    const { callback } = await authorizeThroughPages(session, flow, REDIRECT_URI, { identifier: 'agent2@demo.example', password: DEMO_PASSWORD });
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
    const sid = tokens.claims()!.sid;
    expect(sid).to.be.a('string').with.length.greaterThan(10);

    const before = receiver.logoutTokens.length;
    const confirmation = await session.get(client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token! }));
    const response = await session.post('/oauth/logout/confirm', { xsrf: hiddenField(await confirmation.text(), 'xsrf'), logout: 'yes' });
    expect(response.status).to.equal(303);
    expect(receiver.logoutTokens).to.have.length(before + 1);
    const { payload } = await jwtVerify(receiver.logoutTokens.at(-1)!, createRemoteJWKSet(new URL(`${server.issuer}/oauth/jwks`)),
      { issuer: server.issuer, audience: registered.clientId });
    expect(payload.sid).to.equal(sid);
  });

  it('signs out without asking when there is no session (the auto-submit runs under the page policy)', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.issuer}/oauth/logout`);
    await page.getByRole('heading', { name: 'You are signed out' }).waitFor();
    expect(await page.title()).to.equal('Signed out · Latchkey');
    await context.close();
  });
});

describe('back-channel logout without OUTBOUND_ALLOW_PRIVATE', () => {
  let server: TestServer;
  let receiver: Awaited<ReturnType<typeof startLogoutReceiver>>;

  before(async () => {
    receiver = await startLogoutReceiver();
    server = await startTestServer();
    await seedDemoUsers(server);
  });
  after(async () => {
    await server?.close();
    receiver?.server.close();
  });

  it('refuses to notify a loopback address, and still signs the user out', async () => {
    const registered = await registerRelyingParty(server, receiver.url);
    const config = await discoverClient(server, registered, REDIRECT_URI);
    const session = new PageSession(server);
    const flow = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid' });
    const { callback } = await authorizeThroughPages(session, flow, REDIRECT_URI, { identifier: 'agent2@demo.example', password: DEMO_PASSWORD });
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
    // Discovery says backchannel_logout_session_supported: every ID token carries sid, not only
    // those of clients registered with backchannel_logout_session_required.
    expect(tokens.claims()!.sid).to.be.a('string');

    const refusals: Error[] = [];
    server.deps.providers.current.on('backchannel.error', (ctx, error: Error) => { refusals.push(error); });
    const confirmation = await session.get(client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token! }));
    expect(confirmation.status).to.equal(200);
    const html = await confirmation.text();
    const response = await session.post('/oauth/logout/confirm', { xsrf: hiddenField(html, 'xsrf'), logout: 'yes' });
    expect(response.status).to.equal(303);

    expect(receiver.logoutTokens, 'nothing reached the loopback receiver').to.deep.equal([]);
    expect(refusals).to.have.length(1);
    expect(refusals[0]!.message).to.match(/refused: it is a loopback or private address/);
    const signedOut = await session.follow(response);
    expect(await signedOut.text()).to.include('You are signed out');
  });
});
