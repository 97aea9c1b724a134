// Passkeys end to end in Chromium, with the DevTools virtual authenticator (CTAP2, internal,
// resident keys, user verification). WebAuthn needs a secure context: the server's ISSUER is
// http://localhost:PORT here, as Chromium refuses WebAuthn on 127.0.0.1.
import { expect } from 'chai';
import * as client from 'openid-client';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';

import { queryOne, queryRows } from '../../src/platform/database.ts';
import { captureCallback, launchBrowser } from '../support/browser.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { freezeClock } from '../support/mfa.ts';
import { createClient } from '../support/oauth.ts';
import { codeFlowRequest, discoverClient, type RegisteredClient } from '../support/pages.ts';
import { DEMO_PASSWORD, seedDemoUsers } from '../support/users.ts';

const REDIRECT_URI = 'http://127.0.0.1:9/cb';
const MFA_ACR = 'urn:latchkey:mfa';

describe('passkeys in the browser (virtual authenticator)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let browser: Browser;
  let config: client.Configuration;
  let move: (byMs: number) => void;

  before(async () => {
    server = await startTestServer({}, { localhostIssuer: true });
    await seedDemoUsers(server);
    move = freezeClock(server);
    const registered: RegisteredClient = await createClient(server, {
      client_name: 'Field Notes', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'client_secret_basic', scope: 'openid profile email',
    }, { firstParty: true });
    config = await discoverClient(server, registered, REDIRECT_URI);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  /** A browser profile with one virtual platform authenticator that verifies its user. */
  async function withAuthenticator(): Promise<{ context: BrowserContext; page: Page; authenticatorId: string }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    return { context, page, authenticatorId };
  }

  async function signInWithPassword(page: Page, email: string) {
    await page.fill('#identifier', email);
    await page.fill('#password', DEMO_PASSWORD);
    await page.click('button.primary:has-text("Sign in")');
  }

  /** Signs in on /account/security with the password and registers a passkey named `name`. */
  async function registerPasskey(page: Page, email: string, name: string) {
    await page.goto(`${server.url}/account/security`);
    await page.waitForSelector('#identifier');
    await signInWithPassword(page, email);
    await page.waitForURL(`${server.url}/account/security`);
    await page.fill('#passkey-name', name);
    await page.click('button:has-text("Add a passkey")');
    await page.waitForSelector('h1:has-text("Save your recovery codes")');
    const codes = await page.locator('.recovery-codes code').allTextContents();
    expect(codes).to.have.length(10);
    await page.click('a:has-text("back to security")');
    await page.waitForSelector(`[data-passkeys] strong:has-text("${name}")`);
    return codes;
  }

  async function exchange(callback: URL, flow: Awaited<ReturnType<typeof codeFlowRequest>>) {
    const tokens = await client.authorizationCodeGrant(config, callback,
      { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
    return tokens.claims()!;
  }

  /** The form body the page posts next to `path` (as the browser sent it). */
  function capturePost(page: Page, path: RegExp): Promise<Request> {
    return page.waitForRequest((request) => request.method() === 'POST' && path.test(new URL(request.url()).pathname));
  }

  it('registers a passkey on /account/security, then signs in with it alone: amr hwk and mfa, the MFA acr', async () => {
    const { context, page } = await withAuthenticator();
    try {
      await registerPasskey(page, 'agent1@demo.example', 'Work laptop');
      const row = await queryOne<{ name: string; sign_count: string; credential_id: string }>(server.deps.orm.em,
        `select f.name, f.sign_count, f.credential_id from mfa_factor f join app_user u on u.id = f.user_id where u.email = 'agent1@demo.example' and f.kind = 'passkey'`);
      expect(row?.name).to.equal('Work laptop');
      expect((await queryRows(server.deps.orm.em, `select 1 from audit_log where action = 'mfa.passkey_register' and status = 'success'`))).to.have.length(1);

      // Signed out: the browser forgets its cookies, the authenticator keeps its passkey.
      await context.clearCookies();
      const flow = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid profile' });
      const arrived = captureCallback(context, REDIRECT_URI);
      await page.goto(flow.url.href);
      await page.click('button:has-text("Sign in with a passkey")');
      const claims = await exchange(await arrived, flow);
      expect(claims.amr).to.deep.equal(['hwk', 'mfa']);
      expect(claims.acr).to.equal(MFA_ACR);
      const used = await queryRows(server.deps.orm.em,
        `select 1 from audit_log where action = 'auth.login' and status = 'success' and details->>'method' = 'passkey'`);
      expect(used).to.have.length(1);
    } finally {
      await context.close();
    }
  });

  it('asks for the passkey at a step-up and as the second factor after the password: amr pwd, hwk, mfa; a replayed answer is refused', async () => {
    const { context, page } = await withAuthenticator();
    try {
      await registerPasskey(page, 'agent2@demo.example', 'Phone');
      // Step-up: the session of the password sign-in is asked for the passkey alone.
      const stepUp = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid', acr_values: MFA_ACR });
      const steppedUp = captureCallback(context, REDIRECT_URI);
      await page.goto(stepUp.url.href);
      await page.waitForSelector('button:has-text("Use a passkey")');
      expect(await page.locator('#password').count()).to.equal(0);
      await page.click('button:has-text("Use a passkey")');
      const stepped = await exchange(await steppedUp, stepUp);
      expect(stepped.acr).to.equal(MFA_ACR);
      expect(stepped.amr).to.deep.equal(['pwd', 'hwk', 'mfa']);
      await context.unrouteAll();

      await context.clearCookies();
      const flow = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid' });
      const arrived = captureCallback(context, REDIRECT_URI);
      await page.goto(flow.url.href);
      await signInWithPassword(page, 'agent2@demo.example');
      await page.waitForSelector('button:has-text("Use a passkey")');
      expect(await page.locator('#code-help').textContent()).to.include('recovery codes');
      const posted = capturePost(page, /\/mfa\/passkey$/);
      await page.click('button:has-text("Use a passkey")');
      const request = await posted;
      const claims = await exchange(await arrived, flow);
      expect(claims.amr).to.deep.equal(['pwd', 'hwk', 'mfa']);
      expect(claims.acr).to.equal(MFA_ACR);

      // The same answer again: its challenge is spent (and the interaction is over).
      const replay = await context.request.post(request.url(), { headers: { 'content-type': 'application/x-www-form-urlencoded' }, data: request.postData()!, maxRedirects: 0 });
      expect(replay.status()).to.be.within(300, 499);
    } finally {
      await context.close();
    }
  });

  it('refuses a malformed answer, an expired ceremony and another user\'s passkey with a page, never a 500', async () => {
    const { context, page } = await withAuthenticator();
    try {
      // premium1's passkey, and the answer it gives on the sign-in page.
      await registerPasskey(page, 'premium1@demo.example', 'Key');
      await context.clearCookies();
      const flow = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid' });
      await page.goto(flow.url.href);
      await page.waitForSelector('button:has-text("Sign in with a passkey")');
      const csrf = await page.locator('form[data-passkey] input[name="csrf"]').inputValue();
      const action = await page.locator('form[data-passkey]').getAttribute('action');

      const malformed = await context.request.post(`${server.url}${action}`, { form: { csrf, response: '{"id":"x", "type": 7}' }, maxRedirects: 0 });
      expect(malformed.status()).to.equal(400);
      expect(await malformed.text()).to.include('could not be read');
      const nul = await context.request.post(`${server.url}${action}`, { form: { csrf, response: 'a\u0000b' }, maxRedirects: 0 });
      expect(nul.status()).to.equal(400);

      // A ceremony older than 5 minutes (the page shown again made a new one).
      await page.reload();
      const answer = capturePost(page, /\/passkey$/);
      await page.route('**/passkey', async (route) => {
        move(6 * 60_000);
        await route.continue();
      });
      await page.click('button:has-text("Sign in with a passkey")');
      const expiredAnswer = await answer;
      await page.waitForSelector('.alert:has-text("expired")');
      await page.unroute('**/passkey');

      // premium1's answer posted as agent1's second factor: refused, agent1 is not signed in.
      await context.clearCookies();
      const third = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid' });
      await page.goto(third.url.href);
      await signInWithPassword(page, 'agent1@demo.example');
      await page.waitForSelector('button:has-text("Use a passkey")');
      const mfaForm = page.locator('form[data-method="passkey"]');
      const foreign = await context.request.post(`${server.url}${await mfaForm.getAttribute('action')}`, {
        form: { csrf: await mfaForm.locator('input[name="csrf"]').inputValue(), response: new URLSearchParams(expiredAnswer.postData()!).get('response')! },
        maxRedirects: 0,
      });
      expect(foreign.status()).to.equal(400);
      expect(await foreign.text()).to.include('belongs to another account');
      const failures = await queryRows<{ reason: string }>(server.deps.orm.em,
        `select details->>'reason' as reason from audit_log where status = 'failure' and details->>'method' = 'passkey' order by occurred_at`);
      expect(failures.map((failure) => failure.reason)).to.include.members(['malformed', 'expired', 'wrong_user']);
    } finally {
      await context.close();
    }
  });
});
