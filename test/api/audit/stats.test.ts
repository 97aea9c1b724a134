import { expect } from 'chai';

import { executeStatement } from '../../../src/platform/database.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { callApi } from '../../support/oauth.ts';
import { login, loginAs, seedDemoUsers } from '../../support/users.ts';
import { ROOT_PASSWORD, insertAuditRows, organizationIdOf, seedOtherOrganization, userIdOf, withoutPermission } from './fixtures.ts';

interface OrganizationStats {
  organization_id: string; days: number; from: string; to: string;
  sign_ins: number; failed_sign_ins: number; active_users: number; events: number;
  actions_by_day: { date: string; count: number }[];
  top_actions: { action: string; count: number }[];
  users: { total: number; active: number };
}

const daysAgo = (days: number) => `date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' - interval '${days} days' + interval '1 hour' + n * interval '1 second'`;

describe('GET /api/v1/organizations/:id/stats', () => {
  let server: TestServer;
  let admin: string;
  let backoffice: string;
  let agent: string;
  let acmeAdmin: string;
  let root: string;
  let demoId: string;
  let acmeId: string;

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    ({ organizationId: acmeId } = await seedOtherOrganization(server));
    demoId = await organizationIdOf(server, 'demo');
    // Exactly known activity: the sign-ins and rows below are all of "demo"'s audit trail.
    await executeStatement(server.deps.orm.em, 'delete from audit_log where organization_id = ?', [demoId]);
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    admin = (await loginAs(server, 'admin1@demo.example')).access_token;
    backoffice = (await loginAs(server, 'backoffice1@demo.example')).access_token;
    agent = (await loginAs(server, 'agent1@demo.example')).access_token;
    acmeAdmin = (await loginAs(server, 'admin@acme.example')).access_token;
    expect((await login(server, { email: 'agent2@demo.example', password: 'wrong-password' })).status).to.equal(401);
    const agent2 = await userIdOf(server, 'agent2@demo.example');
    await insertAuditRows(server, { count: 4, organizationId: demoId, action: 'customer.create', actorId: agent2, at: daysAgo(2) });
    await insertAuditRows(server, { count: 3, organizationId: demoId, action: 'auth.login', resource: 'session', actorId: agent2, targetId: agent2, at: daysAgo(5) });
    await insertAuditRows(server, { count: 9, organizationId: demoId, action: 'ancient.event', at: daysAgo(100) });
    await insertAuditRows(server, { count: 50, organizationId: acmeId, action: 'auth.login', resource: 'session' });
    await executeStatement(server.deps.orm.em, `update app_user set is_active = false where email = 'guest1@demo.example'`);
  });
  after(async () => { await server.close(); });

  it('counts sign-ins, failures, active users, events per day and top actions over the window', async () => {
    const response = await callApi(server, `/organizations/${demoId}/stats?days=7`, admin);
    expect(response.status).to.equal(200);
    const stats = (await response.json()) as OrganizationStats;
    expect(stats).to.include({ organization_id: demoId, days: 7, sign_ins: 3 + 3, failed_sign_ins: 1, events: 3 + 1 + 4 + 3 });
    expect(stats.active_users).to.equal(4); // admin1, backoffice1, agent1 signed in; agent2 acted
    expect(stats.users).to.deep.equal({ total: 7, active: 6 });
    expect(stats.actions_by_day).to.have.length(7);
    expect(stats.actions_by_day.reduce((sum, day) => sum + day.count, 0)).to.equal(stats.events);
    const today = new Date().toISOString().slice(0, 10);
    expect(stats.actions_by_day.at(-1)).to.deep.equal({ date: today, count: 4 });
    expect(stats.top_actions).to.deep.equal([{ action: 'auth.login', count: 7 }, { action: 'customer.create', count: 4 }]);
    expect(new Date(stats.from).toISOString().slice(11)).to.equal('00:00:00.000Z');
  });

  it('defaults to 30 days and reaches back up to 365', async () => {
    const month = (await (await callApi(server, `/organizations/${demoId}/stats`, admin)).json()) as OrganizationStats;
    expect(month).to.include({ days: 30, events: 11 });
    expect(month.actions_by_day).to.have.length(30);
    const year = (await (await callApi(server, `/organizations/${demoId}/stats?days=365`, backoffice)).json()) as OrganizationStats;
    expect(year.events).to.equal(20);
  });

  it('answers 404, not 403, to an org admin asking about another organization', async () => {
    const response = await callApi(server, `/organizations/${demoId}/stats`, acmeAdmin);
    expect(response.status).to.equal(404);
    expect((await response.json()).code).to.equal('resource.not_found');
  });

  it('lets the super admin read any organization\'s stats; 404 for one that does not exist', async () => {
    const acme = (await (await callApi(server, `/organizations/${acmeId}/stats`, root)).json()) as OrganizationStats;
    expect(acme).to.include({ sign_ins: 51, events: 52 }); // + the acme admin's own sign-in and creation
    expect((await callApi(server, '/organizations/00000000-0000-4000-8000-000000000000/stats', root)).status).to.equal(404);
  });

  it('answers 403 to an agent, and auth.forbidden to a role without audit:read', async () => {
    expect((await callApi(server, `/organizations/${demoId}/stats`, agent)).status).to.equal(403);
    await withoutPermission(server, 'backoffice', 'audit:read', async () => {
      const response = await callApi(server, `/organizations/${demoId}/stats`, backoffice);
      expect(response.status).to.equal(403);
      expect((await response.json()).code).to.equal('auth.forbidden');
    });
  });

  it('answers 422 for days out of range and a malformed id', async () => {
    for (const query of ['days=0', 'days=366', 'days=1.5', 'days=week']) {
      expect((await callApi(server, `/organizations/${demoId}/stats?${query}`, admin)).status, query).to.equal(422);
    }
    expect((await callApi(server, '/organizations/demo/stats', admin)).status).to.equal(422);
  });
});

describe('GET /api/v1/admin/stats', () => {
  let server: TestServer;
  let root: string;
  let admin: string;

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    await seedOtherOrganization(server);
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    admin = (await loginAs(server, 'admin1@demo.example')).access_token;
    await login(server, { email: 'admin1@demo.example', password: 'not-the-password' });
    await insertAuditRows(server, { count: 6, organizationId: null, action: 'auth.login', resource: 'session', at: "now() - interval '3 days' - n * interval '1 second'" });
    await insertAuditRows(server, { count: 2, organizationId: null, action: 'auth.login', resource: 'session', status: 'failure', at: "now() - interval '3 days' - n * interval '1 second'" });
    await insertAuditRows(server, { count: 7, organizationId: null, action: 'auth.login', resource: 'session', at: "now() - interval '45 days' - n * interval '1 second'" });
    await executeStatement(server.deps.orm.em, `update organization set is_active = false where slug = 'acme'`);
  });
  after(async () => { await server.close(); });

  it('counts organizations, users, clients by kind and sign-ins over 24 hours and 30 days', async () => {
    const response = await callApi(server, '/admin/stats', root);
    expect(response.status).to.equal(200);
    const stats = await response.json();
    expect(stats.organizations).to.deep.equal({ total: 3, active: 2 });
    expect(stats.users).to.deep.equal({ total: 9, active: 9 });
    // The first-party client, and the personal clients of root and the acme admin.
    expect(stats.clients).to.deep.equal({ total: 3, by_kind: { application: 1, personal: 2, dynamic: 0 } });
    expect(stats.sign_ins).to.deep.equal({ last_24_hours: { success: 2, failure: 1 }, last_30_days: { success: 8, failure: 3 } });
  });

  it('answers 403 auth.forbidden to an org admin', async () => {
    const response = await callApi(server, '/admin/stats', admin);
    expect(response.status).to.equal(403);
    expect((await response.json()).code).to.equal('auth.forbidden');
  });

  it('answers 403 to a super admin token without the audit:read scope', async () => {
    const response = await login(server, { email: 'root@example.com', password: ROOT_PASSWORD, scope: 'crm:read' });
    const narrow = ((await response.json()) as { access_token: string }).access_token;
    expect((await callApi(server, '/admin/stats', narrow)).status).to.equal(403);
  });
});
