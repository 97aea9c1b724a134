import { get } from 'node:http';

import { expect } from 'chai';
import * as client from 'openid-client';

import { WRONG_CREDENTIALS_MESSAGE } from '../../src/oidc/interactions/interaction.routes.ts';
import { executeStatement, queryRows } from '../../src/platform/database.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { createClient } from '../support/oauth.ts';
import {
  PageSession, authorizeThroughPages, codeFlowRequest, discoverClient, hiddenField, openInteraction, submitLogin, type RegisteredClient,
} from '../support/pages.ts';
import { DEMO_PASSWORD, seedDemoUsers } from '../support/users.ts';

const REDIRECT_URI = 'http://127.0.0.1:9/cb';

function appClient(server: TestServer, name: string, options: { firstParty?: boolean; scope?: string } = {}) {
  return createClient(server, {
    client_name: name,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: options.scope ?? 'openid profile email offline_access crm:read crm:write',
  }, { firstParty: options.firstParty });
}

describe('sign-in and consent pages', () => {
  let server: TestServer;
  let thirdParty: RegisteredClient;
  let config: client.Configuration;

  before(async () => {
    server = await startTestServer();
    await seedDemoUsers(server);
    thirdParty = await appClient(server, 'Acme <Reports>');
    config = await discoverClient(server, thirdParty, REDIRECT_URI);
  });
  after(async () => { await server.close(); });

  const request = (parameters: Record<string, string> = {}) => codeFlowRequest(config, REDIRECT_URI, { scope: 'openid profile', ...parameters });

  describe('the login page', () => {
    it('is a labelled form with a form token, the client\'s escaped name and a strict page policy', async () => {
      const { page, html } = await openInteraction(new PageSession(server), (await request({ login_hint: 'agent1@demo.example' })).url);
      expect(page.status).to.equal(200);
      expect(page.headers.get('content-type')).to.match(/^text\/html/);
      expect(page.headers.get('cache-control')).to.equal('no-store');
      const policy = page.headers.get('content-security-policy')!;
      expect(policy).to.include("frame-ancestors 'none'").and.include("style-src 'self'").and.include("form-action 'self' http://127.0.0.1:9");
      expect(policy).to.not.include('unsafe-inline');
      expect(html).to.include('Latchkey').and.include('<label for="identifier">').and.include('<label for="password">').and.include('<label for="organization">');
      expect(html).to.include('Acme &lt;Reports&gt;').and.not.include('Acme <Reports>');
      expect(html).to.include('value="agent1@demo.example"');
      expect(html).to.not.match(/<script/i);
      expect(hiddenField(html, 'csrf')).to.match(/^[\w-]{43}$/);
    });

    it('answers a good sign-in POST with 303 to the authorization endpoint', async () => {
      const session = new PageSession(server);
      const interaction = await openInteraction(session, (await request()).url);
      const response = await submitLogin(session, interaction, { identifier: 'agent1@demo.example', password: DEMO_PASSWORD });
      expect(response.status).to.equal(303);
      expect(response.headers.get('location')).to.equal(`${server.issuer}/oauth/authorize/${interaction.uid}`);
    });

    it('accepts the username and the organization slug too', async () => {
      const session = new PageSession(server);
      const interaction = await openInteraction(session, (await request()).url);
      const response = await submitLogin(session, interaction, { identifier: 'agent2', password: DEMO_PASSWORD, organization: 'demo' });
      expect(response.status).to.equal(303);
    });

    it('re-renders the form with the same message, 200 and no redirect, for a wrong password, an unknown user, a disabled account and an overlong field', async () => {
      await executeStatement(server.deps.orm.em, "update app_user set is_active = false where email = 'guest1@demo.example'");
      const attempts = [
        { identifier: 'premium1@demo.example', password: 'not-the-password' },
        { identifier: 'nobody@demo.example', password: DEMO_PASSWORD },
        { identifier: 'guest1@demo.example', password: DEMO_PASSWORD },
        { identifier: 'agent1@demo.example', password: 'x'.repeat(2000) },
      ];
      for (const attempt of attempts) {
        const session = new PageSession(server);
        const interaction = await openInteraction(session, (await request()).url);
        const response = await submitLogin(session, interaction, attempt);
        const html = await response.text();
        // A form sign-in is no HTTP authentication: no 401, which would need a WWW-Authenticate
        // challenge (RFC 9110 section 15.5.2) naming a scheme the page does not use.
        expect(response.status, attempt.identifier).to.equal(200);
        expect(response.headers.get('www-authenticate')).to.equal(null);
        expect(response.headers.get('location')).to.equal(null);
        expect(html).to.include(WRONG_CREDENTIALS_MESSAGE).and.include('role="alert"');
        expect(html).to.include(`value="${attempt.identifier}"`);
        expect(html).to.not.include(attempt.password);
      }
    });

    it('asks for both fields with 400 when one is empty', async () => {
      const session = new PageSession(server);
      const interaction = await openInteraction(session, (await request()).url);
      const response = await submitLogin(session, interaction, { identifier: 'agent1@demo.example', password: '' });
      expect(response.status).to.equal(400);
      expect(await response.text()).to.include('Enter your email or username and your password.');
    });

    it('answers 403 to a POST without the form token, with a wrong one, or with another interaction\'s', async () => {
      const session = new PageSession(server);
      const interaction = await openInteraction(session, (await request()).url);
      const other = await openInteraction(new PageSession(server), (await request()).url);
      const credentials = { identifier: 'agent1@demo.example', password: DEMO_PASSWORD };
      for (const csrf of [undefined, 'forged-token', hiddenField(other.html, 'csrf')]) {
        const response = await session.post(`${interaction.path}/login`, { ...credentials, ...(csrf ? { csrf } : {}) });
        expect(response.status, String(csrf)).to.equal(403);
        expect(response.headers.get('location')).to.equal(null);
        expect(await response.text()).to.include('This form has expired');
      }
    });

    it('locks an account after repeated failures: 429 with Retry-After and the wait on the page', async () => {
      const session = new PageSession(server);
      const interaction = await openInteraction(session, (await request()).url);
      let locked: Response | undefined;
      for (let attempt = 0; attempt < 12 && !locked; attempt += 1) {
        const response = await submitLogin(session, interaction, { identifier: 'backoffice1@demo.example', password: 'wrong-password' });
        if (response.status === 429) locked = response;
        else expect(response.status).to.equal(200);
      }
      expect(locked, 'the account was locked').to.not.equal(undefined);
      const retryAfter = Number(locked!.headers.get('retry-after'));
      expect(retryAfter).to.be.at.least(1);
      expect(await locked!.text()).to.match(/Too many failed sign-ins\. Wait \d+ (second|seconds|minute|minutes) and try again\./);
    });

    it('answers 413 with a page for a form over the size limit', async () => {
      const session = new PageSession(server);
      const interaction = await openInteraction(session, (await request()).url);
      const response = await submitLogin(session, interaction, { identifier: 'agent1@demo.example', password: 'x'.repeat(20_000) });
      expect(response.status).to.equal(413);
      expect(response.headers.get('content-type')).to.match(/^text\/html/);
      expect(await response.text()).to.include('The form was too large');
    });

    it('shows an error page for an interaction whose cookie is missing', async () => {
      const response = await new PageSession(server).get('/interaction/AbCdEfGhIjKlMnOpQrStU');
      expect(response.status).to.equal(400);
      expect(response.headers.get('content-type')).to.match(/^text\/html/);
      expect(await response.text()).to.include('This sign-in has expired');
    });

    it('sends access_denied to the client when the user cancels', async () => {
      const session = new PageSession(server);
      const interaction = await openInteraction(session, (await request()).url);
      const cancelled = await session.post(`${interaction.path}/abort`, { csrf: hiddenField(interaction.html, 'csrf') });
      expect(cancelled.status).to.equal(303);
      const answer = await session.follow(cancelled, REDIRECT_URI);
      const callback = new URL(answer.headers.get('location')!);
      expect(callback.searchParams.get('error')).to.equal('access_denied');
    });
  });

  describe('the stylesheet', () => {
    it('is served locally with cache headers and revalidates with 304', async () => {
      const response = await fetch(`${server.url}/static/latchkey.css`);
      expect(response.status).to.equal(200);
      expect(response.headers.get('content-type')).to.match(/^text\/css/);
      expect(response.headers.get('cache-control')).to.match(/max-age=\d+/);
      // fetch() adds `Cache-Control: no-cache` to a conditional request, which forbids a 304.
      const revalidated = await new Promise<number | undefined>((resolve, reject) => {
        get(`${server.url}/static/latchkey.css`, { headers: { 'if-none-match': response.headers.get('etag')! } }, (answer) => {
          answer.resume();
          resolve(answer.statusCode);
        }).on('error', reject);
      });
      expect(revalidated).to.equal(304);
      expect((await fetch(`${server.url}/static/..%2Fpackage.json`)).status).to.equal(404);
    });
  });

  describe('consent', () => {
    it('is shown for a third-party client with its name and the OIDC and API scopes asked, then remembered', async () => {
      const session = new PageSession(server);
      const flow = await request({ scope: 'openid email crm:read', resource: server.config.apiAudience });
      const interaction = await openInteraction(session, flow.url);
      const consentPage = await session.follow(await submitLogin(session, interaction, { identifier: 'agent1@demo.example', password: DEMO_PASSWORD }));
      const html = await consentPage.text();
      expect(consentPage.status).to.equal(200);
      expect(html).to.include('Acme &lt;Reports&gt; wants to access your account').and.include('agent1@demo.example');
      for (const scope of ['openid', 'email', 'crm:read']) expect(html).to.include(`<code>${scope}</code>`);

      const consentPath = new URL(consentPage.url).pathname;
      const approved = await session.post(`${consentPath}/consent`, { csrf: hiddenField(html, 'csrf'), decision: 'approve' });
      expect(approved.status).to.equal(303);
      const callback = new URL((await session.follow(approved, REDIRECT_URI)).headers.get('location')!);
      const tokens = await client.authorizationCodeGrant(config, callback,
        { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce }, { resource: server.config.apiAudience });
      expect(tokens.scope?.split(' ')).to.include('crm:read');

      const audit = await queryRows<{ action: string; resource_id: string }>(server.deps.orm.em,
        "select action, resource_id from audit_log where action = 'consent.grant' and resource_id = ?", [thirdParty.clientId]);
      expect(audit).to.have.length(1);

      // The same browser asks again: no login (session) and no consent (remembered).
      const second = await request({ scope: 'openid email crm:read', resource: server.config.apiAudience });
      const answer = await session.follow(await session.get(second.url), REDIRECT_URI);
      expect(new URL(answer.headers.get('location')!).searchParams.get('code')).to.be.a('string');
    });

    it('is skipped for a first-party client', async () => {
      const firstParty = await appClient(server, 'Latchkey Console', { firstParty: true });
      const firstPartyConfig = await discoverClient(server, firstParty, REDIRECT_URI);
      const flow = await codeFlowRequest(firstPartyConfig, REDIRECT_URI, { scope: 'openid profile crm:read', resource: server.config.apiAudience });
      const { callback, consentShown } = await authorizeThroughPages(new PageSession(server), flow, REDIRECT_URI,
        { identifier: 'agent1@demo.example', password: DEMO_PASSWORD });
      expect(consentShown).to.equal(false);
      const tokens = await client.authorizationCodeGrant(firstPartyConfig, callback,
        { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce }, { resource: server.config.apiAudience });
      expect(tokens.scope?.split(' ')).to.include('crm:read');
    });

    it('sends access_denied to the client when the user denies', async () => {
      const other = await appClient(server, 'Denied App');
      const otherConfig = await discoverClient(server, other, REDIRECT_URI);
      const flow = await codeFlowRequest(otherConfig, REDIRECT_URI, { scope: 'openid profile' });
      const { callback, consentShown } = await authorizeThroughPages(new PageSession(server), flow, REDIRECT_URI,
        { identifier: 'agent2@demo.example', password: DEMO_PASSWORD }, { consent: 'deny' });
      expect(consentShown).to.equal(true);
      expect(callback.searchParams.get('error')).to.equal('access_denied');
      expect(callback.searchParams.get('state')).to.equal(flow.state);
    });

    it('answers 400 to a consent form without a decision, and 403 without its form token', async () => {
      const session = new PageSession(server);
      const interaction = await openInteraction(session, (await request()).url);
      const consentPage = await session.follow(await submitLogin(session, interaction, { identifier: 'premium1@demo.example', password: DEMO_PASSWORD }));
      const html = await consentPage.text();
      const consentPath = new URL(consentPage.url).pathname;
      const undecided = await session.post(`${consentPath}/consent`, { csrf: hiddenField(html, 'csrf'), decision: 'maybe' });
      expect(undecided.status).to.equal(400);
      expect((await session.post(`${consentPath}/consent`, { decision: 'approve' })).status).to.equal(403);
    });

    it('withholds API scopes the user\'s roles do not allow, and says so on the page', async () => {
      const session = new PageSession(server);
      const flow = await request({ scope: 'openid crm:read crm:write', resource: server.config.apiAudience });
      const interaction = await openInteraction(session, flow.url);
      const consentPage = await session.follow(await submitLogin(session, interaction, { identifier: 'basic1@demo.example', password: DEMO_PASSWORD }));
      const html = await consentPage.text();
      const [asked, withheld] = html.split('Your role does not allow these');
      expect(asked).to.include('<code>crm:read</code>').and.not.include('<code>crm:write</code>');
      expect(withheld).to.include('<code>crm:write</code>').and.not.include('<code>crm:read</code>');
      const approved = await session.post(`${new URL(consentPage.url).pathname}/consent`, { csrf: hiddenField(html, 'csrf'), decision: 'approve' });
      const callback = new URL((await session.follow(approved, REDIRECT_URI)).headers.get('location')!);
      const tokens = await client.authorizationCodeGrant(config, callback,
        { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce }, { resource: server.config.apiAudience });
      expect(tokens.scope?.split(' ')).to.include('crm:read').and.not.include('crm:write');
    });
  });

  describe('authorization requests the provider refuses', () => {
    it('shows an error page, not a redirect, for an unregistered redirect_uri', async () => {
      const flow = await codeFlowRequest(config, 'http://127.0.0.1:9/elsewhere', { scope: 'openid' });
      const response = await new PageSession(server).get(flow.url);
      const html = await response.text();
      expect(response.status).to.equal(400);
      expect(response.headers.get('location')).to.equal(null);
      expect(response.headers.get('content-security-policy')).to.include("frame-ancestors 'none'");
      expect(html).to.include('Latchkey').and.include('<code>invalid_redirect_uri</code>');
      expect(html).to.not.match(/\bat \S+ \(|node_modules|\.js:\d+/);
    });

    it('refuses a public client without PKCE', async () => {
      const publicClient = await createClient(server, {
        client_name: 'SPA', grant_types: ['authorization_code'], response_types: ['code'],
        redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none', scope: 'openid',
      });
      const url = new URL(`${server.issuer}/oauth/authorize`);
      url.search = new URLSearchParams({ client_id: publicClient.clientId, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid', state: 'xyz' }).toString();
      const response = await new PageSession(server).get(url);
      expect(response.status).to.equal(303);
      const answer = new URL(response.headers.get('location')!);
      expect(answer.origin + answer.pathname).to.equal(REDIRECT_URI);
      expect(answer.searchParams.get('error')).to.equal('invalid_request');
      expect(answer.searchParams.get('error_description')).to.match(/PKCE/);
    });

    it('returns login_required to the client for prompt=none without a session', async () => {
      const flow = await request({ prompt: 'none' });
      const response = await new PageSession(server).get(flow.url);
      expect(response.status).to.equal(303);
      const callback = new URL(response.headers.get('location')!);
      const failure = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state })
        .then(() => undefined, (error: unknown) => error);
      expect(failure).to.be.instanceOf(client.AuthorizationResponseError);
      expect((failure as client.AuthorizationResponseError).error).to.equal('login_required');
    });
  });
});
