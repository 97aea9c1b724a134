// PUT beside PATCH on organizations, roles, permissions, locations, users and your own profile,
// with the bodies seed 004 (and seed 000) send: a full replacement whose required fields are
// those of a create.
import { expect } from 'chai';

import { createOtherOrganization, jsonRequest, ROOT_PASSWORD } from '../support/admin.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { loginAs, seedDemoUsers } from '../support/users.ts';

describe('PUT on organizations, roles, permissions, locations, users and /me', () => {
  let server: TestServer;
  let root: string;
  let admin: string;
  let other: { adminId: string; token: string };

  const auditActions = async (resourceId: string) => (await server.deps.orm.em.getConnection()
    .execute('select action from audit_log where resource_id = ? order by occurred_at, action', [resourceId])).map((row) => String(row.action));
  const put = (path: string, token: string, body: unknown) => jsonRequest(server, 'PUT', path, token, body);
  const problemPaths = async (response: Response) => {
    expect(response.status).to.equal(422);
    return ((await response.json()) as { errors: { path: string[] }[] }).errors.map((error) => error.path);
  };

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    admin = (await loginAs(server, 'admin1@demo.example')).access_token;
    other = await createOtherOrganization(server);
  });
  after(async () => { await server.close(); });

  it('replaces an organization with seed 004\'s body, clearing what it leaves out and keeping the slug', async () => {
    const created = await (await jsonRequest(server, 'POST', '/organizations', root, {
      name: 'Test Organization', slug: 'test-org', description: 'A test organization', max_users: 100,
    })).json();
    const response = await put(`/organizations/${created.id}`, root, { name: 'Updated Organization Name', description: 'Updated description', is_active: true });
    expect(response.status, await response.clone().text()).to.equal(200);
    expect(await response.json()).to.include({ slug: 'test-org', name: 'Updated Organization Name', description: 'Updated description', max_users: null, is_active: true });
    expect(await auditActions(created.id)).to.deep.equal(['organization.create', 'organization.update']);
    // The required field of a create, and nothing that is not the organization's.
    expect((await put(`/organizations/${created.id}`, root, { description: 'no name' })).status).to.equal(422);
    expect((await put(`/organizations/${created.id}`, root, { name: 'X', slug: 'renamed' })).status).to.equal(422);
    // Org admins do not write organizations; a missing one is 404.
    expect((await put(`/organizations/${created.id}`, admin, { name: 'Mine now' })).status).to.equal(403);
    expect((await put(`/organizations/${crypto.randomUUID()}`, root, { name: 'Nobody' })).status).to.equal(404);
    // is_active left out is kept, even on a disabled organization.
    await jsonRequest(server, 'PATCH', `/organizations/${created.id}`, root, { is_active: false });
    expect(await (await put(`/organizations/${created.id}`, root, { name: 'Still off' })).json()).to.include({ is_active: false });
  });

  it('replaces a role with seed 004\'s body; built-in roles keep their names and stay on', async () => {
    const role = await (await jsonRequest(server, 'POST', '/roles', admin, { name: 'Manager', description: 'Manager role with specific permissions', is_active: true })).json();
    const response = await put(`/roles/${role.id}`, admin, { name: 'Updated Manager', description: 'Updated role description', is_active: true });
    expect(response.status, await response.clone().text()).to.equal(200);
    expect(await response.json()).to.include({ key: 'manager', name: 'Updated Manager', description: 'Updated role description', is_active: true });
    expect(await (await put(`/roles/${role.id}`, admin, { name: 'Updated Manager' })).json()).to.include({ description: null, is_active: true });
    expect(await auditActions(role.id)).to.deep.equal(['role.create', 'role.update', 'role.update']);
    expect((await put(`/roles/${role.id}`, admin, { description: 'no name' })).status).to.equal(422);
    expect((await put(`/roles/${role.id}`, admin, { name: 'guest' })).status).to.equal(409);
    expect((await put(`/roles/${role.id}`, other.token, { name: 'Taken over' })).status).to.equal(404);

    const guest = (await (await jsonRequest(server, 'GET', '/roles?search=guest', admin)).json()).results[0];
    expect((await put(`/roles/${guest.id}`, admin, { name: 'guest', description: 'Visitors' })).status).to.equal(200);
    expect((await put(`/roles/${guest.id}`, admin, { name: 'Visitor' })).status).to.equal(409);
    expect((await put(`/roles/${guest.id}`, admin, { name: 'guest', is_active: false })).status).to.equal(409);
  });

  it('replaces a permission with seed 004\'s body; built-in ones keep their names', async () => {
    const permission = await (await jsonRequest(server, 'POST', '/permissions', root, {
      name: 'user:create', description: 'Create users', resource: 'user', action: 'create',
    })).json();
    const response = await put(`/permissions/${permission.id}`, root, { name: 'user:update', description: 'Update users', resource: 'user', action: 'update' });
    expect(response.status, await response.clone().text()).to.equal(200);
    expect(await response.json()).to.include({ name: 'user:update', resource: 'user', action: 'update', description: 'Update users' });
    expect(await (await put(`/permissions/${permission.id}`, root, { resource: 'user', action: 'edit' })).json()).to.include({ name: 'user:edit', description: null });
    expect(await auditActions(permission.id)).to.deep.equal(['permission.create', 'permission.update', 'permission.update']);
    expect((await put(`/permissions/${permission.id}`, root, { description: 'no name' })).status).to.equal(422);
    expect((await put(`/permissions/${permission.id}`, root, { name: 'user:edit', action: 'update' })).status).to.equal(422);
    expect((await put(`/permissions/${permission.id}`, admin, { name: 'user:mine' })).status).to.equal(403);
    const builtin = (await (await jsonRequest(server, 'GET', '/permissions?resource=audit', root)).json()).results[0];
    expect((await put(`/permissions/${builtin.id}`, root, { name: 'audit:read', description: 'Read the trail' })).status).to.equal(200);
    expect((await put(`/permissions/${builtin.id}`, root, { name: 'audit:view' })).status).to.equal(409);
  });

  it('replaces a location with seed 004\'s body, keeping its code, clearing what it leaves out', async () => {
    const location = await (await jsonRequest(server, 'POST', '/locations', admin, {
      name: 'Main Office', code: 'MAIN-001', description: 'Main office location', address: '123 Business Street',
      city: 'New York', state: 'NY', country: 'USA', postal_code: '10001',
    })).json();
    const response = await put(`/locations/${location.id}`, admin, {
      name: 'Updated Main Office', description: 'Updated main office location', address: '456 Updated Business Street',
      city: 'New York', state: 'NY', country: 'USA', postal_code: '10002', is_active: true,
    });
    expect(response.status, await response.clone().text()).to.equal(200);
    expect(await response.json()).to.include({
      name: 'Updated Main Office', code: 'MAIN-001', address: '456 Updated Business Street', postal_code: '10002', is_active: true,
    });
    const bare = await (await put(`/locations/${location.id}`, admin, { name: 'Bare', code: 'MAIN-002' })).json();
    expect(bare).to.include({ name: 'Bare', code: 'MAIN-002', description: null, address: null, city: null, state: null, country: null, postal_code: null, is_active: true });
    expect(await auditActions(location.id)).to.deep.equal(['location.create', 'location.update', 'location.update']);
    expect((await put(`/locations/${location.id}`, admin, { city: 'no name' })).status).to.equal(422);
    expect((await put(`/locations/${location.id}`, admin, { name: 'X', organization_id: crypto.randomUUID() })).status).to.equal(422);
    expect((await put(`/locations/${location.id}`, other.token, { name: 'Taken over' })).status).to.equal(404);
    const agent = (await loginAs(server, 'agent1@demo.example')).access_token;
    expect((await put(`/locations/${location.id}`, agent, { name: 'Agent was here' })).status).to.equal(403);
  });

  it('replaces a user with seed 004\'s body: names and username as given, profile cleared, email kept, through PATCH\'s rules', async () => {
    const created = await (await jsonRequest(server, 'POST', '/users', admin, {
      email: 'put.me@demo.example', full_name: 'Put Me', password: 'A-long-enough-password-1', industry: 'Retail', contact_phone: '+1 555 0100',
    })).json();
    const id = created.user.id as string;
    await jsonRequest(server, 'PATCH', `/users/${id}`, admin, { is_verified: false, is_active: false });
    // Seed 004's body, as printed.
    const response = await put(`/users/${id}`, admin, { username: 'updateduser', first_name: 'Updated', last_name: 'User', is_active: true, is_verified: true });
    expect(response.status, await response.clone().text()).to.equal(200);
    expect(await response.json()).to.include({
      email: 'put.me@demo.example', username: 'updateduser', first_name: 'Updated', last_name: 'User', full_name: 'Updated User',
      is_active: true, is_verified: true, industry: null, contact_phone: null,
    }).and.nested.include({ 'organization.slug': 'demo' });
    // is_active went through POST /enable's rules and audit, in the same request as the update
    // (the user, created unverified, was mailed a verification link).
    expect(await auditActions(id)).to.deep.equal(['user.create', 'user.verification_sent', 'user.disable', 'user.update', 'user.enable', 'user.update']);
    expect((await loginAs(server, 'put.me@demo.example', 'A-long-enough-password-1')).user.id).to.equal(id);

    // Seed 000 names users by full_name; status and verification left out are kept, the username too.
    await jsonRequest(server, 'PATCH', `/users/${id}`, admin, { is_active: false });
    const renamed = await (await put(`/users/${id}`, admin, { full_name: 'John Doe', contact_name: 'Reception' })).json();
    expect(renamed).to.include({ first_name: 'John', last_name: 'Doe', username: 'updateduser', is_active: false, is_verified: true, contact_name: 'Reception' });
    // No name at all: named as on create, from the contact name.
    expect(await (await put(`/users/${id}`, admin, { contact_name: 'Grace Brewster Hopper' })).json())
      .to.include({ first_name: 'Grace', last_name: 'Brewster Hopper', contact_name: 'Grace Brewster Hopper' });
  });

  it('refuses a user PUT that PATCH would refuse: self-disable, names twice, unknown fields, taken usernames, other organizations', async () => {
    const self = (await loginAs(server, 'admin1@demo.example')).user.id;
    const refused = await put(`/users/${self}`, admin, { first_name: 'Ada', last_name: 'Admin', is_active: false });
    expect(refused.status).to.equal(403);
    expect((await (await jsonRequest(server, 'GET', `/users/${self}`, admin)).json()).is_active).to.equal(true);
    expect((await put(`/users/${self}`, admin, { first_name: 'Ada', last_name: 'Admin', is_active: true })).status).to.equal(200);

    const agent = (await (await jsonRequest(server, 'GET', '/users?search=agent1', admin)).json()).results[0];
    expect((await put(`/users/${agent.id}`, admin, { full_name: 'Al Agent', first_name: 'Al' })).status).to.equal(422);
    expect((await put(`/users/${agent.id}`, admin, { full_name: 'Al Agent', role: 'admin' })).status).to.equal(422);
    expect((await put(`/users/${agent.id}`, admin, { full_name: 'Al Agent', username: 'admin1' })).status).to.equal(409);
    expect((await put(`/users/${agent.id}`, other.token, { full_name: 'Taken Over' })).status).to.equal(404);
    const agentToken = (await loginAs(server, 'agent1@demo.example')).access_token;
    expect((await put(`/users/${agent.id}`, agentToken, { full_name: 'Al Agent' })).status).to.equal(403);
    // Disabling by PUT ends the user's tokens at once, as POST /disable does.
    expect((await put(`/users/${agent.id}`, admin, { full_name: 'Al Agent', is_active: false })).status).to.equal(200);
    expect((await jsonRequest(server, 'GET', '/me', agentToken)).status).to.equal(401);
  });

  it('replaces your own profile at PUT /me with seed 004\'s body, keeping email, clearing the profile fields left out', async () => {
    const token = (await loginAs(server, 'premium1@demo.example')).access_token;
    await jsonRequest(server, 'PATCH', '/me', token, { industry: 'Logistics', use_case: 'Tracking' });
    const response = await put('/me', token, { username: 'updatedusername', first_name: 'Updated', last_name: 'Name' });
    expect(response.status, await response.clone().text()).to.equal(200);
    const profile = await response.json();
    expect(profile).to.include({
      email: 'premium1@demo.example', username: 'updatedusername', full_name: 'Updated Name', industry: null, use_case: null, is_active: true,
    });
    expect(profile.roles).to.deep.equal(['premium_user']);
    expect(await auditActions(profile.id)).to.include('user.profile_update');
    // Not a profile field: your status and roles are not yours to PUT.
    expect((await put('/me', token, { full_name: 'Pia Premium', is_active: false })).status).to.equal(422);
    expect((await put('/me', token, { full_name: 'Pia Premium', first_name: 'Pia' })).status).to.equal(422);
    expect((await put('/me', token, { full_name: 'Pia Premium', username: 'admin1' })).status).to.equal(409);
    // A name is required, as at registration.
    expect(await problemPaths(await put('/me', token, { contact_name: 'Pia Premium' }))).to.deep.equal([['body', 'full_name']]);
    expect(await problemPaths(await put('/me', token, { first_name: 'Pia' }))).to.deep.equal([['body', 'full_name']]);
    expect(await (await jsonRequest(server, 'GET', '/me', token)).json()).to.include({ username: 'updatedusername', full_name: 'Updated Name' });
  });

  it('replaces a CRM customer with seed 003\'s body (its PUT takes the create body, "all fields required")', async () => {
    const seed003 = { first_name: 'Jane', last_name: 'Smith', email: 'jane.smith@example.com', company: 'Tech Solutions', stage: 'LEAD' };
    const customer = await (await jsonRequest(server, 'POST', '/customers', admin, { ...seed003, phone: '+1234567890', notes: 'Interested' })).json();
    const response = await put(`/customers/${customer.id}`, admin, { ...seed003, company: 'Tech Solutions Ltd' });
    expect(response.status, await response.clone().text()).to.equal(200);
    expect(await response.json()).to.include({ first_name: 'Jane', company: 'Tech Solutions Ltd', stage: 'LEAD', phone: null, notes: null });
  });
});
