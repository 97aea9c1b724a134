// E-mail verification through the API (issue 14 part 4) against a real SMTP server: registration,
// an admin-created user and a change of address each mail a link absolute from ISSUER, in the
// transaction of the change; POST /auth/verify-email uses it once; REQUIRE_VERIFIED_EMAIL=true
// refuses sign-in (JSON login and password grant) until then; resend answers alike for any address
// and is throttled per address and per IP.
import { createHash } from 'node:crypto';

import { expect } from 'chai';
import type { ParsedMail } from 'mailparser';

import { EMAIL_NOT_VERIFIED_DESCRIPTION } from '../../../src/oidc/grants/password.ts';
import { executeStatement, queryOne, queryRows } from '../../../src/platform/database.ts';
import { FIRST_PARTY_CLIENT_ID } from '../../../src/services/bootstrap.service.ts';
import { jsonRequest, ROOT_PASSWORD } from '../../support/admin.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { MailCatcher, linkIn, waitFor } from '../../support/mail.ts';
import { basicAuth, postForm } from '../../support/oauth.ts';
import { DEMO_PASSWORD, login, loginAs, postJson, seedDemoUsers } from '../../support/users.ts';

const PASSWORD = 'lantern-orbit-quartz-71';

describe('e-mail verification through the API (issue 14 part 4)', function () {
  this.timeout(60_000);
  let catcher: MailCatcher;
  let server: TestServer;
  let root: string;

  const verifyPrefix = () => `${server.issuer}/account/verify-email?token=`;
  const tokenOf = (mail: ParsedMail) => linkIn(mail, verifyPrefix()).searchParams.get('token')!;
  const userRow = (email: string) => queryOne<{ id: string; is_verified: boolean }>(server.deps.orm.em, 'select id, is_verified from app_user where email = ?', [email]);
  const auditActions = async (userId: string) => (await queryRows<{ action: string; status: string }>(server.deps.orm.em,
    'select action, status from audit_log where target_id = ? order by occurred_at, action', [userId])).map((row) => `${row.action}:${row.status}`);

  async function register(email: string, extra: Record<string, unknown> = {}): Promise<Response> {
    return postJson(server, '/auth/register', { email, password: PASSWORD, full_name: 'Ada Lovelace', ...extra });
  }

  before(async () => {
    catcher = new MailCatcher();
    await catcher.start();
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD, SMTP_URL: catcher.url, MAIL_POLL_INTERVAL_MS: '50', REQUIRE_VERIFIED_EMAIL: 'true' });
    await seedDemoUsers(server);
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
  });
  after(async () => {
    await server?.close();
    await catcher?.stop();
  });

  describe('on registration', () => {
    it('mails a link absolute from ISSUER over SMTP, and the account starts unverified', async () => {
      const response = await register('ada@example.test');
      expect(response.status).to.equal(201);
      expect((await response.json()).user).to.include({ email: 'ada@example.test', is_verified: false });

      const mail = await catcher.waitForMail('ada@example.test');
      expect(mail.subject).to.equal('Confirm your e-mail address for Latchkey');
      expect(mail.from?.value[0]?.address).to.equal('no-reply@127.0.0.1');
      const link = linkIn(mail, verifyPrefix());
      expect(link.origin + link.pathname).to.equal(`${server.issuer}/account/verify-email`);
      expect(link.searchParams.get('token')).to.match(/^[A-Za-z0-9_-]{43}$/);
      expect(mail.html).to.include(`href="${link.href}"`);
      expect(mail.text).to.include('Hello Ada,');
      expect(mail.text).not.to.include(PASSWORD);
      // The token is stored only as its hash.
      const stored = await queryOne<{ token_hash: string; purpose: string; data: unknown }>(server.deps.orm.em,
        'select token_hash, purpose, data from link_token where token_hash = ?', [createHash('sha256').update(link.searchParams.get('token')!).digest('hex')]);
      expect(stored).to.deep.include({ purpose: 'verify_email', data: { email: 'ada@example.test' } });
      const user = await userRow('ada@example.test');
      expect(await auditActions(user!.id)).to.include.members(['user.register:success', 'user.verification_sent:success']);
    });

    it('refuses sign-in until the address is verified, telling only a caller with the right password', async () => {
      const refused = await login(server, { email: 'ada@example.test', password: PASSWORD });
      expect(refused.status).to.equal(403);
      expect(await refused.json()).to.include({ code: 'auth.email_not_verified', status: 403 });
      const wrong = await login(server, { email: 'ada@example.test', password: 'not-the-password' });
      expect(wrong.status).to.equal(401);
      expect((await wrong.json()).code).to.equal('auth.invalid_credentials');

      const grant = await postForm(`${server.issuer}/oauth/token`, {
        grant_type: 'password', username: 'ada@example.test', password: PASSWORD, client_id: FIRST_PARTY_CLIENT_ID,
      });
      expect(grant.status).to.equal(400);
      expect(await grant.json()).to.deep.equal({ error: 'invalid_grant', error_description: EMAIL_NOT_VERIFIED_DESCRIPTION });
      const user = await userRow('ada@example.test');
      const failures = await queryRows<{ details: { reason: string } }>(server.deps.orm.em,
        `select details from audit_log where action = 'auth.login' and status = 'failure' and target_id = ?`, [user!.id]);
      expect(failures.map((row) => row.details.reason)).to.include('email_not_verified');
    });

    it('verifies with POST /auth/verify-email once, audited, and then lets the user sign in', async () => {
      const token = tokenOf(await catcher.waitForMail('ada@example.test'));
      const response = await postJson(server, '/auth/verify-email', { token });
      expect(response.status).to.equal(200);
      const user = await userRow('ada@example.test');
      expect(await response.json()).to.deep.equal({ user_id: user!.id, email: 'ada@example.test', is_verified: true });
      expect(user!.is_verified).to.equal(true);
      expect(await auditActions(user!.id)).to.include('user.verify_email:success');

      const again = await postJson(server, '/auth/verify-email', { token });
      expect(again.status).to.equal(410);
      expect(await again.json()).to.include({ code: 'link.used', type: 'urn:latchkey:problem:link.used' });

      const signedIn = await login(server, { email: 'ada@example.test', password: PASSWORD });
      expect(signedIn.status).to.equal(200);
      expect((await signedIn.json()).user).to.include({ is_verified: true });
    });

    it('keeps the personal client handed out at registration from authenticating until the address is verified', async () => {
      const registered = await (await register('client@example.test')).json();
      const { client_id: clientId, client_secret: secret } = registered.client;
      const machineToken = () => postForm(`${server.issuer}/oauth/token`, { grant_type: 'client_credentials', scope: 'crm:read' },
        { authorization: basicAuth(clientId, secret) });
      const refused = await machineToken();
      expect(refused.status).to.equal(401);
      expect((await refused.json()).error).to.equal('invalid_client');

      const token = tokenOf(await catcher.waitForMail('client@example.test'));
      expect((await postJson(server, '/auth/verify-email', { token })).status).to.equal(200);
      expect((await machineToken()).status).to.equal(200);

      // A new address makes it wait again, until that one is verified.
      const { access_token: userToken } = await loginAs(server, 'client@example.test', PASSWORD);
      expect((await jsonRequest(server, 'PATCH', '/me', userToken, { email: 'client.new@example.test' })).status).to.equal(200);
      expect((await machineToken()).status).to.equal(401);
      expect((await postJson(server, '/auth/verify-email', { token: tokenOf(await catcher.waitForMail('client.new@example.test')) })).status).to.equal(200);
      expect((await machineToken()).status).to.equal(200);
    });

    it('sends nothing when the registration fails', async () => {
      const before = catcher.received.length;
      expect((await register('ada@example.test')).status).to.equal(409);
      expect((await register('weak@example.test', { password: 'password' })).status).to.equal(422);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(catcher.received.length).to.equal(before);
      expect(await queryOne(server.deps.orm.em, `select 1 from outbox_message where payload->>'to' = 'weak@example.test'`)).to.equal(undefined);
    });
  });

  describe('POST /auth/verify-email with bad tokens', () => {
    it('answers clear 4xx problems, never a 500, and verifies nobody', async () => {
      expect((await register('bad-tokens@example.test')).status).to.equal(201);
      const token = tokenOf(await catcher.waitForMail('bad-tokens@example.test'));
      const tampered = `${token.slice(0, 10)}${token[10] === 'x' ? 'y' : 'x'}${token.slice(11)}`;
      const cases: [unknown, number, string][] = [
        [{ token: tampered }, 400, 'link.invalid'],
        [{ token: 'abc' }, 400, 'link.invalid'],
        [{ token: `${token.slice(0, 42)}\u0000` }, 422, 'request.validation_failed'],
        [{ token: 'x'.repeat(600) }, 422, 'request.validation_failed'],
        [{ token: 42 }, 422, 'request.validation_failed'],
        [{}, 422, 'request.validation_failed'],
        [{ token, extra: true }, 422, 'request.validation_failed'],
      ];
      for (const [body, status, code] of cases) {
        const response = await postJson(server, '/auth/verify-email', body);
        expect(response.status, JSON.stringify(body).slice(0, 80)).to.equal(status);
        expect(response.headers.get('content-type')).to.match(/^application\/problem\+json/);
        expect((await response.json()).code).to.equal(code);
      }
      expect((await userRow('bad-tokens@example.test'))!.is_verified).to.equal(false);

      await executeStatement(server.deps.orm.em, `update link_token set expires_at = now() - interval '1 minute' where token_hash = ?`,
        [createHash('sha256').update(token).digest('hex')]);
      const expired = await postJson(server, '/auth/verify-email', { token });
      expect(expired.status).to.equal(410);
      expect((await expired.json()).code).to.equal('link.expired');
      expect((await userRow('bad-tokens@example.test'))!.is_verified).to.equal(false);
    });
  });

  describe('POST /auth/verify-email/resend', () => {
    it('answers 202 alike for an unverified, a verified and an unknown address, mailing only the unverified one a new link', async () => {
      expect((await register('resend@example.test')).status).to.equal(201);
      const first = tokenOf(await catcher.waitForMail('resend@example.test'));
      const answers = [];
      for (const email of ['resend@example.test', 'agent1@demo.example', 'nobody@example.test']) {
        const response = await postJson(server, '/auth/verify-email/resend', { email });
        answers.push({ status: response.status, body: await response.json() });
      }
      expect(answers[0]!.status).to.equal(202);
      expect(answers[1]).to.deep.equal(answers[0]);
      expect(answers[2]).to.deep.equal(answers[0]);

      const second = tokenOf(await catcher.waitForMail('resend@example.test', 2));
      expect(second).not.to.equal(first);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(catcher.to('agent1@demo.example')).to.have.length(0);
      expect(catcher.to('nobody@example.test')).to.have.length(0);

      // The older link was replaced by the newer one.
      const old = await postJson(server, '/auth/verify-email', { token: first });
      expect(old.status).to.equal(410);
      expect((await old.json()).code).to.equal('link.revoked');
      expect((await postJson(server, '/auth/verify-email', { token: second })).status).to.equal(200);
    });

    it('answers 422 for a malformed address', async () => {
      for (const body of [{}, { email: 'not-an-address' }, { email: `${'a'.repeat(250)}@example.test` }, { email: 'a\u0000@example.test' }]) {
        const response = await postJson(server, '/auth/verify-email/resend', body);
        expect(response.status).to.equal(422);
      }
    });
  });

  describe('users created by an admin and changes of address', () => {
    it('creates a user unverified and mails them, unless the admin sets is_verified', async () => {
      const created = await jsonRequest(server, 'POST', '/users', root, { email: 'hired@example.test', full_name: 'New Hire' });
      expect(created.status).to.equal(201);
      expect((await created.json()).user).to.include({ is_verified: false });
      const mail = await catcher.waitForMail('hired@example.test');
      expect(mail.text).to.include('Hello New,');

      const vouched = await jsonRequest(server, 'POST', '/users', root, { email: 'vouched@example.test', full_name: 'Known Person', is_verified: true });
      expect(vouched.status).to.equal(201);
      expect((await vouched.json()).user).to.include({ is_verified: true });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(catcher.to('vouched@example.test')).to.have.length(0);
    });

    it('makes a new address set by an admin unverified and mails it, revoking the old link', async () => {
      const user = await userRow('hired@example.test');
      const oldToken = tokenOf(await catcher.waitForMail('hired@example.test'));
      const patched = await jsonRequest(server, 'PATCH', `/users/${user!.id}`, root, { email: 'hired.new@example.test' });
      expect(patched.status).to.equal(200);
      expect(await patched.json()).to.include({ email: 'hired.new@example.test', is_verified: false });
      const token = tokenOf(await catcher.waitForMail('hired.new@example.test'));
      expect((await (await postJson(server, '/auth/verify-email', { token: oldToken })).json()).code).to.equal('link.revoked');
      expect((await postJson(server, '/auth/verify-email', { token })).status).to.equal(200);

      // An admin who vouches for the new address in the same request sends nothing.
      const vouched = await jsonRequest(server, 'PATCH', `/users/${user!.id}`, root, { email: 'hired.third@example.test', is_verified: true });
      expect(await vouched.json()).to.include({ email: 'hired.third@example.test', is_verified: true });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(catcher.to('hired.third@example.test')).to.have.length(0);
    });

    it('makes an address the user changes themselves unverified until its link is followed', async () => {
      const { access_token: token } = await loginAs(server, 'basic1@demo.example', DEMO_PASSWORD);
      const patched = await jsonRequest(server, 'PATCH', '/me', token, { email: 'basic1.new@demo.example' });
      expect(patched.status).to.equal(200);
      expect(await patched.json()).to.include({ email: 'basic1.new@demo.example', is_verified: false });
      const mail = await catcher.waitForMail('basic1.new@demo.example');
      expect((await login(server, { email: 'basic1.new@demo.example', password: DEMO_PASSWORD })).status).to.equal(403);
      expect((await postJson(server, '/auth/verify-email', { token: tokenOf(mail) })).status).to.equal(200);
      expect((await login(server, { email: 'basic1.new@demo.example', password: DEMO_PASSWORD })).status).to.equal(200);
    });
  });
});

describe('e-mail verification with REQUIRE_VERIFIED_EMAIL off (the default), and the resend limits', function () {
  this.timeout(60_000);
  let catcher: MailCatcher;
  let server: TestServer;

  before(async () => {
    catcher = new MailCatcher();
    await catcher.start();
    server = await startTestServer({ SMTP_URL: catcher.url, MAIL_POLL_INTERVAL_MS: '50' });
  });
  after(async () => {
    await server?.close();
    await catcher?.stop();
  });

  it('still mails the link on registration, and lets the unverified user sign in and use their personal client', async () => {
    const registered = await postJson(server, '/auth/register', { email: 'free@example.test', password: PASSWORD, full_name: 'Free User' });
    expect(registered.status).to.equal(201);
    const { client } = await registered.json();
    await catcher.waitForMail('free@example.test');
    const response = await login(server, { email: 'free@example.test', password: PASSWORD });
    expect(response.status).to.equal(200);
    expect((await response.json()).user).to.include({ is_verified: false });
    const machine = await postForm(`${server.issuer}/oauth/token`, { grant_type: 'client_credentials', scope: 'crm:read' },
      { authorization: basicAuth(client.client_id, client.client_secret) });
    expect(machine.status).to.equal(200);
  });

  it('allows 3 resends an hour for one address, then 429 with Retry-After, whether or not the address has an account', async () => {
    for (const email of ['free@example.test', 'ghost@example.test']) {
      for (let attempt = 0; attempt < 3; attempt += 1) expect((await postJson(server, '/auth/verify-email/resend', { email })).status).to.equal(202);
      const refused = await postJson(server, '/auth/verify-email/resend', { email: email.toUpperCase() });
      expect(refused.status).to.equal(429);
      expect(Number(refused.headers.get('retry-after'))).to.be.within(3000, 3600);
      expect((await refused.json()).code).to.equal('request.rate_limited');
    }
    await waitFor(() => catcher.to('free@example.test').length === 4);
  });

  it('allows 30 resends an hour from one IP, whatever the addresses', async () => {
    // 8 were counted above.
    for (let n = 0; n < 22; n += 1) expect((await postJson(server, '/auth/verify-email/resend', { email: `many${n}@example.test` })).status).to.equal(202);
    const refused = await postJson(server, '/auth/verify-email/resend', { email: 'one-more@example.test' });
    expect(refused.status).to.equal(429);
    expect(refused.headers.get('retry-after')).to.match(/^\d+$/);
  });
});
