import { expect } from 'chai';
import * as client from 'openid-client';
import type { Browser } from 'playwright-core';

import { WRONG_CODE_MESSAGE } from '../../src/oidc/interactions/interaction.routes.ts';
import { executeStatement, queryRows } from '../../src/platform/database.ts';
import { captureCallback, launchBrowser } from '../support/browser.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { enrolTotp, freezeClock, totpCode, TOTP_PERIOD_MS } from '../support/mfa.ts';
import { createClient } from '../support/oauth.ts';
import {
  PageSession, codeFlowRequest, discoverClient, hiddenField, openInteraction, submitLogin, type AuthorizationRequest, type RegisteredClient,
} from '../support/pages.ts';
import { DEMO_PASSWORD, login, loginAs, seedDemoUsers } from '../support/users.ts';

const REDIRECT_URI = 'http://127.0.0.1:9/cb';
const MFA_ACR = 'urn:latchkey:mfa';

describe('the second factor in the browser sign-in (interaction pages)', () => {
  let server: TestServer;
  let registered: RegisteredClient;
  let config: client.Configuration;
  let move: (byMs: number) => void;

  before(async () => {
    server = await startTestServer();
    await seedDemoUsers(server);
    move = freezeClock(server);
    // First-party: no consent page, so each flow is sign-in only.
    registered = await createClient(server, {
      client_name: 'Field Notes', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'client_secret_basic', scope: 'openid profile email offline_access crm:read',
    }, { firstParty: true });
    config = await discoverClient(server, registered, REDIRECT_URI);
  });
  after(async () => { await server.close(); });

  const request = (parameters: Record<string, string> = {}) => codeFlowRequest(config, REDIRECT_URI, { scope: 'openid profile', ...parameters });

  /** The page the interaction shows now, after following a 303. */
  async function currentPage(session: PageSession, response: Response): Promise<{ path: string; html: string; status: number }> {
    expect(response.status).to.equal(303);
    const shown = await session.follow(response, REDIRECT_URI);
    return { path: new URL(shown.url).pathname, html: await shown.text(), status: shown.status };
  }

  async function exchange(callback: Response, flow: AuthorizationRequest) {
    const location = callback.headers.get('location')!;
    expect(location.startsWith(REDIRECT_URI), `sent to ${location}`).to.equal(true);
    const tokens = await client.authorizationCodeGrant(config, new URL(location),
      { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
    return tokens.claims()!;
  }

  async function postCode(session: PageSession, page: { path: string; html: string }, code: string, action = 'mfa') {
    return session.post(`${page.path}/${action}`, { csrf: hiddenField(page.html, 'csrf'), code });
  }

  describe('a user with an authenticator app', () => {
    let secret: string;
    let recoveryCodes: string[];
    before(async () => {
      ({ secret, recoveryCodes } = await enrolTotp(server, (await loginAs(server, 'agent1@demo.example')).access_token));
    });

    it('is asked for a code after the password; a wrong code shows the page again; the ID token says amr pwd, otp, mfa and the MFA acr', async () => {
      move(TOTP_PERIOD_MS);
      const session = new PageSession(server);
      const flow = await request();
      const interaction = await openInteraction(session, flow.url);
      const page = await currentPage(session, await submitLogin(session, interaction, { identifier: 'agent1@demo.example', password: DEMO_PASSWORD }));
      expect(page.status).to.equal(200);
      expect(page.path).to.equal(interaction.path);
      expect(page.html).to.include('Two-step verification').and.include('name="code"').and.include('agent1@demo.example');
      expect(page.html).to.not.include('name="password"');

      const wrong = await postCode(session, page, '000000');
      expect(wrong.status).to.equal(200);
      const wrongHtml = await wrong.text();
      expect(wrongHtml).to.include(WRONG_CODE_MESSAGE.replace(/'/g, '&#39;'));

      const done = await session.follow(await postCode(session, { ...page, html: wrongHtml }, totpCode(server, secret)), REDIRECT_URI);
      const claims = await exchange(done, flow);
      expect(claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
      expect(claims.acr).to.equal(MFA_ACR);
      expect(claims.auth_time).to.be.a('number');
      const failures = await queryRows(server.deps.orm.em, `select 1 from audit_log where action = 'auth.mfa' and status = 'failure' and details->>'via' = 'login_page'`);
      expect(failures).to.have.length.at.least(1);
    });

    it('gives the API token of a fresh sign-in its auth_time, which a refresh keeps: removing the factor needs it recent', async () => {
      move(TOTP_PERIOD_MS);
      const session = new PageSession(server);
      const flow = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid offline_access crm:read', prompt: 'consent', resource: server.config.apiAudience });
      const interaction = await openInteraction(session, flow.url);
      const page = await currentPage(session, await submitLogin(session, interaction, { identifier: 'agent1@demo.example', password: DEMO_PASSWORD }));
      const done = await session.follow(await postCode(session, page, totpCode(server, secret)), REDIRECT_URI);
      const tokens = await client.authorizationCodeGrant(config, new URL(done.headers.get('location')!),
        { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce }, { resource: server.config.apiAudience });
      const principal = await server.deps.verifier.verify({ scheme: 'Bearer', value: tokens.access_token, method: 'GET', url: server.issuer });
      expect(principal.authTime).to.equal(tokens.claims()!.auth_time);

      move(6 * 60_000);
      const stale = await fetch(`${server.url}/api/v1/me/mfa/totp`, { method: 'DELETE', headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect(stale.status).to.equal(403);
      expect((await stale.json()).code).to.equal('auth.recent_sign_in_required');
      move(-6 * 60_000);
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!, { resource: server.config.apiAudience });
      const again = await server.deps.verifier.verify({ scheme: 'Bearer', value: refreshed.access_token, method: 'GET', url: server.issuer });
      expect(again.authTime, 'a refreshed token keeps the sign-in time').to.equal(principal.authTime);
    });

    it('takes a recovery code on the same page', async () => {
      const session = new PageSession(server);
      const flow = await request();
      const interaction = await openInteraction(session, flow.url);
      const page = await currentPage(session, await submitLogin(session, interaction, { identifier: 'agent1@demo.example', password: DEMO_PASSWORD }));
      const done = await session.follow(await postCode(session, page, recoveryCodes[0]!), REDIRECT_URI);
      expect((await exchange(done, flow)).acr).to.equal(MFA_ACR);
    });

    it('skips nothing: posting a code before the password, or without the form token, is refused', async () => {
      const session = new PageSession(server);
      const interaction = await openInteraction(session, (await request()).url);
      const early = await session.post(`${interaction.path}/mfa`, { csrf: hiddenField(interaction.html, 'csrf'), code: totpCode(server, secret) });
      expect(early.status).to.equal(303);
      expect(early.headers.get('location')).to.equal(interaction.path);
      const page = await currentPage(session, await submitLogin(session, interaction, { identifier: 'agent1@demo.example', password: DEMO_PASSWORD }));
      const forged = await session.post(`${page.path}/mfa`, { code: totpCode(server, secret) });
      expect(forged.status).to.equal(403);
      const nul = await postCode(session, page, '12\u00003456');
      expect(nul.status).to.be.within(200, 499);
      const resume = await session.get(`/oauth/authorize/${interaction.uid}`);
      expect(resume.headers.get('location') ?? '').to.not.match(/[?&]code=/);
    });

    it('asks for the password again, then the code, when max_age has passed', async () => {
      move(TOTP_PERIOD_MS);
      const session = new PageSession(server);
      const first = await request();
      const interaction = await openInteraction(session, first.url);
      const page = await currentPage(session, await submitLogin(session, interaction, { identifier: 'agent1@demo.example', password: DEMO_PASSWORD }));
      await exchange(await session.follow(await postCode(session, page, totpCode(server, secret)), REDIRECT_URI), first);

      await new Promise((resolve) => setTimeout(resolve, 1100));
      const again = await openInteraction(session, (await request({ max_age: '0' })).url);
      expect(again.html).to.include('name="password"');
    });
  });

  describe('step-up with acr_values=urn:latchkey:mfa', () => {
    it('asks a password-only session for the second factor alone, then answers the MFA acr', async () => {
      move(TOTP_PERIOD_MS);
      const session = new PageSession(server);
      const flow = await request();
      const interaction = await openInteraction(session, flow.url);
      const done = await session.follow(await submitLogin(session, interaction, { identifier: 'premium1@demo.example', password: DEMO_PASSWORD }), REDIRECT_URI);
      const claims = await exchange(done, flow);
      expect(claims.amr).to.deep.equal(['pwd']);
      expect(claims.acr).to.equal('urn:latchkey:pwd');

      // Without acr_values the session is enough.
      const plain = await request();
      expect((await session.follow(await session.get(plain.url), REDIRECT_URI)).headers.get('location')).to.match(/^http:\/\/127\.0\.0\.1:9\/cb\?code=/);

      const { secret } = await enrolTotp(server, (await loginAs(server, 'premium1@demo.example')).access_token);
      move(TOTP_PERIOD_MS);
      const stepUp = await request({ acr_values: MFA_ACR });
      const page = await openInteraction(session, stepUp.url);
      expect(page.html).to.include('name="code"').and.not.include('name="password"');
      const upgraded = await exchange(await session.follow(await postCode(session, page, totpCode(server, secret)), REDIRECT_URI), stepUp);
      expect(upgraded.acr).to.equal(MFA_ACR);
      expect(upgraded.amr).to.deep.equal(['pwd', 'otp', 'mfa']);

      // The session has passed a second factor now: the next step-up request asks nothing.
      const next = await request({ acr_values: MFA_ACR });
      expect((await session.follow(await session.get(next.url), REDIRECT_URI)).headers.get('location')).to.match(/^http:\/\/127\.0\.0\.1:9\/cb\?code=/);
    });

    it('sends a session user with no factor to enrolment, then on with the MFA acr', async () => {
      const session = new PageSession(server);
      const flow = await request();
      const interaction = await openInteraction(session, flow.url);
      await exchange(await session.follow(await submitLogin(session, interaction, { identifier: 'guest1@demo.example', password: DEMO_PASSWORD }), REDIRECT_URI), flow);
      const stepUp = await request({ acr_values: MFA_ACR });
      const page = await openInteraction(session, stepUp.url);
      expect(page.html).to.include('Set up two-step verification').and.include('<svg');
      const secret = /data-secret>([A-Z2-7]+)</.exec(page.html)![1]!;
      const codes = await postCode(session, page, totpCode(server, secret), 'mfa/enrol');
      expect(codes.status).to.equal(200);
      const codesHtml = await codes.text();
      expect(codesHtml.match(/<li><code>[a-z2-9-]{14}<\/code><\/li>/g)).to.have.length(10);
      const done = await session.follow(await session.post(`${page.path}/mfa/continue`, { csrf: hiddenField(codesHtml, 'csrf') }), REDIRECT_URI);
      expect((await exchange(done, stepUp)).acr).to.equal(MFA_ACR);
    });
  });

  describe('an organization that requires MFA', () => {
    before(async () => {
      await executeStatement(server.deps.orm.em, `update organization set mfa_required = true where slug = 'demo'`);
    });
    after(async () => {
      await executeStatement(server.deps.orm.em, `update organization set mfa_required = false where slug = 'demo'`);
    });

    it('asks a session from before the policy to enrol at its next authorization, without the password', async () => {
      await executeStatement(server.deps.orm.em, `update organization set mfa_required = false where slug = 'demo'`);
      const session = new PageSession(server);
      const flow = await request();
      const interaction = await openInteraction(session, flow.url);
      await exchange(await session.follow(await submitLogin(session, interaction, { identifier: 'basic1@demo.example', password: DEMO_PASSWORD }), REDIRECT_URI), flow);
      await executeStatement(server.deps.orm.em, `update organization set mfa_required = true where slug = 'demo'`);
      const next = await openInteraction(session, (await request()).url);
      expect(next.html).to.include('Set up two-step verification').and.include('Your account must have').and.not.include('name="password"');
    });

    it('refuses API tokens to a member without a factor with 403 auth.mfa_enrollment_required', async () => {
      const response = await login(server, { email: 'backoffice1@demo.example', password: DEMO_PASSWORD });
      expect(response.status).to.equal(403);
      expect(await response.json()).to.include({ code: 'auth.mfa_enrollment_required', error: 'mfa_enrollment_required' });
    });

    it('sends a member without a factor to enrolment right after the password, before any code is issued', async () => {
      const skipper = new PageSession(server);
      const skipped = await openInteraction(skipper, (await request()).url);
      await submitLogin(skipper, skipped, { identifier: 'backoffice1@demo.example', password: DEMO_PASSWORD });
      const resume = await skipper.follow(await skipper.get(`/oauth/authorize/${skipped.uid}`), REDIRECT_URI);
      expect(resume.headers.get('location') ?? '', 'resuming the authorization before enrolling').to.not.match(/[?&]code=/);

      const session = new PageSession(server);
      const flow = await request();
      const interaction = await openInteraction(session, flow.url);
      const page = await currentPage(session, await submitLogin(session, interaction, { identifier: 'backoffice1@demo.example', password: DEMO_PASSWORD }));
      expect(page.html).to.include('Your account must have two-step verification').and.include('<svg');
      const secret = /data-secret>([A-Z2-7]+)</.exec(page.html)![1]!;
      const reloaded = await session.get(page.path);
      expect(await reloaded.text(), 'a reload shows the same secret').to.include(secret);

      const wrongLength = await postCode(session, page, '123', 'mfa/enrol');
      expect(wrongLength.status).to.equal(200);
      expect(await wrongLength.text()).to.include('Enter the 6 digits');
      const wrong = await postCode(session, page, String((Number(totpCode(server, secret)) + 1) % 1_000_000).padStart(6, '0'), 'mfa/enrol');
      expect(await wrong.text()).to.include('That code is not right');

      const codes = await postCode(session, page, totpCode(server, secret), 'mfa/enrol');
      const codesHtml = await codes.text();
      expect(codesHtml).to.include('Save your recovery codes');
      const done = await session.follow(await session.post(`${page.path}/mfa/continue`, { csrf: hiddenField(codesHtml, 'csrf') }), REDIRECT_URI);
      const claims = await exchange(done, flow);
      expect(claims.acr).to.equal(MFA_ACR);
      const audit = await queryRows<{ action: string }>(server.deps.orm.em,
        `select action from audit_log a join app_user u on u.id::text = a.target_id where u.email = 'backoffice1@demo.example' and a.action like 'mfa.%' order by occurred_at`);
      expect(audit.map((row) => row.action)).to.include.members(['mfa.totp_start', 'mfa.totp_confirm', 'mfa.recovery_codes_generate']);
    });
  });

  describe('in a real browser', () => {
    let browser: Browser;
    before(async () => { browser = await launchBrowser(); });
    after(async () => { await browser?.close(); });

    it('signs in with the password and a TOTP code typed on the page', async () => {
      const { secret } = await enrolTotp(server, (await loginAs(server, 'admin1@demo.example')).access_token);
      move(TOTP_PERIOD_MS);
      const context = await browser.newContext();
      const page = await context.newPage();
      const callback = captureCallback(context, REDIRECT_URI);
      const flow = await request();
      await page.goto(flow.url.href);
      await page.getByLabel('Email or username').fill('admin1@demo.example');
      await page.getByLabel('Password').fill(DEMO_PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Two-step verification' }).waitFor();
      expect(await page.title()).to.equal('Two-step verification · Latchkey');
      await page.getByLabel('Verification code').fill(totpCode(server, secret));
      await page.getByRole('button', { name: 'Verify' }).click();
      const arrived = await callback;
      const tokens = await client.authorizationCodeGrant(config, arrived, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
      expect(tokens.claims()!.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
      await context.close();
    });
  });
});
