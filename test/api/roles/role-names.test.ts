import { expect } from 'chai';

import { createOtherOrganization, jsonRequest, ROOT_PASSWORD } from '../../support/admin.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { loginAs, seedDemoUsers } from '../../support/users.ts';

interface Role { id: string; key: string; name: string; permissions: string[] }

describe('role names as people write them, with stable keys beside them', () => {
  let server: TestServer;
  let admin: string;
  let other: { adminId: string; token: string };
  let manager: Role;

  const userIdOf = async (email: string) => String((await server.deps.orm.em.getConnection().execute('select id from app_user where email = ?', [email]))[0]!.id);
  const permissionId = async (name: string) => String((await server.deps.orm.em.getConnection().execute('select id from permission where name = ?', [name]))[0]!.id);

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    admin = (await loginAs(server, 'admin1@demo.example')).access_token;
    other = await createOtherOrganization(server);
  });
  after(async () => { await server.close(); });

  it('creates seed 004\'s "Manager" role with a key made from its name', async () => {
    const response = await jsonRequest(server, 'POST', '/roles', admin, {
      name: 'Manager', description: 'Manager role with specific permissions', is_active: true,
    });
    expect(response.status, await response.clone().text()).to.equal(201);
    manager = await response.json();
    expect(manager).to.include({ name: 'Manager', key: 'manager', is_builtin: false, is_active: true });
    const builtin = (await (await jsonRequest(server, 'GET', '/roles?search=guest', admin)).json()).results[0];
    expect(builtin).to.include({ key: 'guest', name: 'guest', is_builtin: true });
  });

  it('renames it to "Updated Manager" and keeps its key, so its holders\' tokens keep working', async () => {
    await jsonRequest(server, 'POST', `/roles/${manager.id}/permissions`, admin, { permission_ids: [await permissionId('users:read')] });
    const agentId = await userIdOf('agent2@demo.example');
    const given = await jsonRequest(server, 'POST', `/users/${agentId}/roles`, admin, { role_ids: [manager.id] });
    expect((await given.json()).roles).to.include('manager');
    const token = (await loginAs(server, 'agent2@demo.example')).access_token;
    expect((await jsonRequest(server, 'GET', '/users', token)).status).to.equal(200);

    const renamed = await jsonRequest(server, 'PATCH', `/roles/${manager.id}`, admin, { name: 'Updated Manager', description: 'Updated role description', is_active: true });
    expect(renamed.status, await renamed.clone().text()).to.equal(200);
    expect(await renamed.json()).to.include({ name: 'Updated Manager', key: 'manager' });
    expect((await jsonRequest(server, 'GET', '/users', token)).status).to.equal(200);
    expect((await (await jsonRequest(server, 'GET', `/users/${agentId}`, admin)).json()).roles).to.include('manager');
    await jsonRequest(server, 'DELETE', `/users/${agentId}/roles`, admin, { role_ids: [manager.id] });
  });

  it('keeps names unique in an organization whatever their case, and apart from other roles\' keys', async () => {
    for (const name of ['updated manager', 'UPDATED MANAGER', 'Admin', 'GUEST', 'manager', 'Super_Admin']) {
      const response = await jsonRequest(server, 'POST', '/roles', admin, { name });
      expect(response.status, name).to.equal(409);
      expect((await response.json()).code, name).to.equal('role.name_taken');
    }
    for (const key of ['admin', 'super_admin', 'manager']) {
      const response = await jsonRequest(server, 'POST', '/roles', admin, { name: `Another ${key}`, key });
      expect(response.status, key).to.equal(409);
      expect((await response.json()).code, key).to.equal('role.key_taken');
    }
    const renamed = await jsonRequest(server, 'PATCH', `/roles/${manager.id}`, admin, { name: 'Backoffice' });
    expect(renamed.status).to.equal(409);
    // Another organization has its own namespace.
    expect((await jsonRequest(server, 'POST', '/roles', other.token, { name: 'Updated Manager' })).status).to.equal(201);
    // A role whose made-up key is taken gets the next free one; a key may also be given.
    const second = await (await jsonRequest(server, 'POST', '/roles', admin, { name: 'Manager!' })).json();
    expect(second).to.include({ name: 'Manager!', key: 'manager_2' });
    const explicit = await (await jsonRequest(server, 'POST', '/roles', admin, { name: 'Night Shift (EU)', key: 'night_eu' })).json();
    expect(explicit).to.include({ name: 'Night Shift (EU)', key: 'night_eu' });
    const made = await (await jsonRequest(server, 'POST', '/roles', admin, { name: '2nd Line Support' })).json();
    expect(made.key).to.equal('role_2nd_line_support');
    expect((await jsonRequest(server, 'POST', '/roles', admin, { name: 'x', key: 'Not A Key' })).status).to.equal(422);
    expect((await jsonRequest(server, 'POST', '/roles', admin, { name: '   ' })).status).to.equal(422);
  });

  it('finds a role by its name in any case, or by its key, when creating, promoting and filtering users', async () => {
    // Seed 002 names the built-in guest role "Guest".
    const guest = await jsonRequest(server, 'POST', '/users', admin, { email: 'guest.case@demo.example', first_name: 'Alice', last_name: 'Brown', role: 'Guest' });
    expect(guest.status, await guest.clone().text()).to.equal(201);
    const { user } = await guest.json();
    expect(user.roles).to.deep.equal(['guest']);
    const promoted = await jsonRequest(server, 'POST', `/users/${user.id}/promote`, admin, { role: 'updated MANAGER' });
    expect(promoted.status, await promoted.clone().text()).to.equal(200);
    expect((await promoted.json()).roles).to.deep.equal(['manager']);
    expect((await jsonRequest(server, 'POST', `/users/${user.id}/promote`, admin, { role: 'manager' })).status).to.equal(200);
    const listed = await (await jsonRequest(server, 'GET', '/users?role=Updated%20Manager', admin)).json();
    expect(listed.results.map((row: { id: string }) => row.id)).to.deep.equal([user.id]);
    expect((await (await jsonRequest(server, 'GET', '/users?role=MANAGER', admin)).json()).count).to.equal(1);
    // Roles of another organization are not found by name, and the rules on granting stay.
    expect((await jsonRequest(server, 'POST', '/users', other.token, { email: 'x@other.example', first_name: 'A', last_name: 'B', role: 'Manager!' })).status).to.equal(422);
    expect((await jsonRequest(server, 'POST', '/users', admin, { email: 'y@demo.example', first_name: 'A', last_name: 'B', role: 'Super_Admin' })).status).to.equal(403);
  });

  it('audits role creation with the key and the name', async () => {
    const [row] = await server.deps.orm.em.getConnection().execute(`select details from audit_log where action = 'role.create' and resource_id = ?`, [manager.id]);
    expect(row!.details).to.include({ key: 'manager', name: 'Manager' });
  });
});
