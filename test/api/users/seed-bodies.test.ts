// The user bodies the seeds send: seed 002's contact and profile fields, full_name (seed 000),
// is_active and is_verified in an admin update (seed 004), and organization_id at registration.
import { expect } from 'chai';

import { createOtherOrganization, jsonRequest, ROOT_PASSWORD } from '../../support/admin.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { callApi } from '../../support/oauth.ts';
import { loginAs, postJson, seedDemoUsers } from '../../support/users.ts';

interface Problem { errors?: { path: (string | number)[] }[] }

const STRONG_PASSWORD = 'lantern-orbit-quartz-71';

// Seed 002, "Create a User", as printed.
const SEED_002_USER = {
  email: 'alice.brown@guestai.com',
  organisation: 'AI Guest Research',
  contact_name: 'Alice Brown',
  contact_phone: '+27 777 111 222',
  contact_email: 'alice.brown@guestai.com',
  address: '101 AI Lane, Cape Town',
  industry: 'AI Research',
  use_case: 'Exploring AI trends',
  role: 'Guest',
};

describe('user bodies of the seeds', () => {
  let server: TestServer;
  let admin: string;
  let adminId: string;
  let other: { adminId: string; token: string };

  const sql = async (text: string, params: unknown[] = []) => server.deps.orm.em.getConnection().execute(text, params);
  const idOf = async (email: string) => String((await sql('select id from app_user where email = ?', [email]))[0]!.id);
  const auditActions = async (userId: string) => (await sql(`select action from audit_log where target_id = ? and action like 'user.%' order by occurred_at`, [userId])).map((row) => String(row.action));

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    admin = (await loginAs(server, 'admin1@demo.example')).access_token;
    adminId = await idOf('admin1@demo.example');
    other = await createOtherOrganization(server);
  });
  after(async () => { await server.close(); });

  describe('seed 002: a user created with contact and profile fields, named only by contact_name', () => {
    let alice: { id: string };

    it('creates the user, named after the contact, with the Guest role and a temporary password', async () => {
      const response = await jsonRequest(server, 'POST', '/users', admin, SEED_002_USER);
      expect(response.status, await response.clone().text()).to.equal(201);
      const body = await response.json();
      alice = body.user;
      expect(body.temporary_password).to.be.a('string');
      expect(body.user).to.include({
        email: 'alice.brown@guestai.com', first_name: 'Alice', last_name: 'Brown', full_name: 'Alice Brown',
        organisation: 'AI Guest Research', contact_name: 'Alice Brown', contact_phone: '+27 777 111 222',
        contact_email: 'alice.brown@guestai.com', address: '101 AI Lane, Cape Town', industry: 'AI Research', use_case: 'Exploring AI trends',
      });
      expect(body.user.roles).to.deep.equal(['guest']);
      expect(body.user.organization.slug).to.equal('demo');
    });

    it('returns the profile fields in every user view and finds the user by them', async () => {
      expect(await (await jsonRequest(server, 'GET', `/users/${alice.id}`, admin)).json()).to.include({ organisation: 'AI Guest Research', industry: 'AI Research' });
      for (const search of ['Guest Research', 'AI Research', 'alice.brown@guestai']) {
        const found = await (await jsonRequest(server, 'GET', `/users?search=${encodeURIComponent(search)}`, admin)).json();
        expect(found.results.map((user: { id: string }) => user.id), search).to.include(alice.id);
      }
      const people = await (await jsonRequest(server, 'GET', '/users?search=Guest%20Research', other.token)).json();
      expect(people.count).to.equal(0);
    });

    it('changes and clears profile fields through PATCH, and refuses malformed ones with 422', async () => {
      const changed = await jsonRequest(server, 'PATCH', `/users/${alice.id}`, admin, { industry: 'Robotics', use_case: null, address: '' });
      expect(changed.status).to.equal(200);
      expect(await changed.json()).to.include({ industry: 'Robotics', use_case: null, address: null, organisation: 'AI Guest Research' });
      for (const [body, field] of [[{ contact_phone: 'call me' }, 'contact_phone'], [{ contact_email: 'nobody' }, 'contact_email'], [{ organisation: 'x'.repeat(201) }, 'organisation']] as const) {
        const response = await jsonRequest(server, 'PATCH', `/users/${alice.id}`, admin, body);
        expect(response.status, field).to.equal(422);
        expect(((await response.json()) as Problem).errors?.[0]?.path).to.deep.equal(['body', field]);
      }
    });
  });

  describe('full_name wherever first and last names are taken (seed 000)', () => {
    it('creates and renames users by full_name, and refuses a full_name with its parts', async () => {
      const created = await jsonRequest(server, 'POST', '/users', admin, { email: 'john.doe@demo.example', full_name: 'John Doe' });
      expect(created.status, await created.clone().text()).to.equal(201);
      const { user } = await created.json();
      expect(user).to.include({ first_name: 'John', last_name: 'Doe', full_name: 'John Doe' });
      const renamed = await jsonRequest(server, 'PATCH', `/users/${user.id}`, admin, { full_name: 'Ada King Lovelace' });
      expect(await renamed.json()).to.include({ first_name: 'Ada', last_name: 'King Lovelace', full_name: 'Ada King Lovelace' });
      const both = await jsonRequest(server, 'PATCH', `/users/${user.id}`, admin, { full_name: 'Ada Byron', first_name: 'Augusta' });
      expect(both.status).to.equal(422);
      expect(((await both.json()) as Problem).errors?.[0]?.path).to.deep.equal(['body', 'full_name']);
      expect((await jsonRequest(server, 'PATCH', `/users/${user.id}`, admin, { full_name: 'x'.repeat(101) })).status).to.equal(422);
    });

    it('lets a user rename themselves and fill their profile through PATCH /me, but not their status', async () => {
      const { access_token: token } = await loginAs(server, 'agent2@demo.example');
      const patch = (body: unknown) => callApi(server, '/me', token, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const response = await patch({ full_name: 'Agnes Two', contact_phone: '+1 (555) 010-2000', organisation: 'Field Sales' });
      expect(response.status, await response.clone().text()).to.equal(200);
      expect(await response.json()).to.include({ first_name: 'Agnes', last_name: 'Two', contact_phone: '+1 (555) 010-2000', organisation: 'Field Sales' });
      for (const body of [{ is_active: true }, { is_verified: true }, { full_name: 'A B', last_name: 'C' }]) {
        expect((await patch(body)).status, JSON.stringify(body)).to.equal(422);
      }
    });
  });

  describe('seed 004: is_active and is_verified in an admin update', () => {
    let targetId: string;

    before(async () => {
      targetId = await idOf('premium1@demo.example');
      await sql('update app_user set is_verified = false where id = ?', [targetId]);
    });

    it('takes seed 004\'s update body', async () => {
      const response = await jsonRequest(server, 'PATCH', `/users/${targetId}`, admin, {
        username: 'updateduser', first_name: 'Updated', last_name: 'User', is_active: true, is_verified: true,
      });
      expect(response.status, await response.clone().text()).to.equal(200);
      expect(await response.json()).to.include({ username: 'updateduser', full_name: 'Updated User', is_active: true, is_verified: true });
      // is_active repeated the status: no enable row, only the update.
      expect(await auditActions(targetId)).to.deep.equal(['user.update']);
    });

    it('disables and enables through is_active with the rules and audit rows of /disable and /enable', async () => {
      const { access_token: token } = await loginAs(server, 'premium1@demo.example');
      expect((await jsonRequest(server, 'GET', '/me', token)).status).to.equal(200);
      const disabled = await jsonRequest(server, 'PATCH', `/users/${targetId}`, admin, { is_active: false });
      expect(disabled.status).to.equal(200);
      expect(await disabled.json()).to.include({ is_active: false });
      expect((await jsonRequest(server, 'GET', '/me', token)).status).to.equal(401);
      const enabled = await jsonRequest(server, 'PATCH', `/users/${targetId}`, admin, { is_active: true, is_verified: false });
      expect(await enabled.json()).to.include({ is_active: true, is_verified: false });
      expect(await auditActions(targetId)).to.deep.equal(['user.update', 'user.disable', 'user.update', 'user.enable', 'user.update']);
    });

    it('refuses to let anyone disable themselves (403), changing nothing', async () => {
      const response = await jsonRequest(server, 'PATCH', `/users/${adminId}`, admin, { is_active: false, first_name: 'Changed' });
      expect(response.status).to.equal(403);
      const [row] = await sql('select is_active, first_name from app_user where id = ?', [adminId]);
      expect(row).to.include({ is_active: true });
      expect(row!.first_name).to.not.equal('Changed');
      expect(await auditActions(adminId)).to.not.include('user.update');
      // Repeating one's own status is no change of it.
      expect((await jsonRequest(server, 'PATCH', `/users/${adminId}`, admin, { is_active: true })).status).to.equal(200);
    });

    it('keeps is_active and is_verified to admins of the user\'s organization', async () => {
      const agent = (await loginAs(server, 'agent1@demo.example')).access_token;
      expect((await jsonRequest(server, 'PATCH', `/users/${targetId}`, agent, { is_verified: true })).status).to.equal(403);
      expect((await jsonRequest(server, 'PATCH', `/users/${targetId}`, other.token, { is_active: false })).status).to.equal(404);
      const root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
      const rootId = await idOf('root@example.com');
      // The super admin lives in another organization than the demo admin; and disables nobody as themselves.
      expect((await jsonRequest(server, 'PATCH', `/users/${rootId}`, admin, { is_active: false })).status).to.equal(404);
      expect((await jsonRequest(server, 'PATCH', `/users/${rootId}`, root, { is_active: false })).status).to.equal(403);
    });
  });

  describe('registration with organization_id (seed 004)', () => {
    let demoId: string;

    before(async () => {
      demoId = String((await sql(`select id from organization where slug = 'demo'`))[0]!.id);
    });

    it('registers into the organization named by id, with profile fields', async () => {
      const response = await postJson(server, '/auth/register', {
        email: 'user@example.com', username: 'testuser', password: STRONG_PASSWORD, first_name: 'Test', last_name: 'User', organization_id: demoId,
        industry: 'Testing',
      });
      expect(response.status, await response.clone().text()).to.equal(201);
      const { user } = await response.json();
      expect(user.organization).to.include({ id: demoId, slug: 'demo' });
      expect(user).to.include({ username: 'testuser', full_name: 'Test User', industry: 'Testing' });
      expect(user.roles).to.deep.equal(['basic_user']);
    });

    it('answers 422 for an unknown organization id, or a slug naming another organization', async () => {
      const unknown = await postJson(server, '/auth/register', { email: 'u2@example.com', password: STRONG_PASSWORD, full_name: 'U Two', organization_id: crypto.randomUUID() });
      expect(unknown.status).to.equal(422);
      expect(((await unknown.json()) as Problem).errors?.[0]?.path).to.deep.equal(['body', 'organization_id']);
      const mismatch = await postJson(server, '/auth/register', { email: 'u3@example.com', password: STRONG_PASSWORD, full_name: 'U Three', organization_id: demoId, organization_slug: 'other' });
      expect(mismatch.status).to.equal(422);
      expect(((await mismatch.json()) as Problem).errors?.[0]?.path).to.deep.equal(['body', 'organization_slug']);
      const agreeing = await postJson(server, '/auth/register', { email: 'u4@example.com', password: STRONG_PASSWORD, full_name: 'U Four', organization_id: demoId, organization_slug: 'demo' });
      expect(agreeing.status).to.equal(201);
      const [row] = await sql(`select count(*)::int as n from app_user where email in ('u2@example.com', 'u3@example.com')`);
      expect(row!.n).to.equal(0);
    });
  });
});
