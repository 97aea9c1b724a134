// Accepting an invitation through /account/accept-invitation (issue 14 part 6): the mailed link
// followed in Chromium by a new user who then signs in through the code flow; the GET that only
// shows; the CSRF-bound POST; the form's refusals (password policy, names) that keep the link; a
// clear page for every bad link (withdrawn, replaced, used, expired, tampered); max_users under
// the organization's row lock, with two accepts racing for the last place; and an address that
// already has an account in another organization.
import { createHash } from 'node:crypto';

import { expect } from 'chai';
import type * as client from 'openid-client';
import type { Browser } from 'playwright-core';

import { executeStatement, queryOne } from '../../src/platform/database.ts';
import { issueLinkToken } from '../../src/services/link-tokens.service.ts';
import { jsonRequest, ROOT_PASSWORD } from '../support/admin.ts';
import { launchBrowser } from '../support/browser.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { MailCatcher, linkIn, malformedLinkCases, type LinkPageCase } from '../support/mail.ts';
import { PageSession, codeFlowRequest, decodeHtml, hiddenField, registerPublicCodeClient } from '../support/pages.ts';
import { login, loginAs, seedDemoUsers } from '../support/users.ts';

const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const PASSWORD = 'lantern-orbit-quartz-71';

describe('accepting an invitation (issue 14 part 6)', function () {
  this.timeout(60_000);
  let catcher: MailCatcher;
  let server: TestServer;
  let browser: Browser;
  let config: client.Configuration;
  let admin: string;
  let root: string;
  let demoId: string;

  const acceptPrefix = () => `${server.issuer}/account/accept-invitation?token=`;
  const scalar = async <T>(sql: string, params: unknown[] = []) => Object.values((await queryOne<Record<string, T>>(server.deps.orm.em, sql, params))!)[0]!;
  const usersNamed = (email: string) => scalar<number>('select count(*)::int as n from app_user where email = ?', [email]);
  const consumed = (link: URL) => scalar<boolean>('select consumed_at is not null as used from link_token where token_hash = ?',
    [createHash('sha256').update(link.searchParams.get('token')!).digest('hex')]);
  const demoUsers = () => scalar<number>('select count(*)::int as n from app_user where organization_id = ?', [demoId]);
  const setMaxUsers = (value: number | null) => executeStatement(server.deps.orm.em, 'update organization set max_users = ? where id = ?', [value, demoId]);

  /** Invites an address into demo as the demo admin and answers the mailed link. */
  async function invite(email: string, role = 'agent', token = admin): Promise<URL> {
    const before = catcher.to(email).length;
    const response = await jsonRequest(server, 'POST', `/organizations/${demoId}/invitations`, token, { email, role });
    expect(response.status, await response.clone().text()).to.equal(201);
    return linkIn(await catcher.waitForMail(email, before + 1), acceptPrefix());
  }

  /** The accept page in a fresh session, and a function that posts its form with the given fields. */
  async function openForm(link: URL) {
    const session = new PageSession(server);
    const page = await session.get(link.pathname + link.search);
    expect(page.status).to.equal(200);
    const html = await page.text();
    const fields = { csrf: hiddenField(html, 'csrf'), token: hiddenField(html, 'token') };
    const submit = (form: Partial<Record<'first_name' | 'last_name' | 'password' | 'password_again', string>> = {}) => session.post('/account/accept-invitation', {
      ...fields, first_name: 'Kim', last_name: 'Lee', password: PASSWORD, password_again: form.password ?? PASSWORD, ...form,
    });
    return { session, html, submit };
  }

  before(async () => {
    catcher = new MailCatcher();
    await catcher.start();
    [server, browser] = await Promise.all([
      startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD, SMTP_URL: catcher.url, MAIL_POLL_INTERVAL_MS: '50' }),
      launchBrowser(),
    ]);
    await seedDemoUsers(server);
    admin = (await loginAs(server, 'admin1@demo.example')).access_token;
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    demoId = (await queryOne<{ id: string }>(server.deps.orm.em, `select id from organization where slug = 'demo'`))!.id;
    config = await registerPublicCodeClient(server, 'Team Board', REDIRECT_URI);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await catcher?.stop();
  });

  it('in Chromium: the mailed link, a name and a password make the account, and the new user signs in', async () => {
    const link = await invite('kim@example.test', 'agent');
    const context = await browser.newContext();
    const page = await context.newPage();
    const shown = await page.goto(link.href);
    expect(shown!.status()).to.equal(200);
    await page.getByRole('heading', { name: 'Join Demo Company' }).waitFor();
    expect(await page.getByText('as agent').count()).to.equal(1);
    expect(await page.getByLabel('E-mail address').inputValue()).to.equal('kim@example.test');
    expect(await usersNamed('kim@example.test'), 'showing the page makes nothing').to.equal(0);

    await page.getByLabel('First name').fill('Kim');
    await page.getByLabel('Last name').fill('Lee');
    await page.getByLabel('Password', { exact: true }).fill('password1234');
    await page.getByLabel('Password again').fill('password1234');
    await page.getByRole('button', { name: 'Accept and make my account' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').innerText()).to.match(/Password (is too easy to guess|must not contain)/);
    expect(await page.getByLabel('First name').inputValue(), 'the names typed are kept').to.equal('Kim');
    expect(await usersNamed('kim@example.test')).to.equal(0);

    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Password again').fill(PASSWORD);
    await page.getByRole('button', { name: 'Accept and make my account' }).click();
    await page.getByRole('heading', { name: 'Welcome aboard' }).waitFor();
    expect(new URL(page.url()).pathname).to.equal('/account/accept-invitation/done');

    const user = await queryOne<{ id: string; first_name: string; last_name: string; is_verified: boolean; organization_id: string; roles: string[] }>(server.deps.orm.em,
      `select u.id, u.first_name, u.last_name, u.is_verified, u.organization_id, array_agg(r.key) as roles
         from app_user u join user_role ur on ur.user_id = u.id join role r on r.id = ur.role_id where u.email = ? group by u.id`, ['kim@example.test']);
    expect(user).to.deep.include({ first_name: 'Kim', last_name: 'Lee', is_verified: true, organization_id: demoId });
    expect(user!.roles).to.deep.equal(['agent']);
    const audit = await queryOne<{ actor_id: string; target_id: string; organization_id: string; details: Record<string, unknown> }>(server.deps.orm.em,
      `select actor_id, target_id, organization_id, details from audit_log where action = 'invitation.accept'`);
    expect(audit).to.deep.include({ actor_id: user!.id, target_id: user!.id, organization_id: demoId });
    expect(audit!.details).to.deep.include({ email: 'kim@example.test', role: 'agent' });
    expect(await consumed(link)).to.equal(true);
    const pending = await (await jsonRequest(server, 'GET', `/organizations/${demoId}/invitations`, admin)).json();
    expect(pending.results.map((item: { email: string }) => item.email)).not.to.include('kim@example.test');

    // The link works once.
    expect((await page.goto(link.href))!.status()).to.equal(410);
    await page.getByRole('heading', { name: 'This invitation has been accepted already' }).waitFor();

    // Sign in through the authorization code flow with the new account.
    const flow = await codeFlowRequest(config, REDIRECT_URI, { scope: 'openid email' });
    await page.goto(flow.url.href);
    await page.getByLabel('Email or username').fill('kim@example.test');
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

  it('shows the page without using the link, with the page headers, and accepts only the form POST of the same browser', async () => {
    const link = await invite('scanned@example.test', 'basic_user');
    const scanner = new PageSession(server);
    for (let visit = 0; visit < 2; visit += 1) expect((await scanner.get(link.pathname + link.search)).status).to.equal(200);
    expect(await consumed(link)).to.equal(false);

    const { session, html, submit } = await openForm(link);
    expect(html).to.include('Demo Company').and.include('basic_user').and.not.match(/<script/i);
    const page = await session.get(link.pathname + link.search);
    expect(page.headers.get('cache-control')).to.equal('no-store');
    expect(page.headers.get('content-security-policy')).to.include("form-action 'self'").and.include("frame-ancestors 'none'");

    const attacker = new PageSession(server);
    const base = { token: hiddenField(html, 'token'), first_name: 'Eve', last_name: 'X', password: PASSWORD, password_again: PASSWORD };
    for (const csrf of [undefined, '', hiddenField(html, 'csrf')]) {
      const forged = await attacker.post('/account/accept-invitation', csrf === undefined ? base : { ...base, csrf });
      expect(forged.status).to.equal(403);
      expect(await forged.text()).to.include('This form has expired');
    }
    expect(await usersNamed('scanned@example.test')).to.equal(0);

    const accepted = await submit();
    expect(accepted.status).to.equal(303);
    expect(accepted.headers.get('location')).to.equal('/account/accept-invitation/done?organization=demo');
    expect((await login(server, { email: 'scanned@example.test', password: PASSWORD })).status).to.equal(200);
  });

  it('refuses a weak password, mismatched passwords and bad names with the form again (422), keeping the link', async () => {
    const link = await invite('careful@example.test');
    const { submit } = await openForm(link);
    const cases: [Parameters<typeof submit>[0], string][] = [
      [{ password: 'password1234' }, 'Password is too easy to guess'],
      [{ password: 'short' }, 'Password must be at least 12 characters'],
      [{ password: 'careful-example-test' }, 'Password must not contain your email'],
      [{ password: PASSWORD, password_again: `${PASSWORD}x` }, 'The two passwords differ'],
      [{ password: `${PASSWORD}\u0000` }, 'Password must be at most'],
      [{ password: 'x'.repeat(129) }, 'Password must be at most'],
      [{ first_name: '' }, 'First name is required'],
      [{ last_name: '   ' }, 'Last name is required'],
      [{ first_name: 'K'.repeat(101) }, 'First name must be at most 100 characters'],
      [{ first_name: 'K\u0000m' }, 'First name must not contain control characters'],
    ];
    for (const [form, message] of cases) {
      const response = await submit(form);
      expect(response.status, message).to.equal(422);
      expect(decodeHtml(await response.text())).to.include(message);
    }
    expect(await usersNamed('careful@example.test')).to.equal(0);
    expect(await consumed(link)).to.equal(false);
    expect((await submit()).status).to.equal(303);
  });

  it('explains every bad link with a clear page and status, never a 500', async () => {
    const link = await invite('broken@example.test');
    const token = link.searchParams.get('token')!;
    const session = new PageSession(server);
    const show = async (query: string) => {
      const response = await session.get(`/account/accept-invitation${query}`);
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
    const verification = await server.deps.orm.em.fork().transactional(async (em) => {
      const user = await queryOne<{ id: string }>(em, `select id from app_user where email = 'agent1@demo.example'`);
      const issued = issueLinkToken(em, { purpose: 'verify_email', userId: user!.id, ttlSeconds: 600, data: { email: 'agent1@demo.example' } });
      await em.flush();
      return issued.token;
    });
    expect(await show(`?token=${verification}`)).to.deep.include({ status: 400 });
    expect((await show(`?token=${verification}`)).html).to.include('This link is for something else');

    // A good form, then the invitation expires before the button is pressed.
    const { submit } = await openForm(link);
    await executeStatement(server.deps.orm.em, `update link_token set expires_at = now() - interval '1 second' where token_hash = ?`,
      [createHash('sha256').update(token).digest('hex')]);
    const late = await submit();
    expect(late.status).to.equal(410);
    expect(decodeHtml(await late.text())).to.include('This invitation has expired');
    expect((await show(`?token=${token}`)).status).to.equal(410);
    expect(await usersNamed('broken@example.test')).to.equal(0);

    // Withdrawn after the form was shown.
    const withdrawnLink = await invite('withdrawn@example.test');
    const withdrawnForm = await openForm(withdrawnLink);
    const id = await scalar<string>(`select id from link_token where token_hash = ?`, [createHash('sha256').update(withdrawnLink.searchParams.get('token')!).digest('hex')]);
    expect((await jsonRequest(server, 'DELETE', `/organizations/${demoId}/invitations/${id}`, admin)).status).to.equal(204);
    const refused = await withdrawnForm.submit();
    expect(refused.status).to.equal(410);
    expect(decodeHtml(await refused.text())).to.include('This invitation was withdrawn');
    expect(await usersNamed('withdrawn@example.test')).to.equal(0);

    // A form posted with a garbage token.
    const garbage = await withdrawnForm.session.post('/account/accept-invitation', {
      csrf: hiddenField(withdrawnForm.html, 'csrf'), token: 'x\u0000y', first_name: 'A', last_name: 'B', password: PASSWORD, password_again: PASSWORD,
    });
    expect(garbage.status).to.equal(400);
  });

  it('refuses an accept past max_users with a clear page, the link unused, and accepts once there is room', async () => {
    const link = await invite('waiting@example.test');
    const { submit } = await openForm(link);
    await setMaxUsers(await demoUsers());
    try {
      const full = await submit();
      expect(full.status).to.equal(409);
      expect(decodeHtml(await full.text())).to.include('The organization is full');
      expect(await usersNamed('waiting@example.test')).to.equal(0);
      expect(await consumed(link)).to.equal(false);
      expect(await scalar<number>(`select count(*)::int as n from audit_log where action = 'invitation.accept' and details ->> 'email' = ?`, ['waiting@example.test'])).to.equal(0);

      await setMaxUsers(await demoUsers() + 1);
      expect((await submit()).status).to.equal(303);
      expect(await usersNamed('waiting@example.test')).to.equal(1);
    } finally {
      await setMaxUsers(null);
    }
  });

  it('lets exactly one of two accepts racing for the last place win; the other\'s link stays unused', async () => {
    const links = [await invite('racer1@example.test'), await invite('racer2@example.test')];
    const forms = await Promise.all(links.map(openForm));
    await setMaxUsers(await demoUsers() + 1);
    try {
      const answers = await Promise.all(forms.map((form) => form.submit()));
      expect(answers.map((answer) => answer.status).sort()).to.deep.equal([303, 409]);
      const loser = answers.findIndex((answer) => answer.status === 409);
      expect(await usersNamed(`racer${loser + 1}@example.test`)).to.equal(0);
      expect(await usersNamed(`racer${2 - loser}@example.test`)).to.equal(1);
      expect(await consumed(links[loser]!)).to.equal(false);
      expect(await consumed(links[1 - loser]!)).to.equal(true);
    } finally {
      await setMaxUsers(null);
    }
  });

  it('lets one of two clicks of the same link win: one account, the other told the link was used', async () => {
    const link = await invite('double@example.test');
    const forms = await Promise.all([openForm(link), openForm(link)]);
    const answers = await Promise.all(forms.map((form) => form.submit()));
    expect(answers.map((answer) => answer.status).sort()).to.deep.equal([303, 410]);
    expect(await usersNamed('double@example.test')).to.equal(1);
  });

  it('refuses an address that became a member since it was invited, and a role that was switched off', async () => {
    const link = await invite('meanwhile@example.test');
    const { submit } = await openForm(link);
    expect((await jsonRequest(server, 'POST', '/users', admin, { email: 'meanwhile@example.test', first_name: 'Mean', last_name: 'While' })).status).to.equal(201);
    const refused = await submit();
    expect(refused.status).to.equal(409);
    expect(decodeHtml(await refused.text())).to.include('You are a member already');
    expect(await usersNamed('meanwhile@example.test')).to.equal(1);
    expect(await consumed(link)).to.equal(false);

    const role = await (await jsonRequest(server, 'POST', '/roles', admin, { name: 'Seasonal' })).json();
    const seasonal = await invite('seasonal@example.test', 'Seasonal');
    expect((await jsonRequest(server, 'PATCH', `/roles/${role.id}`, admin, { is_active: false })).status).to.equal(200);
    const page = await new PageSession(server).get(seasonal.pathname + seasonal.search);
    expect(page.status).to.equal(409);
    expect(decodeHtml(await page.text())).to.include('This invitation can no longer be accepted');
  });

  it('makes a separate account when the address has one in another organization; sign-in then names the organization', async () => {
    // basic1@demo.example is a demo account; the default organization invites the same address.
    const defaultId = await scalar<string>(`select id from organization where slug = 'default'`);
    const response = await jsonRequest(server, 'POST', `/organizations/${defaultId}/invitations`, root, { email: 'basic1@demo.example', role: 'guest' });
    expect(response.status).to.equal(201);
    const link = linkIn(await catcher.waitForMail('basic1@demo.example'), acceptPrefix());
    const { html, submit } = await openForm(link);
    expect(decodeHtml(html)).to.include('If this address already has an account in another organization');
    const accepted = await submit({ first_name: 'Bo', last_name: 'Again' });
    expect(accepted.status).to.equal(303);
    expect(accepted.headers.get('location')).to.equal('/account/accept-invitation/done?organization=default');
    expect(await usersNamed('basic1@demo.example')).to.equal(2);

    const signedIn = await login(server, { email: 'basic1@demo.example', password: PASSWORD, organization_slug: 'default' });
    expect(signedIn.status).to.equal(200);
    expect((await signedIn.json()).user.roles).to.deep.equal(['guest']);
    const done = await new PageSession(server).get('/account/accept-invitation/done?organization=default');
    expect(await done.text()).to.include('<code>default</code>');
    const odd = await new PageSession(server).get('/account/accept-invitation/done?organization=%3Cscript%3E');
    expect(odd.status).to.equal(200);
    expect(await odd.text()).not.to.include('script>');
  });
});
