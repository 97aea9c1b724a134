// Invitations through the API (issue 14 part 6): POST, GET and DELETE
// /api/v1/organizations/:id/invitations, with the mail really sent over SMTP; who may invite
// (another organization's admin: 404; a member without users:write: 403); the role rule of the
// users API (never beyond your own); an address already a member (409); a second invitation of an
// address replacing the first; and bad input, each a clear 4xx with nothing written.
import { expect } from 'chai';

import { queryOne } from '../../../src/platform/database.ts';
import { createOtherOrganization, jsonRequest, ROOT_PASSWORD } from '../../support/admin.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { MailCatcher, linkIn } from '../../support/mail.ts';
import { PageSession } from '../../support/pages.ts';
import { loginAs, seedDemoUsers } from '../../support/users.ts';

interface Invitation {
  id: string;
  organization_id: string;
  email: string;
  role: { id: string; key: string; name: string } | null;
  invited_by: string | null;
  created_at: string;
  expires_at: string;
}

describe('/api/v1/organizations/:id/invitations (issue 14 part 6)', function () {
  this.timeout(60_000);
  let catcher: MailCatcher;
  let server: TestServer;
  let admin: string;
  let adminId: string;
  let agent: string;
  let backoffice: string;
  let root: string;
  let demoId: string;
  let other: { adminId: string; token: string };
  let otherId: string;

  const invitationsOf = (organizationId: string) => `/organizations/${organizationId}/invitations`;
  const acceptPrefix = () => `${server.issuer}/account/accept-invitation?token=`;
  const count = async (sql: string, params: unknown[] = []) => (await queryOne<{ n: number }>(server.deps.orm.em, sql, params))!.n;
  const invitationRows = () => count(`select count(*)::int as n from link_token where purpose = 'invitation'`);
  const auditRows = (action: string) => count('select count(*)::int as n from audit_log where action = ?', [action]);

  async function invite(token: string, organizationId: string, body: unknown): Promise<Response> {
    return jsonRequest(server, 'POST', invitationsOf(organizationId), token, body);
  }

  before(async () => {
    catcher = new MailCatcher();
    await catcher.start();
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD, SMTP_URL: catcher.url, MAIL_POLL_INTERVAL_MS: '50' });
    await seedDemoUsers(server);
    const adminLogin = await loginAs(server, 'admin1@demo.example');
    admin = adminLogin.access_token;
    adminId = adminLogin.user.id;
    agent = (await loginAs(server, 'agent1@demo.example')).access_token;
    backoffice = (await loginAs(server, 'backoffice1@demo.example')).access_token;
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    other = await createOtherOrganization(server);
    demoId = (await queryOne<{ id: string }>(server.deps.orm.em, `select id from organization where slug = 'demo'`))!.id;
    otherId = (await queryOne<{ id: string }>(server.deps.orm.em, `select id from organization where slug = 'other'`))!.id;
  });
  after(async () => {
    await server?.close();
    await catcher?.stop();
  });

  it('invites an address with a role: 201, a mail over SMTP with the link, listed without any token, audited', async () => {
    const response = await invite(admin, demoId, { email: 'New.Hire@Example.test', role: 'agent' });
    expect(response.status).to.equal(201);
    const created = await response.json() as Invitation;
    expect(created).to.include({ organization_id: demoId, email: 'new.hire@example.test', invited_by: adminId });
    expect(created.role).to.include({ key: 'agent', name: 'agent' });
    const lifetime = Date.parse(created.expires_at) - Date.parse(created.created_at);
    expect(lifetime).to.be.within(7 * 86_400_000 - 5_000, 7 * 86_400_000 + 5_000);

    const mail = await catcher.waitForMail('new.hire@example.test');
    expect(mail.subject).to.equal('You are invited to join Demo Company on Latchkey');
    expect(mail.text).to.include('Ada Admin invites you to join Demo Company').and.include('as agent');
    const link = linkIn(mail, acceptPrefix());
    expect(link.searchParams.get('token')).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(mail.html).to.include(link.href.replace(/&/g, '&amp;'));

    const list = await (await jsonRequest(server, 'GET', invitationsOf(demoId), admin)).json();
    expect(list.count).to.equal(1);
    expect(list.results[0]).to.deep.equal(created);
    expect(JSON.stringify(list)).not.to.include(link.searchParams.get('token'));
    const audit = await queryOne<{ actor_id: string; organization_id: string; details: Record<string, unknown> }>(server.deps.orm.em,
      `select actor_id, organization_id, details from audit_log where action = 'invitation.create' and resource_id = ?`, [created.id]);
    expect(audit).to.deep.include({ actor_id: adminId, organization_id: demoId });
    expect(audit!.details).to.deep.equal({ email: 'new.hire@example.test', role: 'agent' });
  });

  it('replaces the pending invitation of an address invited again: the old link is revoked, one is listed', async () => {
    const first = await (await invite(admin, demoId, { email: 'twice@example.test', role: 'basic_user' })).json() as Invitation;
    const firstLink = linkIn(await catcher.waitForMail('twice@example.test'), acceptPrefix());
    const second = await invite(admin, demoId, { email: 'TWICE@example.test', role: 'Premium_User' });
    expect(second.status).to.equal(201);
    const replacement = await second.json() as Invitation;
    expect(replacement.id).not.to.equal(first.id);
    expect(replacement.role!.key).to.equal('premium_user');
    const secondLink = linkIn(await catcher.waitForMail('twice@example.test', 2), acceptPrefix());

    const list = await (await jsonRequest(server, 'GET', `${invitationsOf(demoId)}?page_size=100`, admin)).json();
    expect(list.results.filter((item: Invitation) => item.email === 'twice@example.test').map((item: Invitation) => item.id)).to.deep.equal([replacement.id]);
    const session = new PageSession(server);
    const old = await session.get(firstLink.pathname + firstLink.search);
    expect(old.status).to.equal(410);
    expect(await old.text()).to.include('This invitation has been replaced');
    expect((await session.get(secondLink.pathname + secondLink.search)).status).to.equal(200);
    const audit = await queryOne<{ details: Record<string, unknown> }>(server.deps.orm.em,
      `select details from audit_log where action = 'invitation.create' and resource_id = ?`, [replacement.id]);
    expect(audit!.details).to.deep.include({ replaced: 1 });
  });

  it('names the role by key, name or id, and refuses one that names nothing (422)', async () => {
    const guest = await queryOne<{ id: string }>(server.deps.orm.em, `select id from role where organization_id = ? and key = 'guest'`, [demoId]);
    const byId = await invite(admin, demoId, { email: 'by-id@example.test', role: guest!.id });
    expect(byId.status).to.equal(201);
    expect((await byId.json()).role.key).to.equal('guest');
    const otherGuest = await queryOne<{ id: string }>(server.deps.orm.em, `select id from role where organization_id = ? and key = 'guest'`, [otherId]);
    const before = await invitationRows();
    for (const role of ['no_such_role', otherGuest!.id]) {
      const refused = await invite(admin, demoId, { email: 'nobody@example.test', role });
      expect(refused.status, role).to.equal(422);
      const problem = await refused.json();
      expect(problem.errors[0].path).to.deep.equal(['body', 'role']);
    }
    expect(await invitationRows()).to.equal(before);
  });

  it('refuses a role the inviter does not hold in full (403), as the users API does; a super admin may give it', async () => {
    const roleResponse = await jsonRequest(server, 'POST', '/roles', root, { name: 'Org Manager', organization_id: demoId });
    expect(roleResponse.status).to.equal(201);
    const role = await roleResponse.json();
    const permission = await queryOne<{ id: string }>(server.deps.orm.em, `select id from permission where name = 'organizations:write'`);
    expect((await jsonRequest(server, 'POST', `/roles/${role.id}/permissions`, root, { permission_ids: [permission!.id] })).status).to.equal(200);

    const before = await invitationRows();
    for (const refusedRole of ['super_admin', 'Org Manager', role.id]) {
      const refused = await invite(admin, demoId, { email: 'climber@example.test', role: refusedRole });
      expect(refused.status, refusedRole).to.equal(403);
      expect(refused.headers.get('content-type')).to.include('application/problem+json');
      expect((await refused.json()).detail).to.match(/beyond your own permissions|Only a super admin/);
    }
    expect(await invitationRows()).to.equal(before);
    expect(catcher.to('climber@example.test')).to.have.length(0);

    const allowed = await invite(root, demoId, { email: 'manager@example.test', role: 'org_manager' });
    expect(allowed.status).to.equal(201);
  });

  it('answers 409 for an address that has an account in the organization already, whatever its case', async () => {
    for (const email of ['agent2@demo.example', 'AGENT2@Demo.Example']) {
      const response = await invite(admin, demoId, { email, role: 'agent' });
      expect(response.status).to.equal(409);
      expect((await response.json()).code).to.equal('invitation.already_member');
    }
    // The same address in another organization is no member of this one.
    const elsewhere = await invite(other.token, otherId, { email: 'agent2@demo.example', role: 'agent' });
    expect(elsewhere.status).to.equal(201);
  });

  it('keeps organizations apart: another organization\'s admin gets 404, a super admin reaches any', async () => {
    const before = await invitationRows();
    expect((await invite(other.token, demoId, { email: 'spy@example.test', role: 'guest' })).status).to.equal(404);
    expect((await jsonRequest(server, 'GET', invitationsOf(demoId), other.token)).status).to.equal(404);
    const pending = (await (await jsonRequest(server, 'GET', invitationsOf(demoId), admin)).json()).results[0] as Invitation;
    expect((await jsonRequest(server, 'DELETE', `${invitationsOf(demoId)}/${pending.id}`, other.token)).status).to.equal(404);
    // Its own organization in the path does not reach another organization's invitation either.
    expect((await jsonRequest(server, 'DELETE', `${invitationsOf(otherId)}/${pending.id}`, other.token)).status).to.equal(404);
    expect((await invite(admin, crypto.randomUUID(), { email: 'x@example.test', role: 'guest' })).status).to.equal(404);
    expect((await invite(root, crypto.randomUUID(), { email: 'x@example.test', role: 'guest' })).status).to.equal(404);
    expect(await invitationRows()).to.equal(before);

    const byRoot = await invite(root, otherId, { email: 'rooted@example.test', role: 'admin' });
    expect(byRoot.status).to.equal(201);
    const list = await (await jsonRequest(server, 'GET', invitationsOf(otherId), root)).json();
    expect(list.results.map((item: Invitation) => item.email)).to.include('rooted@example.test');
  });

  it('refuses members without the permission (403): an agent everywhere, backoffice may list but not invite or withdraw', async () => {
    const before = await invitationRows();
    const refused = await invite(agent, demoId, { email: 'friend@example.test', role: 'guest' });
    expect(refused.status).to.equal(403);
    expect(refused.headers.get('www-authenticate') ?? '').not.to.include('invalid_token');
    expect((await jsonRequest(server, 'GET', invitationsOf(demoId), agent)).status).to.equal(403);
    expect((await invite(backoffice, demoId, { email: 'friend@example.test', role: 'guest' })).status).to.equal(403);
    const listed = await jsonRequest(server, 'GET', invitationsOf(demoId), backoffice);
    expect(listed.status).to.equal(200);
    const pending = (await listed.json()).results[0] as Invitation;
    expect((await jsonRequest(server, 'DELETE', `${invitationsOf(demoId)}/${pending.id}`, backoffice)).status).to.equal(403);
    expect(await invitationRows()).to.equal(before);

    const anonymous = await fetch(`${server.url}/api/v1${invitationsOf(demoId)}`);
    expect(anonymous.status).to.equal(401);
    expect(anonymous.headers.get('www-authenticate')).to.match(/^Bearer/);
  });

  it('withdraws a pending invitation: 204, gone from the list, its link says withdrawn, audited; a second time is 404', async () => {
    const created = await (await invite(admin, demoId, { email: 'withdrawn@example.test', role: 'agent' })).json() as Invitation;
    const link = linkIn(await catcher.waitForMail('withdrawn@example.test'), acceptPrefix());
    const withdrawn = await jsonRequest(server, 'DELETE', `${invitationsOf(demoId)}/${created.id}`, admin);
    expect(withdrawn.status).to.equal(204);
    const list = await (await jsonRequest(server, 'GET', `${invitationsOf(demoId)}?page_size=100`, admin)).json();
    expect(list.results.map((item: Invitation) => item.id)).not.to.include(created.id);
    const page = await new PageSession(server).get(link.pathname + link.search);
    expect(page.status).to.equal(410);
    expect(await page.text()).to.include('This invitation was withdrawn');
    expect(await count(`select count(*)::int as n from audit_log where action = 'invitation.withdraw' and resource_id = ? and actor_id = ?`, [created.id, adminId])).to.equal(1);
    expect((await jsonRequest(server, 'DELETE', `${invitationsOf(demoId)}/${created.id}`, admin)).status).to.equal(404);
    expect((await jsonRequest(server, 'DELETE', `${invitationsOf(demoId)}/${crypto.randomUUID()}`, admin)).status).to.equal(404);
    expect((await jsonRequest(server, 'DELETE', `${invitationsOf(demoId)}/not-a-uuid`, admin)).status).to.equal(422);
    expect(await auditRows('invitation.withdraw')).to.equal(1);
  });

  it('pages the list like every other list, and refuses bad paging (422)', async () => {
    const all = await (await jsonRequest(server, 'GET', `${invitationsOf(demoId)}?page_size=100`, admin)).json();
    expect(all.count).to.be.at.least(3);
    const first = await (await jsonRequest(server, 'GET', `${invitationsOf(demoId)}?page_size=1`, admin)).json();
    expect(first).to.include({ count: all.count, page: 1, page_size: 1, previous: null });
    expect(first.results).to.have.length(1);
    expect(first.next).to.include('page=2');
    const second = await (await jsonRequest(server, 'GET', `${invitationsOf(demoId)}?page_size=1&page=2`, admin)).json();
    expect(second.results[0].id).not.to.equal(first.results[0].id);
    for (const query of ['page_size=0', 'page=0', 'page_size=101', 'status=pending']) {
      expect((await jsonRequest(server, 'GET', `${invitationsOf(demoId)}?${query}`, admin)).status, query).to.equal(422);
    }
  });

  it('answers bad input with a clear 4xx problem and writes nothing', async () => {
    const before = await invitationRows();
    const auditBefore = await auditRows('invitation.create');
    const bodies: [unknown, string][] = [
      [{ role: 'agent' }, 'email'],
      [{ email: 'missing-role@example.test' }, 'role'],
      [{ email: 5, role: 'agent' }, 'email'],
      [{ email: 'typed@example.test', role: ['agent'] }, 'role'],
      [{ email: 'not-an-email', role: 'agent' }, 'email'],
      [{ email: `${'a'.repeat(250)}@example.test`, role: 'agent' }, 'email'],
      [{ email: 'long-role@example.test', role: 'r'.repeat(65) }, 'role'],
      [{ email: 'nul\u0000@example.test', role: 'agent' }, 'email'],
      [{ email: 'nul@example.test', role: 'age\u0000nt' }, 'role'],
      [{ email: 'extra@example.test', role: 'agent', password: 'x' }, ''],
    ];
    for (const [body, field] of bodies) {
      const response = await invite(admin, demoId, body);
      expect(response.status, JSON.stringify(body).slice(0, 60)).to.equal(422);
      expect(response.headers.get('content-type')).to.include('application/problem+json');
      const problem = await response.json();
      if (field) expect(problem.errors.map((issue: { path: string[] }) => issue.path.join('.'))).to.include(`body.${field}`);
    }
    expect((await invite(admin, 'not-a-uuid', { email: 'x@example.test', role: 'agent' })).status).to.equal(422);
    const notJson = await fetch(`${server.url}/api/v1${invitationsOf(demoId)}`, {
      method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'text/plain' }, body: 'email=x',
    });
    expect(notJson.status).to.equal(415);
    const malformed = await fetch(`${server.url}/api/v1${invitationsOf(demoId)}`, {
      method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: '{"email":',
    });
    expect(malformed.status).to.equal(400);
    const huge = await invite(admin, demoId, { email: 'huge@example.test', role: 'agent', padding: 'x'.repeat(200_000) });
    expect(huge.status).to.equal(413);
    expect(await invitationRows()).to.equal(before);
    expect(await auditRows('invitation.create')).to.equal(auditBefore);
  });

  it('escapes the organization\'s name in the mail\'s HTML part and keeps the subject on one line', async () => {
    const created = await jsonRequest(server, 'POST', '/organizations', root, { slug: 'sons', name: 'Smith <b>&</b> Sons\nLtd' });
    expect(created.status).to.equal(201);
    const organization = await created.json();
    expect((await invite(root, organization.id, { email: 'heir@example.test', role: 'guest' })).status).to.equal(201);
    const mail = await catcher.waitForMail('heir@example.test');
    expect(mail.subject).to.equal('You are invited to join Smith <b>&</b> Sons Ltd on Latchkey');
    expect(mail.html).to.include('Smith &lt;b&gt;&amp;&lt;/b&gt; Sons').and.not.include('<b>&</b>');
    expect(mail.text).to.include('join Smith <b>&</b> Sons');
  });

  it('refuses an invitation to a disabled organization (403)', async () => {
    expect((await jsonRequest(server, 'PATCH', `/organizations/${otherId}`, root, { is_active: false })).status).to.equal(200);
    const refused = await invite(root, otherId, { email: 'late@example.test', role: 'guest' });
    expect(refused.status).to.equal(403);
    expect((await refused.json()).code).to.equal('organization.inactive');
    expect((await jsonRequest(server, 'PATCH', `/organizations/${otherId}`, root, { is_active: true })).status).to.equal(200);
  });
});
