// The outbox for super admins: GET /admin/outbox lists messages by status without their link or
// body; POST /admin/outbox/:id/retry sends a failed one again (audited), and it really goes out
// over SMTP; org admins and others are refused, and bad input is a clear 4xx.
import { expect } from 'chai';

import { executeStatement, queryOne, queryRows } from '../../../src/platform/database.ts';
import { jsonRequest, ROOT_PASSWORD } from '../../support/admin.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { MailCatcher } from '../../support/mail.ts';
import { callApi } from '../../support/oauth.ts';
import { loginAs, seedDemoUsers } from '../../support/users.ts';

const SECRET_LINK = 'http://127.0.0.1/account/reset-password?token=do-not-show-this-token-anywhere-at-all-xx';

describe('the outbox for super admins (GET /admin/outbox, POST /admin/outbox/:id/retry)', function () {
  this.timeout(60_000);
  let catcher: MailCatcher;
  let server: TestServer;
  let root: string;
  const ids: Record<string, string> = {};

  async function insertMessage(name: string, status: string, extra: { attempts?: number; lastError?: string; createdAgo?: string } = {}): Promise<string> {
    const id = crypto.randomUUID();
    ids[name] = id;
    await executeStatement(server.deps.orm.em,
      `insert into outbox_message (id, kind, payload, status, attempts, next_attempt_at, last_error, created_at, sent_at)
       values (?, 'mail', ?::jsonb, ?, ?, now() + interval '1 hour', ?, now() - ?::interval, case when ? = 'sent' then now() else null end)`,
      [id, JSON.stringify({ to: `${name}@example.test`, subject: `Subject of ${name}`, text: `Open ${SECRET_LINK}`, html: `<a href="${SECRET_LINK}">x</a>`, link: SECRET_LINK }),
        status, extra.attempts ?? 0, extra.lastError ?? null, extra.createdAgo ?? '0 seconds', status]);
    return id;
  }

  before(async () => {
    catcher = new MailCatcher();
    await catcher.start();
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD, SMTP_URL: catcher.url, MAIL_POLL_INTERVAL_MS: '50' });
    await seedDemoUsers(server);
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    await insertMessage('failed-old', 'failed', { attempts: 8, lastError: '450 mailbox temporarily unavailable', createdAgo: '2 hours' });
    await insertMessage('failed-new', 'failed', { attempts: 8, lastError: 'connect ECONNREFUSED 127.0.0.1:1', createdAgo: '1 hour' });
    await insertMessage('sent', 'sent', { attempts: 1, createdAgo: '3 hours' });
  });
  after(async () => {
    await server?.close();
    await catcher?.stop();
  });

  it('lists failed messages newest first, with recipient, subject, attempts and last error, never the link or body', async () => {
    const response = await callApi(server, '/admin/outbox?status=failed', root);
    expect(response.status).to.equal(200);
    expect(response.headers.get('cache-control')).to.equal('no-store');
    const text = await response.text();
    expect(text).not.to.include('do-not-show-this-token').and.not.include('<a href');
    const page = JSON.parse(text);
    expect(page).to.include({ count: 2, page: 1, page_size: 20, next: null, previous: null });
    expect(page.results.map((row: { recipient: string }) => row.recipient)).to.deep.equal(['failed-new@example.test', 'failed-old@example.test']);
    expect(page.results[1]).to.include({
      id: ids['failed-old'], kind: 'mail', status: 'failed', subject: 'Subject of failed-old', attempts: 8, last_error: '450 mailbox temporarily unavailable', sent_at: null,
    });
    expect(Object.keys(page.results[1]).sort()).to.deep.equal(['attempts', 'created_at', 'id', 'kind', 'last_error', 'next_attempt_at', 'recipient', 'sent_at', 'status', 'subject']);

    const sent = await (await callApi(server, '/admin/outbox?status=sent&kind=mail', root)).json();
    expect(sent.results.map((row: { id: string }) => row.id)).to.include(ids.sent);
    expect(sent.results.every((row: { status: string; sent_at: string | null }) => row.status === 'sent' && row.sent_at)).to.equal(true);
    const paged = await (await callApi(server, '/admin/outbox?page_size=1', root)).json();
    expect(paged.results).to.have.length(1);
    expect(paged.next).to.be.a('string').and.include('page=2');
  });

  it('refuses org admins and others, and bad queries, with clear 4xx', async () => {
    const admin = (await loginAs(server, 'admin1@demo.example')).access_token;
    const agent = (await loginAs(server, 'agent1@demo.example')).access_token;
    const forbidden = await callApi(server, '/admin/outbox', admin);
    expect(forbidden.status).to.equal(403);
    expect((await forbidden.json()).code).to.equal('auth.forbidden');
    expect((await callApi(server, '/admin/outbox', agent)).status).to.equal(403);
    const anonymous = await fetch(`${server.url}/api/v1/admin/outbox`);
    expect(anonymous.status).to.equal(401);
    expect(anonymous.headers.get('www-authenticate')).to.match(/^Bearer/);

    for (const query of ['status=bogus', 'page=0', 'page_size=101', 'kind=%00', `kind=${'a'.repeat(40)}`, 'status=failed&status=sent', 'unknown=1']) {
      const response = await callApi(server, `/admin/outbox?${query}`, root);
      expect(response.status, query).to.be.oneOf([400, 422]);
    }

    const retried = await jsonRequest(server, 'POST', `/admin/outbox/${ids['failed-old']}/retry`, admin);
    expect(retried.status).to.equal(403);
    expect((await queryOne<{ status: string }>(server.deps.orm.em, 'select status from outbox_message where id = ?', [ids['failed-old']]))!.status).to.equal('failed');
  });

  it('retries a failed message: back to pending with fresh attempts, audited, and it goes out over SMTP', async () => {
    const response = await jsonRequest(server, 'POST', `/admin/outbox/${ids['failed-new']}/retry`, root);
    expect(response.status).to.equal(200);
    const body = await response.json();
    expect(body).to.include({ id: ids['failed-new'], status: 'pending', attempts: 0 });
    expect(JSON.stringify(body)).not.to.include('do-not-show-this-token');

    const mail = await catcher.waitForMail('failed-new@example.test');
    expect(mail.subject).to.equal('Subject of failed-new');
    const row = await queryOne<{ status: string; attempts: number; last_error: string | null }>(server.deps.orm.em,
      'select status, attempts, last_error from outbox_message where id = ?', [ids['failed-new']]);
    expect(row).to.deep.equal({ status: 'sent', attempts: 1, last_error: null });
    const audit = await queryRows<{ action: string; resource_id: string; details: Record<string, unknown> }>(server.deps.orm.em,
      `select action, resource_id, details from audit_log where action = 'outbox.retry'`);
    expect(audit).to.have.length(1);
    expect(audit[0]).to.deep.include({ resource_id: ids['failed-new'], details: { kind: 'mail', previous_status: 'failed', attempts: 8 } });
  });

  it('answers 409 for a sent message, 404 for an unknown or malformed id', async () => {
    const sent = await jsonRequest(server, 'POST', `/admin/outbox/${ids.sent}/retry`, root);
    expect(sent.status).to.equal(409);
    expect((await sent.json()).code).to.equal('outbox.not_retryable');
    const unknown = await jsonRequest(server, 'POST', `/admin/outbox/${crypto.randomUUID()}/retry`, root);
    expect(unknown.status).to.equal(404);
    const malformed = await jsonRequest(server, 'POST', '/admin/outbox/not-a-uuid/retry', root);
    expect(malformed.status).to.be.oneOf([404, 422]);
    expect(malformed.headers.get('content-type')).to.include('application/problem+json');
  });
});
