import { expect } from 'chai';

import { createOtherOrganization, jsonRequest, ROOT_PASSWORD } from '../../support/admin.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { loginAs, seedDemoUsers } from '../../support/users.ts';

describe('/api/v1/roles and /api/v1/permissions (RBAC)', () => {
  let server: TestServer;
  let admin: string;
  let agent: string;
  let root: string;
  let other: { adminId: string; token: string };
  let permissionIds: Record<string, string>;

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    admin = (await loginAs(server, 'admin1@demo.example')).access_token;
    agent = (await loginAs(server, 'agent1@demo.example')).access_token;
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    other = await createOtherOrganization(server);
    const rows = await server.deps.orm.em.getConnection().execute('select id, name from permission');
    permissionIds = Object.fromEntries(rows.map((row) => [String(row.name), String(row.id)]));
  });
  after(async () => { await server.close(); });

  it('lists the organization\'s roles, built-in ones first, without the global super_admin', async () => {
    const body = await (await jsonRequest(server, 'GET', '/roles', admin)).json();
    const names = body.results.map((role: { name: string }) => role.name);
    expect(names).to.include.members(['admin', 'backoffice', 'agent', 'premium_user', 'basic_user', 'guest']);
    expect(names).to.not.include('super_admin');
    expect(body.results.find((role: { name: string }) => role.name === 'agent').permissions).to.include('customers:create');
  });

  it('creates a custom role with permissions the admin holds, and refuses ones they lack', async () => {
    const created = await jsonRequest(server, 'POST', '/roles', admin, { name: 'auditor', description: 'Reads the trail', permission_ids: [permissionIds['audit:read'], permissionIds['users:read']] });
    expect(created.status).to.equal(201);
    const role = await created.json();
    expect(role.permissions).to.deep.equal(['audit:read', 'users:read']);
    const beyond = await jsonRequest(server, 'POST', '/roles', admin, { name: 'org_maker', permission_ids: [permissionIds['organizations:write']] });
    expect(beyond.status).to.equal(403);
    expect((await jsonRequest(server, 'POST', '/roles', admin, { name: 'auditor' })).status).to.equal(409);
    const add = await jsonRequest(server, 'POST', `/roles/${role.id}/permissions`, admin, { permission_ids: [permissionIds['permissions:write']] });
    expect(add.status).to.equal(403);
  });

  it('gives a custom role\'s holder its permissions and the scopes under them', async () => {
    const [role] = (await (await jsonRequest(server, 'GET', '/roles?search=auditor', admin)).json()).results;
    const agentId = (await server.deps.orm.em.getConnection().execute(`select id from app_user where email = 'agent2@demo.example'`))[0]!.id;
    expect((await jsonRequest(server, 'POST', `/users/${agentId}/roles`, admin, { role_ids: [role.id] })).status).to.equal(200);
    const token = (await loginAs(server, 'agent2@demo.example')).access_token;
    expect((await jsonRequest(server, 'GET', '/users', token)).status).to.equal(200);
    // A held role cannot be deleted; taking it away first allows it.
    expect((await jsonRequest(server, 'DELETE', `/roles/${role.id}`, admin)).status).to.equal(409);
    expect((await jsonRequest(server, 'DELETE', `/users/${agentId}/roles`, admin, { role_ids: [role.id] })).status).to.equal(200);
    expect((await jsonRequest(server, 'GET', '/users', token)).status).to.equal(401);
    expect((await jsonRequest(server, 'DELETE', `/roles/${role.id}`, admin)).status).to.equal(204);
  });

  it('protects built-in roles from deletion and renaming', async () => {
    const [builtin] = (await (await jsonRequest(server, 'GET', '/roles?search=guest', admin)).json()).results;
    expect((await jsonRequest(server, 'DELETE', `/roles/${builtin.id}`, admin)).status).to.equal(409);
    expect((await jsonRequest(server, 'PATCH', `/roles/${builtin.id}`, admin, { name: 'visitor' })).status).to.equal(409);
    expect((await jsonRequest(server, 'PATCH', `/roles/${builtin.id}`, admin, { description: 'Visitors' })).status).to.equal(200);
  });

  it('keeps an admin from changing the permissions of a role they hold', async () => {
    const [adminRole] = (await (await jsonRequest(server, 'GET', '/roles?search=admin', admin)).json()).results.filter((role: { name: string }) => role.name === 'admin');
    expect((await jsonRequest(server, 'DELETE', `/roles/${adminRole.id}/permissions`, admin, { permission_ids: [permissionIds['audit:read']] })).status).to.equal(403);
  });

  it('answers 404 for a role of another organization, 403 for an agent, 422 for bad input', async () => {
    const [foreign] = (await (await jsonRequest(server, 'GET', '/roles', other.token)).json()).results;
    expect((await jsonRequest(server, 'GET', `/roles/${foreign.id}`, admin)).status).to.equal(404);
    expect((await jsonRequest(server, 'PATCH', `/roles/${foreign.id}`, admin, { description: 'x' })).status).to.equal(404);
    expect((await jsonRequest(server, 'DELETE', `/roles/${foreign.id}`, admin)).status).to.equal(404);
    expect((await jsonRequest(server, 'POST', `/roles/${foreign.id}/permissions`, admin, { permission_ids: [permissionIds['audit:read']] })).status).to.equal(404);
    expect((await jsonRequest(server, 'POST', '/roles', agent, { name: 'x_role' })).status).to.equal(403);
    expect((await jsonRequest(server, 'POST', '/roles', admin, { name: 'Bad\u0007Name' })).status).to.equal(422);
    expect((await jsonRequest(server, 'POST', '/roles', admin, {})).status).to.equal(422);
    expect((await jsonRequest(server, 'POST', '/roles', admin, { name: 'x', description: 'd'.repeat(501) })).status).to.equal(422);
    expect((await jsonRequest(server, 'POST', '/roles', admin, { name: 'x', permission_ids: [crypto.randomUUID()] })).status).to.equal(404);
    expect((await jsonRequest(server, 'GET', `/roles/${crypto.randomUUID()}`, admin)).status).to.equal(404);
  });

  it('lets everyone read permissions, grouped by resource', async () => {
    const guest = (await loginAs(server, 'guest1@demo.example')).access_token;
    const grouped = await (await jsonRequest(server, 'GET', '/permissions/grouped', guest)).json();
    expect(grouped.customers.map((permission: { action: string }) => permission.action)).to.include.members(['read', 'create', 'update', 'delete']);
    const list = await (await jsonRequest(server, 'GET', '/permissions?resource=audit', guest)).json();
    expect(list.count).to.equal(1);
  });

  it('lets only a super admin write permissions; built-in ones stay', async () => {
    expect((await jsonRequest(server, 'POST', '/permissions', admin, { name: 'reports:read' })).status).to.equal(403);
    const created = await jsonRequest(server, 'POST', '/permissions', root, { name: 'reports:read', description: 'Read reports' });
    expect(created.status).to.equal(201);
    const permission = await created.json();
    expect(permission).to.include({ resource: 'reports', action: 'read', is_builtin: false });
    expect((await jsonRequest(server, 'POST', '/permissions', root, { name: 'reports:read' })).status).to.equal(409);
    expect((await jsonRequest(server, 'POST', '/permissions', root, { name: 'not a permission' })).status).to.equal(422);
    expect((await jsonRequest(server, 'PATCH', `/permissions/${permission.id}`, root, { description: 'Reports' })).status).to.equal(200);
    expect((await jsonRequest(server, 'DELETE', `/permissions/${permissionIds['audit:read']}`, root)).status).to.equal(409);
    expect((await jsonRequest(server, 'DELETE', `/permissions/${permission.id}`, root)).status).to.equal(204);
    expect((await jsonRequest(server, 'GET', `/permissions/${permission.id}`, root)).status).to.equal(404);
  });

  it('records an audit row for each RBAC write, and none for a refused one', async () => {
    const rows = await server.deps.orm.em.getConnection().execute(`select action, count(*)::int as n from audit_log where resource in ('role', 'permission') group by action`);
    const counts = Object.fromEntries(rows.map((row) => [String(row.action), Number(row.n)]));
    expect(counts['role.create']).to.equal(1);
    expect(counts['permission.create']).to.equal(1);
    expect(counts['permission.delete']).to.equal(1);
  });
});
