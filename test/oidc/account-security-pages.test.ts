// /account/security over plain HTTP: the sign-in through the built-in client, the forms and their
// refusals. The passkey ceremony itself is in passkeys-browser.test.ts (Chromium).
import { expect } from 'chai';

import { queryOne, queryRows } from '../../src/platform/database.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { freezeClock, totpCode } from '../support/mfa.ts';
import { addPasskeyRow } from '../support/passkeys.ts';
import { PageSession, hiddenField, submitLogin } from '../support/pages.ts';
import { DEMO_PASSWORD, loginAs, seedDemoUsers } from '../support/users.ts';

describe('the account security page (/account/security)', () => {
  let server: TestServer;
  let move: (byMs: number) => void;

  before(async () => {
    server = await startTestServer({}, { localhostIssuer: true });
    await seedDemoUsers(server);
    move = freezeClock(server);
  });
  after(async () => { await server.close(); });

  /** Opens the page, signing in on the way (password, then a recovery code when the user has a factor). */
  async function signIn(session: PageSession, email: string, recoveryCode?: string): Promise<string> {
    const start = await session.get('/account/security');
    expect(start.status).to.equal(303);
    const authorize = new URL(start.headers.get('location')!);
    expect(authorize.pathname).to.equal('/oauth/authorize');
    expect(authorize.searchParams.get('client_id')).to.equal('latchkey');
    expect(authorize.searchParams.get('code_challenge_method')).to.equal('S256');
    let page = await session.follow(start);
    let html = await page.text();
    const path = new URL(page.url).pathname;
    page = await session.follow(await submitLogin(session, { path, html }, { identifier: email, password: DEMO_PASSWORD }));
    html = await page.text();
    if (recoveryCode) {
      expect(html).to.include('Two-step verification');
      page = await session.follow(await session.post(`${path}/mfa`, { csrf: hiddenField(html, 'csrf'), code: recoveryCode }));
      html = await page.text();
    }
    expect(page.status).to.equal(200);
    expect(new URL(page.url).pathname).to.equal('/account/security');
    expect(html).to.include('<h1 id="page-title">Security</h1>').and.include(email);
    return html;
  }

  it('signs a browser without a session in through the built-in client, then shows the factors; forms need their token', async () => {
    const session = new PageSession(server);
    const html = await signIn(session, 'agent1@demo.example');
    expect(html).to.include('No passkeys yet').and.include('Set up an authenticator app');
    expect(html).to.include('data-passkey="register"');
    const forged = await session.post('/account/security/totp', {});
    expect(forged.status).to.equal(403);
    const elsewhere = await new PageSession(server).post('/account/security/totp', { csrf: hiddenField(html, 'csrf') });
    expect(elsewhere.status).to.equal(403);
    const tampered = await session.get('/account/callback?code=x&state=y');
    expect(tampered.status).to.equal(400);
  });

  it('sets up an authenticator app with the page (recovery codes shown once), then removes it after a fresh sign-in only', async () => {
    const session = new PageSession(server);
    let html = await signIn(session, 'agent2@demo.example');
    const csrf = hiddenField(html, 'csrf');
    const started = await session.post('/account/security/totp', { csrf });
    expect(started.status).to.equal(303);
    const enrolment = await session.follow(started);
    html = await enrolment.text();
    const secret = /<code data-secret>([A-Z2-7]+)<\/code>/.exec(html)![1]!;
    const wrong = await session.post('/account/security/totp/verify', { csrf, code: '000000' });
    expect(wrong.status).to.equal(400);
    const confirmed = await session.post('/account/security/totp/verify', { csrf, code: totpCode(server, secret) });
    expect(confirmed.status).to.equal(200);
    expect(await confirmed.text()).to.include('Save your recovery codes');

    // This session signed in before the factor existed: a removal asks for a sign-in with it.
    const refused = await session.post('/account/security/totp/remove', { csrf });
    expect(refused.status).to.equal(303);
    const again = new URL(refused.headers.get('location')!);
    expect(again.pathname).to.equal('/oauth/authorize');
    expect(again.searchParams.get('max_age')).to.equal('0');
    const factors = await queryRows(server.deps.orm.em,
      `select 1 from mfa_factor f join app_user u on u.id = f.user_id where u.email = 'agent2@demo.example'`);
    expect(factors).to.have.length(1);
  });

  it('renames and removes passkeys; another user\'s passkey is 404; bad names are refused with the page', async () => {
    const owner = (await loginAs(server, 'premium1@demo.example')).user.id;
    const { id, recoveryCodes } = await addPasskeyRow(server, owner, 'Laptop');
    const second = await addPasskeyRow(server, owner, 'Phone');
    const stranger = (await loginAs(server, 'basic1@demo.example')).user.id;
    const foreign = await addPasskeyRow(server, stranger, 'Theirs');

    const session = new PageSession(server);
    const html = await signIn(session, 'premium1@demo.example', recoveryCodes![0]);
    expect(html).to.include('Laptop').and.include('Phone').and.include('9</span> unused recovery codes');
    const csrf = hiddenField(html, 'csrf');

    const renamed = await session.post(`/account/security/passkeys/${id}/rename`, { csrf, name: '  Work   laptop ' });
    expect(renamed.status).to.equal(303);
    expect(renamed.headers.get('location')).to.equal('/account/security?done=passkey-renamed');
    expect((await queryOne<{ name: string }>(server.deps.orm.em, 'select name from mfa_factor where id = ?', [id]))?.name).to.equal('Work laptop');
    expect((await session.post(`/account/security/passkeys/${id}/rename`, { csrf, name: '' })).status).to.equal(400);
    expect((await session.post(`/account/security/passkeys/${id}/rename`, { csrf, name: 'x'.repeat(65) })).status).to.equal(400);
    expect((await session.post(`/account/security/passkeys/${id}/rename`, { csrf, name: 'a\u0000b' })).status).to.equal(400);
    expect((await session.post(`/account/security/passkeys/${foreign.id}/rename`, { csrf, name: 'Mine' })).status).to.equal(404);
    expect((await session.post(`/account/security/passkeys/${foreign.id}/remove`, { csrf })).status).to.equal(404);
    expect((await session.post('/account/security/passkeys/not-an-id/remove', { csrf })).status).to.equal(404);

    move(6 * 60_000);
    const stale = await session.post(`/account/security/passkeys/${id}/remove`, { csrf });
    expect(stale.status).to.equal(303);
    expect(new URL(stale.headers.get('location')!).searchParams.get('max_age')).to.equal('0');
    move(-6 * 60_000);
    const removed = await session.post(`/account/security/passkeys/${id}/remove`, { csrf });
    expect(removed.headers.get('location')).to.equal('/account/security?done=passkey-removed');
    const codes = await session.post('/account/security/recovery-codes', { csrf });
    expect(codes.status).to.equal(200);
    expect((await codes.text()).match(/<li><code>/g)).to.have.length(10);
    const audit = await queryRows<{ action: string }>(server.deps.orm.em,
      `select action from audit_log where target_id = ? and action like 'mfa.%' order by occurred_at`, [owner]);
    expect(audit.map((row) => row.action)).to.deep.equal(['mfa.passkey_rename', 'mfa.passkey_remove', 'mfa.recovery_codes_generate']);
    expect((await queryOne(server.deps.orm.em, 'select 1 from mfa_factor where id = ?', [second.id]))).to.not.equal(undefined);
    expect((await queryOne(server.deps.orm.em, 'select 1 from mfa_factor where id = ?', [foreign.id]))).to.not.equal(undefined);
  });
});
