// E-mail verification through the pages (issue 14 part 4): the mailed link followed in Chromium;
// the GET that only shows (link scanners use nothing up) and the form POST that verifies, bound to
// the browser; a clear page for every bad link; with REQUIRE_VERIFIED_EMAIL=true the sign-in page
// refuses an unverified account and sends the link again (throttled, the same words for anyone);
// and in the embedded mode, with no SMTP server, the log as the mailbox.
import { Writable } from 'node:stream';
import { createHash } from 'node:crypto';

import { expect } from 'chai';
import type * as client from 'openid-client';
import type { Browser } from 'playwright-core';

import { VERIFICATION_LINK_SENT_MESSAGE } from '../../src/oidc/account/account-pages.ts';
import {
  EMAIL_NOT_VERIFIED_MESSAGE, VERIFICATION_RESENT_MESSAGE, WRONG_CREDENTIALS_MESSAGE,
} from '../../src/oidc/interactions/interaction.routes.ts';
import { executeStatement, queryOne } from '../../src/platform/database.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { createMailTransport } from '../../src/platform/mail.ts';
import { issueLinkToken } from '../../src/services/link-tokens.service.ts';
import { MailDelivery } from '../../src/services/mail-delivery.ts';
import { launchBrowser } from '../support/browser.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { MailCatcher, linkIn, malformedLinkCases, type LinkPageCase } from '../support/mail.ts';
import { PageSession, codeFlowRequest, decodeHtml, formAction, hiddenField, openInteraction, registerPublicCodeClient, submitLogin } from '../support/pages.ts';
import { postJson } from '../support/users.ts';

const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const PASSWORD = 'lantern-orbit-quartz-71';

describe('e-mail verification pages (issue 14 part 4)', function () {
  this.timeout(60_000);
  let catcher: MailCatcher;
  let server: TestServer;
  let browser: Browser;
  let config: client.Configuration;

  const verifyPrefix = () => `${server.issuer}/account/verify-email?token=`;
  const isVerified = async (email: string) => (await queryOne<{ is_verified: boolean }>(server.deps.orm.em,
    'select is_verified from app_user where email = ?', [email]))!.is_verified;

  async function register(email: string): Promise<URL> {
    const before = catcher.to(email).length;
    const response = await postJson(server, '/auth/register', { email, password: PASSWORD, full_name: 'Grace Hopper' });
    expect(response.status).to.equal(201);
    return linkIn(await catcher.waitForMail(email, before + 1), verifyPrefix());
  }

  before(async () => {
    catcher = new MailCatcher();
    await catcher.start();
    [server, browser] = await Promise.all([
      startTestServer({ SMTP_URL: catcher.url, MAIL_POLL_INTERVAL_MS: '50', REQUIRE_VERIFIED_EMAIL: 'true' }),
      launchBrowser(),
    ]);
    config = await registerPublicCodeClient(server, 'Field Notes', REDIRECT_URI);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await catcher?.stop();
  });

  it('in Chromium: sign-in is refused, the link is sent again, followed and confirmed, and then sign-in goes through', async () => {
    const first = await register('grace@example.test');
    const context = await browser.newContext();
    const page = await context.newPage();
    const flow = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid email' });

    await page.goto(flow.url.href);
    await page.getByLabel('Email or username').fill('grace@example.test');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText(EMAIL_NOT_VERIFIED_MESSAGE).waitFor();
    await page.getByRole('button', { name: 'Send the verification link again' }).click();
    await page.getByText(VERIFICATION_RESENT_MESSAGE).waitFor();

    const link = linkIn(await catcher.waitForMail('grace@example.test', 2), verifyPrefix());
    expect(link.searchParams.get('token')).not.to.equal(first.searchParams.get('token'));
    const mailPage = await context.newPage();
    const shown = await mailPage.goto(link.href);
    expect(shown!.status()).to.equal(200);
    await mailPage.getByRole('heading', { name: 'Confirm your e-mail address' }).waitFor();
    expect(await mailPage.getByText('grace@example.test').count()).to.equal(1);
    expect(await isVerified('grace@example.test'), 'showing the page verifies nothing').to.equal(false);
    await mailPage.getByRole('button', { name: 'Confirm my address' }).click();
    await mailPage.getByRole('heading', { name: 'E-mail address verified' }).waitFor();
    expect(new URL(mailPage.url()).pathname).to.equal('/account/verify-email/done');
    expect(await isVerified('grace@example.test')).to.equal(true);

    // The link works once; the first one was replaced by the second.
    expect((await mailPage.goto(link.href))!.status()).to.equal(410);
    await mailPage.getByRole('heading', { name: 'This link has been used already' }).waitFor();
    expect((await mailPage.goto(first.href))!.status()).to.equal(410);
    await mailPage.getByRole('heading', { name: 'This link has been replaced' }).waitFor();

    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // Chromium refuses to load port 9 itself; that the browser was sent there with a code is what counts.
    const [sentBack] = await Promise.all([
      page.waitForRequest((request) => request.url().startsWith(REDIRECT_URI)),
      page.getByRole('button', { name: 'Allow' }).click(),
    ]);
    const arrived = new URL(sentBack.url());
    expect(arrived.searchParams.get('code')).to.be.a('string');
    expect(arrived.searchParams.get('state')).to.equal(flow.state);
    await context.close();
  });

  it('shows the link\'s page without using it, and verifies on the form POST with 303', async () => {
    const link = await register('scanned@example.test');
    const scanner = new PageSession(server);
    for (let visit = 0; visit < 2; visit += 1) expect((await scanner.get(link.pathname + link.search)).status).to.equal(200);
    expect(await isVerified('scanned@example.test')).to.equal(false);

    const session = new PageSession(server);
    const page = await session.get(link.pathname + link.search);
    expect(page.status).to.equal(200);
    expect(page.headers.get('cache-control')).to.equal('no-store');
    expect(page.headers.get('content-security-policy')).to.include("form-action 'self'").and.include("frame-ancestors 'none'");
    const cookie = page.headers.getSetCookie().find((header) => header.startsWith('latchkey.account='))!;
    expect(cookie.toLowerCase()).to.include('httponly').and.include('samesite=lax').and.include('path=/account');
    const html = await page.text();
    expect(html).to.include('scanned@example.test').and.not.match(/<script/i);
    expect(formAction(html, /verify-email/)).to.equal('/account/verify-email');

    const posted = await session.post('/account/verify-email', { csrf: hiddenField(html, 'csrf'), token: hiddenField(html, 'token') });
    expect(posted.status).to.equal(303);
    expect(posted.headers.get('location')).to.equal('/account/verify-email/done');
    expect(await isVerified('scanned@example.test')).to.equal(true);
    const audit = await queryOne<{ count: number }>(server.deps.orm.em,
      `select count(*)::int as count from audit_log a join app_user u on u.id::text = a.target_id where u.email = ? and a.action = 'user.verify_email'`, ['scanned@example.test']);
    expect(audit!.count).to.equal(1);
  });

  it('refuses a POST without the form token, or with another browser\'s, and verifies nothing', async () => {
    const link = await register('forged@example.test');
    const victim = new PageSession(server);
    const html = await (await victim.get(link.pathname + link.search)).text();
    const token = hiddenField(html, 'token');

    const attacker = new PageSession(server);
    const forged = await attacker.post('/account/verify-email', { csrf: hiddenField(html, 'csrf'), token });
    expect(forged.status).to.equal(403);
    expect(await forged.text()).to.include('This form has expired');
    const ownPage = await (await attacker.get(link.pathname + link.search)).text();
    expect(hiddenField(ownPage, 'csrf')).not.to.equal(hiddenField(html, 'csrf'));
    for (const form of [{ token }, { csrf: '', token }, { csrf: 'x'.repeat(43), token }] as Record<string, string>[]) {
      expect((await victim.post('/account/verify-email', form)).status).to.equal(403);
    }
    expect(await isVerified('forged@example.test')).to.equal(false);
  });

  it('explains every bad link with a clear page and status, never a 500', async () => {
    const link = await register('broken@example.test');
    const token = link.searchParams.get('token')!;
    const session = new PageSession(server);
    const show = async (query: string) => {
      const response = await session.get(`/account/verify-email${query}`);
      return { status: response.status, html: decodeHtml(await response.text()) };
    };
    const cases: LinkPageCase[] = [
      ...malformedLinkCases(token),
    ];
    for (const [query, status, title] of cases) {
      const page = await show(query);
      expect(page.status, query.slice(0, 60)).to.equal(status);
      expect(page.html).to.include(title);
    }

    const reset = await server.deps.orm.em.fork().transactional(async (em) => {
      const user = await queryOne<{ id: string }>(em, 'select id from app_user where email = ?', ['broken@example.test']);
      const issued = issueLinkToken(em, { purpose: 'reset_password', userId: user!.id, ttlSeconds: 600 });
      await em.flush();
      return issued.token;
    });
    expect(await show(`?token=${reset}`)).to.deep.include({ status: 400 });
    expect((await show(`?token=${reset}`)).html).to.include('This link is for something else');

    // A good page, then the link expires before the button is pressed.
    const html = await (await session.get(link.pathname + link.search)).text();
    await executeStatement(server.deps.orm.em, `update link_token set expires_at = now() - interval '1 second' where token_hash = ?`,
      [createHash('sha256').update(token).digest('hex')]);
    const late = await session.post('/account/verify-email', { csrf: hiddenField(html, 'csrf'), token });
    expect(late.status).to.equal(410);
    expect(decodeHtml(await late.text())).to.include('This link has expired');
    expect((await show(`?token=${token}`)).status).to.equal(410);
    const garbage = await session.post('/account/verify-email', { csrf: hiddenField(html, 'csrf'), token: 'x\u0000y' });
    expect(garbage.status).to.equal(400);
    expect(await isVerified('broken@example.test')).to.equal(false);
  });

  it('leads from a dead link to a page that sends a new one, alike for any address, throttled', async () => {
    const link = await register('stale@example.test');
    await executeStatement(server.deps.orm.em, `update link_token set expires_at = now() - interval '1 second' where token_hash = ?`,
      [createHash('sha256').update(link.searchParams.get('token')!).digest('hex')]);
    const session = new PageSession(server);
    const dead = await session.get(link.pathname + link.search);
    expect(dead.status).to.equal(410);
    expect(await dead.text()).to.include('<a href="/account/verify-email/resend">Send me a new link</a>');

    const form = await session.get('/account/verify-email/resend');
    expect(form.status).to.equal(200);
    const html = await form.text();
    expect(html).to.include('<label for="email">').and.not.match(/<script/i);
    const csrf = hiddenField(html, 'csrf');
    const answers: string[] = [];
    for (const email of ['stale@example.test', 'nobody-at-all@example.test']) {
      const posted = await session.post('/account/verify-email/resend', { csrf, email, organization: '' });
      expect(posted.status).to.equal(303);
      expect(posted.headers.get('location')).to.equal('/account/verify-email/resend?sent=1');
      const shown = decodeHtml(await (await session.follow(posted)).text());
      expect(shown).to.include(VERIFICATION_LINK_SENT_MESSAGE);
      answers.push(shown.replace(/value="[^"]*"/g, ''));
    }
    expect(answers[1]).to.equal(answers[0]);
    const fresh = linkIn(await catcher.waitForMail('stale@example.test', 2), verifyPrefix());
    expect((await session.get(fresh.pathname + fresh.search)).status).to.equal(200);
    expect(catcher.to('nobody-at-all@example.test')).to.have.length(0);

    expect((await new PageSession(server).post('/account/verify-email/resend', { csrf, email: 'stale@example.test' })).status).to.equal(403);
    expect((await session.post('/account/verify-email/resend', { csrf, email: '' })).status).to.equal(400);
    expect((await session.post('/account/verify-email/resend', { csrf, email: 'x'.repeat(300) })).status).to.equal(400);
    expect((await session.post('/account/verify-email/resend', { csrf, email: 'a\u0000b@example.test' })).status).to.be.within(400, 499);
    for (let n = 0; n < 2; n += 1) expect((await session.post('/account/verify-email/resend', { csrf, email: 'stale@example.test' })).status).to.equal(303);
    const throttled = await session.post('/account/verify-email/resend', { csrf, email: 'stale@example.test' });
    expect(throttled.status).to.equal(429);
    expect(Number(throttled.headers.get('retry-after'))).to.be.greaterThan(0);
    expect(decodeHtml(await throttled.text())).to.include('Too many links asked for');
  });

  it('on the sign-in page, answers a resend alike for any identifier, and throttles it per address', async () => {
    await register('lin@example.test');
    const session = new PageSession(server);
    const flow = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid' });
    const interaction = await openInteraction(session, flow.url);

    const wrong = await submitLogin(session, interaction, { identifier: 'lin@example.test', password: 'not-it' });
    expect(decodeHtml(await wrong.text())).to.include(WRONG_CREDENTIALS_MESSAGE).and.not.include('Send the verification link again');
    const refused = await submitLogin(session, interaction, { identifier: 'lin@example.test', password: PASSWORD });
    expect(refused.status).to.equal(403);
    const refusedHtml = decodeHtml(await refused.text());
    expect(refusedHtml).to.include(EMAIL_NOT_VERIFIED_MESSAGE);
    const resendPath = formAction(refusedHtml, /resend-verification$/);
    expect(resendPath).to.equal(`/interaction/${interaction.uid}/resend-verification`);

    const csrf = hiddenField(interaction.html, 'csrf');
    const answers: string[] = [];
    for (const identifier of ['lin@example.test', 'nobody@example.test']) {
      const response = await session.post(resendPath, { csrf, identifier, organization: '' });
      expect(response.status).to.equal(200);
      const html = decodeHtml(await response.text());
      expect(html).to.include(VERIFICATION_RESENT_MESSAGE);
      answers.push(html.replace(/value="[^"]*"/g, ''));
    }
    expect(answers[1]).to.equal(answers[0]);
    await catcher.waitForMail('lin@example.test', 2);
    expect(catcher.to('nobody@example.test')).to.have.length(0);

    expect((await session.post(resendPath, { csrf: 'forged', identifier: 'lin@example.test' })).status).to.equal(403);
    for (let n = 0; n < 2; n += 1) expect((await session.post(resendPath, { csrf, identifier: 'lin@example.test' })).status).to.equal(200);
    const throttled = await session.post(resendPath, { csrf, identifier: 'LIN@example.test' });
    expect(throttled.status).to.equal(429);
    expect(Number(throttled.headers.get('retry-after'))).to.be.greaterThan(0);
    expect(decodeHtml(await throttled.text())).to.include('Too many links asked for');
    expect((await session.post(resendPath, { csrf, identifier: '' })).status).to.equal(400);
  });
});

describe('e-mail verification in the embedded mode: the log as the mailbox', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    // No SMTP_URL; the server's own worker is off so that this test's delivery, with a captured log, sends the mail.
    server = await startTestServer({ MAIL_POLL_INTERVAL_MS: '0' });
  });
  after(async () => { await server?.close(); });

  it('writes the recipient, subject and link to the log, nothing of the body and no password, and the link verifies', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _encoding, done) { lines.push(String(chunk)); done(); } });
    const logger = createLogger({ logLevel: 'info', env: 'test' }, {}, sink);
    const delivery = new MailDelivery(server.deps.orm, { transport: createMailTransport({ from: 'Latchkey <no-reply@localhost>' }, logger), logger });
    try {
      expect((await postJson(server, '/auth/register', { email: 'offline@example.test', password: PASSWORD, full_name: 'Off Line' })).status).to.equal(201);
      expect(await delivery.run()).to.equal(1);
    } finally {
      await delivery.stop();
    }
    const entries = lines.map((line) => JSON.parse(line) as { msg: string; mail?: { to: string; subject: string; link: string } }).filter((entry) => entry.mail);
    expect(entries).to.have.length(1);
    const { mail } = entries[0]!;
    expect(mail).to.include({ to: 'offline@example.test', subject: 'Confirm your e-mail address for Latchkey' });
    expect(mail!.link).to.match(new RegExp(`^${server.issuer.replace(/[.]/g, '\\.')}/account/verify-email\\?token=[A-Za-z0-9_-]{43}$`));
    expect(Object.keys(mail!).sort()).to.deep.equal(['link', 'subject', 'to']);
    expect(lines.join('')).not.to.include(PASSWORD).and.not.include('Hello Off');

    const link = new URL(mail!.link);
    const session = new PageSession(server);
    const html = await (await session.get(link.pathname + link.search)).text();
    const posted = await session.post('/account/verify-email', { csrf: hiddenField(html, 'csrf'), token: hiddenField(html, 'token') });
    expect(posted.status).to.equal(303);
    expect((await queryOne<{ is_verified: boolean }>(server.deps.orm.em, 'select is_verified from app_user where email = ?', ['offline@example.test']))!.is_verified).to.equal(true);
  });
});
