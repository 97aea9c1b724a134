import { expect } from 'chai';

import { jsonRequest, ROOT_PASSWORD } from '../../support/admin.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { loginAs, seedDemoUsers } from '../../support/users.ts';

interface Problem { errors?: { path: (string | number)[] }[] }

describe('/api/v1/permissions with resource and action', () => {
  let server: TestServer;
  let root: string;
  let admin: string;

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    admin = (await loginAs(server, 'admin1@demo.example')).access_token;
  });
  after(async () => { await server.close(); });

  it('creates seed 004\'s permission, sent with its name, resource and action, and shows them', async () => {
    const response = await jsonRequest(server, 'POST', '/permissions', root, {
      name: 'user:create', description: 'Create users', resource: 'user', action: 'create',
    });
    expect(response.status, await response.clone().text()).to.equal(201);
    const permission = await response.json();
    expect(permission).to.include({ name: 'user:create', resource: 'user', action: 'create', description: 'Create users', is_builtin: false });
    expect(await (await jsonRequest(server, 'GET', `/permissions/${permission.id}`, admin)).json()).to.include({ resource: 'user', action: 'create' });
    const grouped = await (await jsonRequest(server, 'GET', '/permissions/grouped?search=&resource=user&action=', admin)).json();
    expect(Object.keys(grouped)).to.deep.equal(['user']);
  });

  it('builds the name from resource and action, and takes digits in them', async () => {
    const response = await jsonRequest(server, 'POST', '/permissions', root, { resource: 'report2', action: 'export_v2' });
    expect(response.status, await response.clone().text()).to.equal(201);
    expect(await response.json()).to.include({ name: 'report2:export_v2', resource: 'report2', action: 'export_v2' });
    expect((await jsonRequest(server, 'POST', '/permissions', root, { name: 'b2b_orders:read' })).status).to.equal(201);
  });

  it('answers 422 naming the field when name and its halves disagree, or when neither names the permission', async () => {
    const cases: [Record<string, unknown>, (string | number)[]][] = [
      [{ name: 'user:delete', resource: 'users', action: 'delete' }, ['body', 'resource']],
      [{ name: 'user:delete', resource: 'user', action: 'remove' }, ['body', 'action']],
      [{ resource: 'user' }, ['body', 'action']],
      [{ description: 'nothing named' }, ['body', 'resource']],
      [{ resource: '2fa', action: 'read' }, ['body', 'resource']],
      [{ resource: 'User', action: 'read' }, ['body', 'resource']],
    ];
    for (const [body, path] of cases) {
      const response = await jsonRequest(server, 'POST', '/permissions', root, body);
      expect(response.status, JSON.stringify(body)).to.equal(422);
      expect(((await response.json()) as Problem).errors?.map((error) => error.path), JSON.stringify(body)).to.deep.include(path);
    }
    const [row] = await server.deps.orm.em.getConnection().execute(`select count(*)::int as n from permission where name like 'user:%'`);
    expect(row!.n).to.equal(1);
  });

  it('renames through PATCH with a half, keeps the other half, and audits the change', async () => {
    const created = await (await jsonRequest(server, 'POST', '/permissions', root, { resource: 'invoice', action: 'read' })).json();
    const renamed = await jsonRequest(server, 'PATCH', `/permissions/${created.id}`, root, { action: 'approve' });
    expect(renamed.status, await renamed.clone().text()).to.equal(200);
    expect(await renamed.json()).to.include({ name: 'invoice:approve', resource: 'invoice', action: 'approve' });
    expect((await jsonRequest(server, 'PATCH', `/permissions/${created.id}`, root, { name: 'invoice:pay', action: 'approve' })).status).to.equal(422);
    const builtin = (await (await jsonRequest(server, 'GET', '/permissions?resource=audit', root)).json()).results[0];
    expect((await jsonRequest(server, 'PATCH', `/permissions/${builtin.id}`, root, { resource: 'trail' })).status).to.equal(409);
    const [row] = await server.deps.orm.em.getConnection().execute(`select count(*)::int as n from audit_log where action = 'permission.update' and resource_id = ?`, [created.id]);
    expect(row!.n).to.equal(1);
  });
});
