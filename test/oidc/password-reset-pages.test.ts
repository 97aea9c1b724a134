// Forgotten password through the pages (issue 14 part 5): in Chromium, from the sign-in page's link
// to the form, the mail over a real SMTP server, the link, the new password, the old tokens
// refused and a sign-in with the new one; the GET that only shows (link scanners use nothing up)
// and the CSRF-bound POST; a clear page for every bad link and bad input; and in the embedded mode,
// with no SMTP server, the log as the mailbox.
import { Writable } from 'node:stream';
import { createHash } from 'node:crypto';

import { expect } from 'chai';
import type * as client from 'openid-client';
import type { Browser } from 'playwright-core';

import { RESET_LINK_SENT_MESSAGE } from '../../src/oidc/account/account-pages.ts';
import { WRONG_CREDENTIALS_MESSAGE } from '../../src/oidc/interactions/interaction.routes.ts';
import { executeStatement, queryOne } from '../../src/platform/database.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { createMailTransport } from '../../src/platform/mail.ts';
import { issueLinkToken } from '../../src/services/link-tokens.service.ts';
import { MailDelivery } from '../../src/services/mail-delivery.ts';
import { PASSWORD_RESET_LIMITS } from '../../src/services/password-reset.service.ts';
import { launchBrowser } from '../support/browser.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { MailCatcher, linkIn, malformedLinkCases, type LinkPageCase } from '../support/mail.ts';
import { callApi } from '../support/oauth.ts';
import { PageSession, authorizeThroughPages, codeFlowRequest, decodeHtml, formAction, hiddenField, registerPublicCodeClient } from '../support/pages.ts';
import { DEMO_PASSWORD, login, loginAs, postJson, seedDemoUsers } from '../support/users.ts';

const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const NEW_PASSWORD = 'copper-meadow-signal-58';

describe('forgotten password pages (issue 14 part 5)', function () {
  this.timeout(60_000);
  let catcher: MailCatcher;
  let server: TestServer;
  let browser: Browser;
  let config: client.Configuration;

  const resetPrefix = () => `${server.issuer}/account/reset-password?token=`;
  const passwordWorks = async (email: string, password: string) => (await login(server, { email, password })).status === 200;

  /** Asks for a link through the form and answers it, as mailed. */
  async function linkFor(email: string): Promise<URL> {
    const before = catcher.to(email).length;
    const session = new PageSession(server);
    const html = await (await session.get('/account/forgot-password')).text();
    const posted = await session.post('/account/forgot-password', { csrf: hiddenField(html, 'csrf'), email, organization: '' });
    expect(posted.status).to.equal(303);
    return linkIn(await catcher.waitForMail(email, before + 1), resetPrefix());
  }

  before(async () => {
    catcher = new MailCatcher();
    await catcher.start();
    [server, browser] = await Promise.all([
      startTestServer({ SMTP_URL: catcher.url, MAIL_POLL_INTERVAL_MS: '50' }),
      launchBrowser(),
    ]);
    await seedDemoUsers(server);
    config = await registerPublicCodeClient(server, 'Field Notes', REDIRECT_URI);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await catcher?.stop();
  });

  it('in Chromium: sign-in page link, form, mail, link, new password; old tokens and sessions refused, the new password signs in', async () => {
    const email = 'agent1@demo.example';
    const old = await loginAs(server, email);

    // Another browser signed in before the reset: its session at the provider signs it in silently.
    const other = await browser.newContext();
    const otherPage = await other.newPage();
    const first = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid email' });
    await otherPage.goto(first.url.href);
    await otherPage.getByLabel('Email or username').fill(email);
    await otherPage.getByLabel('Password').fill(DEMO_PASSWORD);
    await otherPage.getByRole('button', { name: 'Sign in' }).click();
    // Chromium refuses to load port 9 itself; that the browser was sent there with a code is what counts.
    await Promise.all([
      otherPage.waitForRequest((request) => request.url().startsWith(REDIRECT_URI)),
      otherPage.getByRole('button', { name: 'Allow' }).click(),
    ]);
    const silent = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid email' });
    await Promise.all([
      otherPage.waitForRequest((request) => request.url().startsWith(REDIRECT_URI)),
      otherPage.goto(silent.url.href).catch(() => undefined),
    ]);

    const context = await browser.newContext();
    const page = await context.newPage();
    const flow = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid email' });
    await page.goto(flow.url.href);
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.getByRole('heading', { name: 'Forgot your password?' }).waitFor();
    expect(new URL(page.url()).pathname).to.equal('/account/forgot-password');
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Send me a link' }).click();
    await page.getByRole('heading', { name: 'Check your mail' }).waitFor();
    await page.getByText(RESET_LINK_SENT_MESSAGE).waitFor();

    const link = linkIn(await catcher.waitForMail(email), resetPrefix());
    const mailPage = await context.newPage();
    expect((await mailPage.goto(link.href))!.status()).to.equal(200);
    await mailPage.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    expect(await mailPage.getByText(email).count()).to.equal(1);
    expect(await passwordWorks(email, DEMO_PASSWORD), 'showing the page changes nothing').to.equal(true);
    await mailPage.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
    await mailPage.getByLabel('Repeat the new password').fill(NEW_PASSWORD);
    await mailPage.getByRole('button', { name: 'Set the new password' }).click();
    await mailPage.getByRole('heading', { name: 'Your password has been changed' }).waitFor();
    expect(new URL(mailPage.url()).pathname).to.equal('/account/reset-password/done');

    expect((await callApi(server, '/me', old.access_token)).status).to.equal(401);
    expect((await postJson(server, '/auth/refresh', { refresh_token: old.refresh_token })).status).to.equal(401);
    expect(await passwordWorks(email, DEMO_PASSWORD)).to.equal(false);

    // The link works once.
    expect((await mailPage.goto(link.href))!.status()).to.equal(410);
    await mailPage.getByRole('heading', { name: 'This link has been used already' }).waitFor();

    // The browser signed in before the reset is asked for the password again, and the new one works.
    const after = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid email' });
    await otherPage.goto(after.url.href);
    await otherPage.getByRole('heading', { name: 'Sign in' }).waitFor();
    await otherPage.getByLabel('Email or username').fill(email);
    await otherPage.getByLabel('Password').fill(DEMO_PASSWORD);
    await otherPage.getByRole('button', { name: 'Sign in' }).click();
    await otherPage.getByText(WRONG_CREDENTIALS_MESSAGE).waitFor();
    await otherPage.getByLabel('Password').fill(NEW_PASSWORD);
    await otherPage.getByRole('button', { name: 'Sign in' }).click();
    // The reset revoked the grant that held the consent: it is asked for again.
    const [sentBack] = await Promise.all([
      otherPage.waitForRequest((request) => request.url().startsWith(REDIRECT_URI)),
      otherPage.getByRole('button', { name: 'Allow' }).click(),
    ]);
    const arrived = new URL(sentBack.url());
    expect(arrived.searchParams.get('code')).to.be.a('string');
    expect(arrived.searchParams.get('state')).to.equal(after.state);
    const audit = await queryOne<{ count: number }>(server.deps.orm.em,
      `select count(*)::int as count from audit_log where target_id = ? and action = 'auth.password_reset'`, [old.user.id]);
    expect(audit!.count).to.equal(1);
    await Promise.all([context.close(), other.close()]);
  });

  it('ends the sign-in sessions on an admin\'s reset too: the next authorization asks for the password', async () => {
    const session = new PageSession(server);
    const user = { identifier: 'basic1@demo.example', password: DEMO_PASSWORD };
    const first = await authorizeThroughPages(session, await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid' }), REDIRECT_URI, user);
    expect(first.callback.searchParams.get('code')).to.be.a('string');
    // The session signs in silently...
    const silent = await session.follow(await session.get((await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid' })).url), REDIRECT_URI);
    expect(silent.headers.get('location')).to.satisfy((location: string) => location.startsWith(REDIRECT_URI));

    const admin = await loginAs(server, 'admin1@demo.example');
    const basic = await queryOne<{ id: string }>(server.deps.orm.em, 'select id from app_user where email = ?', ['basic1@demo.example']);
    const reset = await postJson(server, `/users/${basic!.id}/reset-password`, { new_password: NEW_PASSWORD }, admin.access_token);
    expect(reset.status).to.equal(200);

    // ...until the reset: then the sign-in page, where only the new password works.
    const asked = await session.follow(await session.get((await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid' })).url), REDIRECT_URI);
    expect(asked.status).to.equal(200);
    expect(await asked.text()).to.include('name="identifier"');
    const again = await authorizeThroughPages(session, await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid' }), REDIRECT_URI,
      { ...user, password: NEW_PASSWORD });
    expect(again.callback.searchParams.get('code')).to.be.a('string');
  });

  it('shows the reset page without using the link, and resets on the form POST with 303', async () => {
    const link = await linkFor('agent2@demo.example');
    const scanner = new PageSession(server);
    for (let visit = 0; visit < 2; visit += 1) expect((await scanner.get(link.pathname + link.search)).status).to.equal(200);

    const session = new PageSession(server);
    const page = await session.get(link.pathname + link.search);
    expect(page.headers.get('cache-control')).to.equal('no-store');
    expect(page.headers.get('content-security-policy')).to.include("form-action 'self'").and.include("frame-ancestors 'none'");
    const html = await page.text();
    expect(html).to.include('agent2@demo.example').and.include('Demo Company').and.not.match(/<script/i);
    expect(formAction(html, /reset-password/)).to.equal('/account/reset-password');
    const form = { csrf: hiddenField(html, 'csrf'), token: hiddenField(html, 'token') };

    const mismatch = await session.post('/account/reset-password', { ...form, password: NEW_PASSWORD, confirm: `${NEW_PASSWORD}x` });
    expect(mismatch.status).to.equal(400);
    expect(decodeHtml(await mismatch.text())).to.include('The two passwords are not the same.');
    const weak = await session.post('/account/reset-password', { ...form, password: 'passwordpassword', confirm: 'passwordpassword' });
    expect(weak.status).to.equal(422);
    expect(decodeHtml(await weak.text())).to.include('The password is too easy to guess');
    const personal = await session.post('/account/reset-password', { ...form, password: 'agent2-demo-example', confirm: 'agent2-demo-example' });
    expect(personal.status).to.equal(422);
    for (const [password, status] of [['', 400], ['x'.repeat(200), 400], [`${NEW_PASSWORD}\u0000`, 400]] as const) {
      expect((await session.post('/account/reset-password', { ...form, password, confirm: password })).status).to.equal(status);
    }
    expect(await passwordWorks('agent2@demo.example', DEMO_PASSWORD), 'refusals use nothing up').to.equal(true);

    const attacker = new PageSession(server);
    expect((await attacker.post('/account/reset-password', { ...form, password: NEW_PASSWORD, confirm: NEW_PASSWORD })).status).to.equal(403);
    expect((await session.post('/account/reset-password', { token: form.token, password: NEW_PASSWORD, confirm: NEW_PASSWORD })).status).to.equal(403);

    const posted = await session.post('/account/reset-password', { ...form, password: NEW_PASSWORD, confirm: NEW_PASSWORD });
    expect(posted.status).to.equal(303);
    expect(posted.headers.get('location')).to.equal('/account/reset-password/done');
    expect(await passwordWorks('agent2@demo.example', NEW_PASSWORD)).to.equal(true);
  });

  it('explains every bad link with a clear page and status, never a 500', async () => {
    const first = await linkFor('premium1@demo.example');
    const link = await linkFor('premium1@demo.example');
    const token = link.searchParams.get('token')!;
    const session = new PageSession(server);
    const show = async (query: string) => {
      const response = await session.get(`/account/reset-password${query}`);
      return { status: response.status, html: decodeHtml(await response.text()) };
    };
    const verification = await server.deps.orm.em.fork().transactional(async (em) => {
      const user = await queryOne<{ id: string }>(em, 'select id from app_user where email = ?', ['premium1@demo.example']);
      const issued = issueLinkToken(em, { purpose: 'verify_email', userId: user!.id, data: { email: 'premium1@demo.example' }, ttlSeconds: 600 });
      await em.flush();
      return issued.token;
    });
    const cases: LinkPageCase[] = [
      ...malformedLinkCases(token),
      [`?token=${verification}`, 400, 'This link is for something else'],
      [first.search, 410, 'This link has been replaced'],
    ];
    for (const [query, status, title] of cases) {
      const page = await show(query);
      expect(page.status, query.slice(0, 60)).to.equal(status);
      expect(page.html).to.include(title);
    }

    // A good page, then the link expires before the button is pressed.
    const html = await (await session.get(link.pathname + link.search)).text();
    await executeStatement(server.deps.orm.em, `update link_token set expires_at = now() - interval '1 second' where token_hash = ?`,
      [createHash('sha256').update(token).digest('hex')]);
    const late = await session.post('/account/reset-password', { csrf: hiddenField(html, 'csrf'), token, password: NEW_PASSWORD, confirm: NEW_PASSWORD });
    expect(late.status).to.equal(410);
    expect(decodeHtml(await late.text())).to.include('This link has expired');
    const garbage = await session.post('/account/reset-password', { csrf: hiddenField(html, 'csrf'), token: 'x\u0000y', password: NEW_PASSWORD, confirm: NEW_PASSWORD });
    expect(garbage.status).to.equal(400);
    expect(await passwordWorks('premium1@demo.example', DEMO_PASSWORD)).to.equal(true);
  });

  it('answers the forgot form alike for any address, refuses bad input and forged forms, and throttles per address', async () => {
    const session = new PageSession(server);
    const page = await session.get('/account/forgot-password');
    expect(page.status).to.equal(200);
    const csrf = hiddenField(await page.text(), 'csrf');
    const answers: string[] = [];
    for (const email of ['backoffice1@demo.example', 'nobody@demo.example']) {
      const posted = await session.post('/account/forgot-password', { csrf, email, organization: '' });
      expect(posted.status).to.equal(303);
      const sent = await session.follow(posted);
      answers.push(await sent.text());
    }
    expect(answers[1]).to.equal(answers[0]);
    expect(decodeHtml(answers[0]!)).to.include(RESET_LINK_SENT_MESSAGE);
    await catcher.waitForMail('backoffice1@demo.example');
    expect(catcher.to('nobody@demo.example')).to.have.length(0);

    const bad: [Record<string, string>, number][] = [
      [{ csrf, email: '' }, 400],
      [{ csrf, email: 'not-an-address' }, 400],
      [{ csrf, email: `${'a'.repeat(250)}@example.test` }, 400],
      [{ csrf, email: 'a\u0000@example.test' }, 400],
      [{ csrf, email: 'backoffice1@demo.example', organization: 'Not a slug!' }, 400],
      [{ email: 'backoffice1@demo.example' }, 403],
      [{ csrf: 'forged', email: 'backoffice1@demo.example' }, 403],
    ];
    for (const [form, status] of bad) expect((await session.post('/account/forgot-password', form)).status, JSON.stringify(form)).to.equal(status);
    expect((await new PageSession(server).post('/account/forgot-password', { csrf, email: 'backoffice1@demo.example' })).status, 'another browser').to.equal(403);

    for (let n = 1; n < PASSWORD_RESET_LIMITS.perAddress.points; n += 1) {
      expect((await session.post('/account/forgot-password', { csrf, email: 'basic1@demo.example' })).status).to.equal(303);
    }
    expect((await session.post('/account/forgot-password', { csrf, email: 'basic1@demo.example' })).status).to.equal(303);
    const throttled = await session.post('/account/forgot-password', { csrf, email: 'BASIC1@demo.example' });
    expect(throttled.status).to.equal(429);
    expect(Number(throttled.headers.get('retry-after'))).to.be.greaterThan(0);
    expect(decodeHtml(await throttled.text())).to.include('Too many links asked for');
  });
});

describe('forgotten password in the embedded mode: the log as the mailbox', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    // No SMTP_URL; the server's own worker is off so that this test's delivery, with a captured log, sends the mail.
    server = await startTestServer({ MAIL_POLL_INTERVAL_MS: '0' });
    await seedDemoUsers(server);
  });
  after(async () => { await server?.close(); });

  it('writes the recipient, subject and link to the log, no password, and the link resets', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _encoding, done) { lines.push(String(chunk)); done(); } });
    const logger = createLogger({ logLevel: 'info', env: 'test' }, {}, sink);
    const delivery = new MailDelivery(server.deps.orm, { transport: createMailTransport({ from: 'Latchkey <no-reply@localhost>' }, logger), logger });
    try {
      expect((await postJson(server, '/auth/forgot-password', { email: 'admin1@demo.example' })).status).to.equal(202);
      expect(await delivery.run()).to.equal(1);
    } finally {
      await delivery.stop();
    }
    const entries = lines.map((line) => JSON.parse(line) as { mail?: { to: string; subject: string; link: string } }).filter((entry) => entry.mail);
    expect(entries).to.have.length(1);
    const { mail } = entries[0]!;
    expect(mail).to.include({ to: 'admin1@demo.example', subject: 'Reset your Latchkey password' });
    expect(mail!.link).to.match(new RegExp(`^${server.issuer.replace(/[.]/g, '\\.')}/account/reset-password\\?token=[A-Za-z0-9_-]{43}$`));
    expect(lines.join('')).not.to.include(DEMO_PASSWORD);

    const link = new URL(mail!.link);
    const session = new PageSession(server);
    const html = await (await session.get(link.pathname + link.search)).text();
    const posted = await session.post('/account/reset-password', {
      csrf: hiddenField(html, 'csrf'), token: hiddenField(html, 'token'), password: NEW_PASSWORD, confirm: NEW_PASSWORD,
    });
    expect(posted.status).to.equal(303);
    expect((await login(server, { email: 'admin1@demo.example', password: NEW_PASSWORD })).status).to.equal(200);
  });
});
