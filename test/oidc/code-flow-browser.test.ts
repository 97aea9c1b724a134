import { expect } from 'chai';
import * as client from 'openid-client';
import type { Browser, Page } from 'playwright-core';

import { startTestServer, type TestServer } from '../support/harness.ts';
import { captureCallback, launchBrowser } from '../support/browser.ts';
import { callApi, createClient } from '../support/oauth.ts';
import { codeFlowRequest, discoverClient, type RegisteredClient } from '../support/pages.ts';
import { DEMO_PASSWORD, seedDemoUsers } from '../support/users.ts';

const REDIRECT_URI = 'http://127.0.0.1:9/callback';

async function signIn(page: Page, identifier: string) {
  await page.getByLabel('Email or username').fill(identifier);
  await page.getByLabel('Password').fill(DEMO_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Paths of the pages the browser actually showed (redirect hops are not shown). */
function shownPages(page: Page): string[] {
  const shown: string[] = [];
  page.on('framenavigated', (frame) => { if (frame === page.mainFrame()) shown.push(new URL(frame.url()).pathname); });
  return shown;
}

describe('authorization code flow in a browser (openid-client + headless Chromium)', () => {
  let server: TestServer;
  let browser: Browser;
  let registered: RegisteredClient;
  let config: client.Configuration;

  before(async () => {
    [server, browser] = await Promise.all([startTestServer(), launchBrowser()]);
    await seedDemoUsers(server);
    registered = await createClient(server, {
      client_name: 'Field Notes',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: 'none',
      scope: 'openid profile email offline_access crm:read',
    });
    config = await discoverClient(server, registered, REDIRECT_URI);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('signs in through the login page, consents, and exchanges the code with PKCE, state and nonce checked; a reused code fails', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const callback = captureCallback(context, REDIRECT_URI);
    const flow = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid profile email' });

    await page.goto(flow.url.href);
    expect(await page.title()).to.equal('Sign in · Latchkey');
    await signIn(page, 'agent1@demo.example');
    await page.getByRole('heading', { name: 'Field Notes wants to access your account' }).waitFor();
    await page.getByRole('button', { name: 'Allow' }).click();
    const callbackUrl = await callback;

    expect(callbackUrl.searchParams.get('state')).to.equal(flow.state);
    expect(callbackUrl.searchParams.get('iss')).to.equal(server.issuer);
    const wrongState = await client.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: 'another-state', expectedNonce: flow.nonce })
      .then(() => undefined, (error: unknown) => error);
    expect(wrongState, 'openid-client checks state').to.be.instanceOf(Error);

    const tokens = await client.authorizationCodeGrant(config, callbackUrl,
      { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
    const claims = tokens.claims()!;
    expect(claims.nonce).to.equal(flow.nonce);
    expect(claims.iss).to.equal(server.issuer);
    expect(claims.aud).to.equal(registered.clientId);
    expect(claims.sid, 'Back-Channel Logout 1.0 section 2.1: sid in every ID token').to.be.a('string');
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    expect(userinfo.email).to.equal('agent1@demo.example');

    // RFC 6749 section 4.1.2: a code is used once; a second use also revokes what the first issued.
    const reuse = await client.authorizationCodeGrant(config, callbackUrl,
      { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce }).then(() => undefined, (error: unknown) => error);
    expect(reuse).to.be.instanceOf(client.ResponseBodyError);
    expect((reuse as client.ResponseBodyError).error).to.equal('invalid_grant');
    const afterReuse = await client.fetchUserInfo(config, tokens.access_token, claims.sub).then(() => undefined, (error: unknown) => error);
    expect(afterReuse, 'the first exchange\'s token is revoked').to.be.instanceOf(Error);
    await context.close();
  });

  it('remembers the consent: a second authorization in a new browser context only asks to sign in', async () => {
    const first = await browser.newContext();
    const firstPage = await first.newPage();
    const firstCallback = captureCallback(first, REDIRECT_URI);
    const firstFlow = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid crm:read', resource: server.config.apiAudience });
    await firstPage.goto(firstFlow.url.href);
    await signIn(firstPage, 'agent2@demo.example');
    await firstPage.getByRole('button', { name: 'Allow' }).click();
    await firstCallback;
    await first.close();

    const second = await browser.newContext();
    const page = await second.newPage();
    const shown = shownPages(page);
    const callback = captureCallback(second, REDIRECT_URI);
    const flow = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid crm:read', resource: server.config.apiAudience });
    await page.goto(flow.url.href);
    await signIn(page, 'agent2@demo.example');
    const callbackUrl = await callback;

    expect(shown.filter((path) => path.startsWith('/interaction/')), 'only the login page was shown').to.have.length(1);
    const tokens = await client.authorizationCodeGrant(config, callbackUrl,
      { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce }, { resource: server.config.apiAudience });
    expect(tokens.scope).to.equal('crm:read');
    expect((await callApi(server, '/me', tokens.access_token)).status).to.equal(200);
    await second.close();
  });
});
