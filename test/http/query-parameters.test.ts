import { expect } from 'chai';

import { apiRoutes } from '../../src/api/routes.ts';
import { insertAuditRows } from '../api/audit/fixtures.ts';
import { ROOT_PASSWORD, jsonRequest } from '../support/admin.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { loginAs, seedDemoUsers } from '../support/users.ts';

interface Problem { code: string; errors?: { path: (string | number)[] }[] }

/** Every route of the API as a request path, path parameters filled with an unknown id. */
function everyRoute(server: TestServer) {
  return apiRoutes(server.deps).map((route) => ({
    method: route.method.toUpperCase(),
    path: route.path.replace(/:\w+/g, crypto.randomUUID()),
    route,
  }));
}

describe('query parameters, read the same way on every route', () => {
  let server: TestServer;
  let root: string;

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    await insertAuditRows(server, { count: 5, organizationId: null, action: 'user.update', resource: 'user' });
  });
  after(async () => { await server.close(); });

  it('answers 422 naming the parameter for an unknown query parameter, on every route, before doing anything', async () => {
    const count = async () => (await server.deps.orm.em.getConnection().execute('select (select count(*) from audit_log) + (select count(*) from app_user) + (select count(*) from organization) as n'))[0]!.n;
    const before = await count();
    const routes = everyRoute(server);
    expect(routes.length).to.be.greaterThan(50);
    for (const { method, path } of routes) {
      const response = await fetch(`${server.url}/api/v1${path}?not_a_parameter=1`, {
        method, headers: { authorization: `Bearer ${root}`, 'content-type': 'application/json' }, body: method === 'GET' ? undefined : '{}',
      });
      expect(response.status, `${method} ${path}`).to.equal(422);
      const problem = (await response.json()) as Problem;
      expect(problem.errors?.[0]?.path, `${method} ${path}`).to.deep.equal(['query', 'not_a_parameter']);
    }
    // Nothing ran: no audit row, no user, no organization came of those requests.
    expect(await count()).to.equal(before);
  });

  it('treats an empty value as an absent parameter on every route that takes a query', async () => {
    for (const { method, path, route } of everyRoute(server).filter((entry) => entry.method === 'GET' && entry.route.query)) {
      const keys = Object.keys((route.query as unknown as { shape: Record<string, unknown> }).shape);
      const response = await jsonRequest(server, method, `${path}?${keys.map((key) => `${key}=`).join('&')}`, root);
      expect(response.status, `${method} ${path}?${keys.join('=&')}=`).to.be.oneOf([200, 404]);
    }
  });

  it('answers seed 004\'s audit request with empty filters like one without them', async () => {
    const seeded = await jsonRequest(server, 'GET', '/audit/logs?user_id=&action=&resource=&status=', root);
    expect(seeded.status).to.equal(200);
    const plain = await (await jsonRequest(server, 'GET', '/audit/logs', root)).json();
    expect((await seeded.json()).results).to.deep.equal(plain.results);
  });

  it('takes page_size (or its alias limit) as the page length of the audit log, as of every other list', async () => {
    const { results, next } = await (await jsonRequest(server, 'GET', '/audit/logs?page_size=2', root)).json();
    expect(results).to.have.length(2);
    expect(next).to.be.a('string');
    expect((await (await jsonRequest(server, 'GET', '/audit/logs?limit=2', root)).json()).results).to.deep.equal(results);
    expect((await (await jsonRequest(server, 'GET', '/audit/logs?page_size=2&limit=2', root)).json()).results).to.deep.equal(results);
    const conflict = await jsonRequest(server, 'GET', '/audit/logs?page_size=2&limit=3', root);
    expect(conflict.status).to.equal(422);
    expect(((await conflict.json()) as Problem).errors?.[0]?.path).to.deep.equal(['query', 'limit']);
    expect((await jsonRequest(server, 'GET', '/audit/logs?page_size=101', root)).status).to.equal(422);

    const users = await (await jsonRequest(server, 'GET', '/users?limit=2', root)).json();
    expect(users).to.include({ page: 1, page_size: 2 });
    expect(users.results).to.have.length(2);
    expect(users.next).to.include('page=2');
    expect((await jsonRequest(server, 'GET', '/users?page_size=3&limit=2', root)).status).to.equal(422);
  });
});
