import { expect } from 'chai';

import { startTestServer, type TestServer } from '../../support/harness.ts';
import { callApi } from '../../support/oauth.ts';
import { DEMO_PASSWORD, login, loginAs, seedDemoUsers } from '../../support/users.ts';
import { ROOT_PASSWORD, auditIds, insertAuditRows, organizationIdOf, seedOtherOrganization, userIdOf, withoutPermission } from './fixtures.ts';

interface Page {
  results: { id: string; organization_id: string | null; action: string; status: string }[];
  next: string | null;
}

/** Follows `next` to the end; answers every page's ids in order. */
async function allPages(server: TestServer, path: string, token: string): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | null = null;
  do {
    const separator = path.includes('?') ? '&' : '?';
    const response = await callApi(server, cursor ? `${path}${separator}cursor=${encodeURIComponent(cursor)}` : path, token);
    expect(response.status, await response.clone().text()).to.equal(200);
    const page = (await response.json()) as Page;
    pages.push(page.results.map((row) => row.id));
    cursor = page.next;
  } while (cursor && pages.length < 1000);
  return pages;
}

describe('GET /api/v1/audit/logs', () => {
  let server: TestServer;
  let root: string;
  let admin: string;
  let backoffice: string;
  let agent: string;
  let acmeAdmin: string;
  let demoId: string;
  let acmeId: string;
  let agentId: string;
  let adminId: string;

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    ({ organizationId: acmeId } = await seedOtherOrganization(server));
    demoId = await organizationIdOf(server, 'demo');
    agentId = await userIdOf(server, 'agent1@demo.example');
    adminId = await userIdOf(server, 'admin1@demo.example');
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    admin = (await loginAs(server, 'admin1@demo.example')).access_token;
    backoffice = (await loginAs(server, 'backoffice1@demo.example')).access_token;
    agent = (await loginAs(server, 'agent1@demo.example')).access_token;
    acmeAdmin = (await loginAs(server, 'admin@acme.example')).access_token;
    // Volume, and 40 rows sharing one instant, so that pages must break ties by id.
    await insertAuditRows(server, { count: 60, organizationId: demoId, action: 'user.update', resource: 'user', actorId: adminId, targetId: agentId });
    await insertAuditRows(server, { count: 20, organizationId: demoId, action: 'auth.login', resource: 'session', status: 'failure', targetId: agentId });
    await insertAuditRows(server, { count: 40, organizationId: demoId, action: 'tie.event', at: `timestamptz '2026-01-02 03:04:05.123456+00'` });
    await insertAuditRows(server, { count: 30, organizationId: acmeId, action: 'user.update', resource: 'user' });
    await insertAuditRows(server, { count: 5, organizationId: null, action: 'auth.login', resource: 'session', status: 'failure' });
  });
  after(async () => { await server.close(); });

  it('pages through every row of the organization exactly once, newest first, ties broken by id', async () => {
    const pages = await allPages(server, '/audit/logs?limit=7', admin);
    const seen = pages.flat();
    expect(seen).to.deep.equal(await auditIds(server, 'organization_id = ?', [demoId]));
    expect(new Set(seen).size).to.equal(seen.length);
    expect(pages.slice(0, -1).every((page) => page.length === 7)).to.equal(true);
  });

  it('answers { results, next } with next null on the last page and 50 rows by default', async () => {
    const first = (await (await callApi(server, '/audit/logs', admin)).json()) as Page;
    expect(first.results).to.have.length(50);
    expect(first.next).to.be.a('string');
    const few = (await (await callApi(server, '/audit/logs?action=auth.login&status=success', admin)).json()) as Page;
    expect(few.next).to.equal(null);
    expect(few.results[0]).to.include.keys('id', 'occurred_at', 'actor_id', 'actor_email', 'target_id', 'action', 'resource', 'status', 'ip', 'user_agent', 'details');
  });

  it('filters by user_id (actor or target), actor_id, action, resource, status, from and to', async () => {
    const check = async (query: string, where: string, params: unknown[]) => {
      const ids = (await allPages(server, `/audit/logs?limit=100&${query}`, admin)).flat();
      expect(ids, query).to.deep.equal(await auditIds(server, `organization_id = '${demoId}' and ${where}`, params));
      expect(ids.length, query).to.be.greaterThan(0);
    };
    await check(`user_id=${agentId}`, '(actor_id = ? or target_id = ?)', [agentId, agentId]);
    await check(`actor_id=${adminId}`, 'actor_id = ?', [adminId]);
    await check('action=auth.login&status=failure', `action = 'auth.login' and status = 'failure'`, []);
    await check('resource=user', `resource = 'user'`, []);
    await check('from=2026-01-02T03:04:05Z&to=2026-01-03', `occurred_at >= '2026-01-02T03:04:05Z' and occurred_at < '2026-01-03'`, []);
    await check('from=2026-01-03', `occurred_at >= '2026-01-03'`, []);
  });

  it('lets backoffice read its organization\'s trail', async () => {
    const page = (await (await callApi(server, '/audit/logs?limit=100', backoffice)).json()) as Page;
    expect(page.results.every((row) => row.organization_id === demoId)).to.equal(true);
  });

  it('never shows an org admin another organization\'s rows, even when asked for them', async () => {
    const own = (await allPages(server, '/audit/logs?limit=100', acmeAdmin)).flat();
    expect(own).to.deep.equal(await auditIds(server, 'organization_id = ?', [acmeId]));
    const asked = (await (await callApi(server, `/audit/logs?organization_id=${demoId}`, acmeAdmin)).json()) as Page;
    expect(asked).to.deep.equal({ results: [], next: null });
  });

  it('shows the super admin every organization, rows of none included, or one by organization_id', async () => {
    const every = (await allPages(server, '/audit/logs?limit=100', root)).flat();
    expect(every).to.deep.equal(await auditIds(server, 'true'));
    const acme = (await allPages(server, `/audit/logs?limit=100&organization_id=${acmeId}`, root)).flat();
    expect(acme).to.deep.equal(await auditIds(server, 'organization_id = ?', [acmeId]));
  });

  it('answers 403 to an agent, whose role grants neither the audit:read scope nor the permission', async () => {
    const response = await callApi(server, '/audit/logs', agent);
    expect(response.status).to.equal(403);
    expect((await response.json()).code).to.equal('auth.insufficient_scope');
    expect(response.headers.get('www-authenticate')).to.match(/insufficient_scope/);
  });

  it('answers 403 to an admin\'s token issued without the audit:read scope', async () => {
    const response = await login(server, { email: 'admin1@demo.example', password: DEMO_PASSWORD, scope: 'crm:read' });
    const narrow = ((await response.json()) as { access_token: string }).access_token;
    expect((await callApi(server, '/audit/logs', narrow)).status).to.equal(403);
  });

  it('answers 403 auth.forbidden once the caller\'s role no longer holds audit:read', async () => {
    await withoutPermission(server, 'backoffice', 'audit:read', async () => {
      const response = await callApi(server, '/audit/logs', backoffice);
      expect(response.status).to.equal(403);
      expect((await response.json()).code).to.equal('auth.forbidden');
    });
  });

  it('answers 422 for a bad date, an inverted window, an unknown status, a bad UUID and a limit out of range', async () => {
    for (const query of ['from=yesterday', 'to=2026-13-45', 'from=2026-02-30T00:00:00Z', 'from=2026-02-01&to=2026-01-01', 'status=maybe', 'user_id=42', 'limit=0', 'limit=101', 'limit=ten']) {
      const response = await callApi(server, `/audit/logs?${query}`, admin);
      expect(response.status, query).to.equal(422);
      expect(response.headers.get('content-type')).to.match(/application\/problem\+json/);
    }
  });

  it('answers 400 for a forged, truncated, altered or foreign cursor', async () => {
    const { next } = (await (await callApi(server, '/audit/logs?limit=5', admin)).json()) as Page;
    const [payload, mac] = next!.split('.') as [string, string];
    const [at] = JSON.parse(Buffer.from(payload, 'base64url').toString()) as [string, string];
    const moved = Buffer.from(JSON.stringify([at, '00000000-0000-4000-8000-000000000000'])).toString('base64url');
    const forged = [
      'garbage', next!.slice(0, -3), `${moved}.${mac}`, `${payload}.`, `${payload}.${mac}.x`,
      `${Buffer.from(`[${JSON.stringify(at)}, "x' or 1=1 --"]`).toString('base64url')}.${mac}`,
    ];
    for (const cursor of forged) {
      const response = await callApi(server, `/audit/logs?limit=5&cursor=${encodeURIComponent(cursor)}`, admin);
      expect(response.status, cursor).to.equal(400);
      expect((await response.json()).code).to.equal('request.bad_cursor');
    }
    // Valid, but issued for another list: other filters, or another organization's caller.
    expect((await callApi(server, `/audit/logs?limit=5&action=user.update&cursor=${next}`, admin)).status).to.equal(400);
    expect((await callApi(server, `/audit/logs?limit=5&cursor=${next}`, acmeAdmin)).status).to.equal(400);
    expect((await callApi(server, `/audit/logs?limit=5&cursor=${next}`, admin)).status).to.equal(200);
  });
});

describe('GET /api/v1/users/:id/activity', () => {
  let server: TestServer;
  let admin: string;
  let backoffice: string;
  let agent: string;
  let acmeAdmin: string;
  let agentId: string;
  let demoId: string;

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    await seedOtherOrganization(server);
    demoId = await organizationIdOf(server, 'demo');
    agentId = await userIdOf(server, 'agent1@demo.example');
    admin = (await loginAs(server, 'admin1@demo.example')).access_token;
    backoffice = (await loginAs(server, 'backoffice1@demo.example')).access_token;
    agent = (await loginAs(server, 'agent1@demo.example')).access_token;
    acmeAdmin = (await loginAs(server, 'admin@acme.example')).access_token;
    await insertAuditRows(server, { count: 25, organizationId: demoId, action: 'user.update', resource: 'user', targetId: agentId });
    await insertAuditRows(server, { count: 10, organizationId: demoId, action: 'customer.create', resource: 'customer', actorId: agentId });
    await insertAuditRows(server, { count: 10, organizationId: demoId, action: 'old.event', actorId: agentId, at: `now() - interval '40 days' - n * interval '1 second'` });
    await insertAuditRows(server, { count: 10, organizationId: demoId, action: 'someone.else' });
  });
  after(async () => { await server.close(); });

  it('pages the user\'s rows as actor or target within the window, each once, newest first', async () => {
    const pages = await allPages(server, `/users/${agentId}/activity?limit=4`, admin);
    const expected = await auditIds(server, `(actor_id = ? or target_id = ?) and occurred_at >= now() - interval '30 days'`, [agentId, agentId]);
    expect(pages.flat()).to.deep.equal(expected);
    expect(expected.length).to.equal(36); // 25 + 10 + the agent's own sign-in
    const longer = (await allPages(server, `/users/${agentId}/activity?limit=100&days=60`, admin)).flat();
    expect(longer).to.have.length(46);
  });

  it('answers 404 for a user of another organization, and for no user at all', async () => {
    expect((await callApi(server, `/users/${agentId}/activity`, acmeAdmin)).status).to.equal(404);
    expect((await callApi(server, '/users/00000000-0000-4000-8000-000000000000/activity', admin)).status).to.equal(404);
  });

  it('answers 403 to an agent, even about themselves, and auth.forbidden to a role without users:read', async () => {
    expect((await callApi(server, `/users/${agentId}/activity`, agent)).status).to.equal(403);
    await withoutPermission(server, 'backoffice', 'users:read', async () => {
      const response = await callApi(server, `/users/${agentId}/activity`, backoffice);
      expect(response.status).to.equal(403);
      expect((await response.json()).code).to.equal('auth.forbidden');
    });
  });

  it('answers 422 for days or limit out of range and a malformed id, 400 for a cursor of another list', async () => {
    for (const query of ['days=0', 'days=366', 'days=x', 'limit=101']) {
      expect((await callApi(server, `/users/${agentId}/activity?${query}`, admin)).status, query).to.equal(422);
    }
    expect((await callApi(server, '/users/not-a-uuid/activity', admin)).status).to.equal(422);
    const { next } = (await (await callApi(server, `/users/${agentId}/activity?limit=2`, admin)).json()) as Page;
    const adminId = await userIdOf(server, 'admin1@demo.example');
    expect((await callApi(server, `/users/${adminId}/activity?cursor=${next}`, admin)).status).to.equal(400);
    expect((await callApi(server, `/audit/logs?cursor=${next}`, admin)).status).to.equal(400);
  });
});
