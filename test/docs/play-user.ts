// The user's part of the guide's browser steps, for test/docs/guide-examples.ts: signs in on
// Latchkey's real pages in headless Chromium, as a person following docs/guide/oauth.md would.
//
//   node test/docs/play-user.ts code URL REDIRECT_URI EMAIL PASSWORD   prints the callback's code
//   node test/docs/play-user.ts device URL EMAIL PASSWORD              confirms a device code
//   node test/docs/play-user.ts totp SECRET                            prints the code an authenticator app shows now
import { Secret, TOTP } from 'otpauth';
import type { Page } from 'playwright-core';

import { captureCallback, launchBrowser } from '../support/browser.ts';

async function signIn(page: Page, email: string, password: string): Promise<void> {
  await page.getByLabel('Email or username').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

const [mode, url, ...rest] = process.argv.slice(2);
if (mode === 'totp' && url) {
  process.stdout.write(`${TOTP.generate({ secret: Secret.fromBase32(url) })}\n`);
  process.exit(0);
}
const browser = await launchBrowser();
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  if (mode === 'code' && url && rest.length === 3) {
    const [redirectUri, email, password] = rest as [string, string, string];
    const callback = captureCallback(context, redirectUri);
    await page.goto(url);
    await signIn(page, email, password);
    // A first-party client, or a remembered consent, goes straight back to the client.
    const allow = page.getByRole('button', { name: 'Allow' });
    await Promise.race([callback, allow.waitFor().then(() => allow.click())]);
    process.stdout.write(`${(await callback).searchParams.get('code') ?? ''}\n`);
  } else if (mode === 'device' && url && rest.length === 2) {
    const [email, password] = rest as [string, string];
    await page.goto(url);
    await page.getByRole('heading', { name: 'Confirm the device' }).waitFor();
    await page.getByRole('button', { name: 'Continue' }).click();
    await signIn(page, email, password);
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.getByRole('heading', { name: 'Device connected' }).waitFor();
  } else {
    throw new Error('usage: play-user.ts code URL REDIRECT_URI EMAIL PASSWORD | device URL EMAIL PASSWORD');
  }
} finally {
  await browser.close();
}
