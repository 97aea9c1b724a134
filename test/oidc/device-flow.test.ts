import { expect } from 'chai';
import * as client from 'openid-client';
import type { Browser } from 'playwright-core';

import { launchBrowser } from '../support/browser.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { callApi, createClient } from '../support/oauth.ts';
import { DEMO_PASSWORD, seedDemoUsers } from '../support/users.ts';

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

describe('device authorization flow (RFC 8628) through the user-code pages', () => {
  let server: TestServer;
  let browser: Browser;
  let config: client.Configuration;

  before(async () => {
    [server, browser] = await Promise.all([startTestServer(), launchBrowser()]);
    await seedDemoUsers(server);
    const device = await createClient(server, {
      client_name: 'Kiosk TV',
      grant_types: [DEVICE_CODE_GRANT, 'refresh_token'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'none',
      scope: 'openid profile crm:read',
    });
    config = await client.discovery(new URL(server.issuer), device.clientId, undefined, client.None(), { execute: [client.allowInsecureRequests] });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('completes a sign-in in the browser while openid-client polls, and the token works at the API', async () => {
    const authorization = await client.initiateDeviceAuthorization(config, { scope: 'openid crm:read', resource: server.config.apiAudience });
    expect(authorization.verification_uri).to.equal(`${server.issuer}/oauth/device`);
    const polling = client.pollDeviceAuthorizationGrant(config, authorization, { resource: server.config.apiAudience });

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(authorization.verification_uri);
    expect(await page.title()).to.equal('Connect a device · Latchkey');
    await page.getByLabel('Code shown on your device').fill(authorization.user_code);
    await page.getByRole('button', { name: 'Continue' }).click();

    await page.getByRole('heading', { name: 'Confirm the device' }).waitFor();
    expect(await page.locator('.user-code').textContent()).to.equal(authorization.user_code);
    await page.getByRole('button', { name: 'Continue' }).click();

    await page.getByLabel('Email or username').fill('agent1@demo.example');
    await page.getByLabel('Password').fill(DEMO_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.getByRole('heading', { name: 'Device connected' }).waitFor();
    expect(await page.textContent('main')).to.include('Kiosk TV');

    const tokens = await polling;
    expect(tokens.scope).to.equal('crm:read');
    const me = await callApi(server, '/me', tokens.access_token);
    expect(me.status).to.equal(200);
    expect((await me.json()).email).to.equal('agent1@demo.example');
    await context.close();
  });

  it('says so when the code is wrong, and keeps what was typed', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.issuer}/oauth/device`);
    await page.getByLabel('Code shown on your device').fill('BCDF-GHJK');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').textContent()).to.include('That code is not right');
    expect(await page.getByLabel('Code shown on your device').inputValue()).to.equal('BCDF-GHJK');
    await context.close();
  });

  it('follows the complete verification link (its auto-submit runs under the page policy) and lets the user cancel', async () => {
    const authorization = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
    const polling = client.pollDeviceAuthorizationGrant(config, authorization).then(() => undefined, (error: unknown) => error);
    const context = await browser.newContext();
    const page = await context.newPage();
    const refused: string[] = [];
    page.on('console', (message) => { if (/Content Security Policy/i.test(message.text())) refused.push(message.text()); });

    await page.goto(authorization.verification_uri_complete!);
    await page.getByRole('heading', { name: 'Confirm the device' }).waitFor();
    expect(refused, 'nothing was blocked by the page policy').to.deep.equal([]);
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByText('The sign-in was cancelled').waitFor();

    const failure = await polling;
    expect(failure).to.be.instanceOf(client.ResponseBodyError);
    expect((failure as client.ResponseBodyError).error).to.equal('access_denied');
    await context.close();
  });
});
