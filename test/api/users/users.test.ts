import { expect } from 'chai';

import { AppError } from '../../../src/platform/errors.ts';
import { createAdministrator } from '../../../src/services/bootstrap.service.ts';
import { createOtherOrganization, jsonRequest, ROOT_PASSWORD } from '../../support/admin.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { basicAuth, callApi, postForm } from '../../support/oauth.ts';
import { DEMO_PASSWORD, login, loginAs, seedDemoUsers } from '../../support/users.ts';

describe('/api/v1/users (administration)', () => {
  let server: TestServer;
  let admin: string;
  let agent: string;
  let root: string;
  let other: { adminId: string; token: string };
  const ids: Record<string, string> = {};

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    for (const user of await seedDemoUsers(server)) ids[user.username] = (await server.deps.orm.em.getConnection().execute(`select id from app_user where email = '${user.email}'`))[0]!.id;
    admin = (await loginAs(server, 'admin1@demo.example')).access_token;
    agent = (await loginAs(server, 'agent1@demo.example')).access_token;
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    other = await createOtherOrganization(server);
  });
  after(async () => { await server.close(); });

  describe('GET /users', () => {
    it('lists only the caller\'s organization, with filters and paging', async () => {
      const all = await (await jsonRequest(server, 'GET', '/users', admin)).json();
      expect(all.count).to.equal(7);
      expect(all.results.every((user: { organization: { slug: string } }) => user.organization.slug === 'demo')).to.equal(true);
      expect((await (await jsonRequest(server, 'GET', '/users?role=agent', admin)).json()).count).to.equal(2);
      expect((await (await jsonRequest(server, 'GET', '/users?search=premium', admin)).json()).count).to.equal(1);
      const paged = await (await jsonRequest(server, 'GET', '/users?page_size=3&page=2', admin)).json();
      expect(paged.results).to.have.length(3);
      expect(paged.next).to.include('page=3');
      expect(paged.previous).to.include('page=1');
    });

    it('shows every organization to the super admin', async () => {
      expect((await (await jsonRequest(server, 'GET', '/users', root)).json()).count).to.be.at.least(9);
    });

    it('refuses an agent (403) and bad filters (422)', async () => {
      expect((await jsonRequest(server, 'GET', '/users', agent)).status).to.equal(403);
      expect((await jsonRequest(server, 'GET', '/users?is_active=maybe', admin)).status).to.equal(422);
      expect((await jsonRequest(server, 'GET', '/users?page_size=0', admin)).status).to.equal(422);
    });
  });

  describe('POST /users', () => {
    it('creates a user with a temporary password (shown once) and a personal client', async () => {
      const response = await jsonRequest(server, 'POST', '/users', admin, { email: 'hire@demo.example', first_name: 'New', last_name: 'Hire', role: 'agent', create_client: true });
      expect(response.status).to.equal(201);
      const body = await response.json();
      expect(body.user.roles).to.deep.equal(['agent']);
      expect(body.temporary_password).to.be.a('string');
      expect((await login(server, { email: 'hire@demo.example', password: body.temporary_password })).status).to.equal(200);
      const token = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials' }, { authorization: basicAuth(body.client.client_id, body.client.client_secret) });
      expect(token.status).to.equal(200);
      const audit = await server.deps.orm.em.getConnection().execute(`select count(*)::int as n from audit_log where action = 'user.create' and target_id = '${body.user.id}'`);
      expect(audit[0]!.n).to.equal(1);
    });

    it('refuses to grant a role above the caller\'s own', async () => {
      const response = await jsonRequest(server, 'POST', '/users', admin, { email: 'boss2@demo.example', first_name: 'A', last_name: 'B', role: 'super_admin' });
      expect(response.status).to.equal(403);
      const rows = await server.deps.orm.em.getConnection().execute(`select count(*)::int as n from app_user where email = 'boss2@demo.example'`);
      expect(rows[0]!.n).to.equal(0);
    });

    it('answers 409 for a taken email, 422 for bad input, 403 for an agent', async () => {
      expect((await jsonRequest(server, 'POST', '/users', admin, { email: 'agent2@demo.example', first_name: 'A', last_name: 'B' })).status).to.equal(409);
      expect((await jsonRequest(server, 'POST', '/users', admin, { first_name: 'A', last_name: 'B' })).status).to.equal(422);
      expect((await jsonRequest(server, 'POST', '/users', admin, { email: 'x@demo.example', first_name: 5, last_name: 'B' })).status).to.equal(422);
      expect((await jsonRequest(server, 'POST', '/users', admin, { email: 'x@demo.example', first_name: 'A'.repeat(101), last_name: 'B' })).status).to.equal(422);
      expect((await jsonRequest(server, 'POST', '/users', admin, { email: 'x@demo.example', first_name: 'A', last_name: 'B', role: 'no_such_role' })).status).to.equal(422);
      expect((await jsonRequest(server, 'POST', '/users', admin, { email: 'x@demo.example', first_name: 'A', last_name: 'B', password: 'password1234' })).status).to.equal(422);
      expect((await jsonRequest(server, 'POST', '/users', agent, { email: 'x@demo.example', first_name: 'A', last_name: 'B' })).status).to.equal(403);
    });
  });

  describe('one user', () => {
    it('reads and changes a user of the organization', async () => {
      expect((await jsonRequest(server, 'GET', `/users/${ids.basic1}`, admin)).status).to.equal(200);
      const patched = await jsonRequest(server, 'PATCH', `/users/${ids.basic1}`, admin, { first_name: 'Bob', is_verified: false });
      expect(patched.status).to.equal(200);
      expect(await patched.json()).to.include({ first_name: 'Bob', is_verified: false });
    });

    it('answers 404, never 403, for a user of another organization, on every id-taking route', async () => {
      const foreign = other.adminId;
      for (const [method, path, body] of [
        ['GET', `/users/${foreign}`], ['PATCH', `/users/${foreign}`, { first_name: 'X' }], ['DELETE', `/users/${foreign}`],
        ['POST', `/users/${foreign}/promote`, { role: 'guest' }], ['POST', `/users/${foreign}/enable`], ['POST', `/users/${foreign}/disable`],
        ['POST', `/users/${foreign}/reset-password`, {}], ['GET', `/users/${foreign}/clients`],
        ['POST', `/users/${foreign}/roles`, { role_ids: [foreign] }], ['DELETE', `/users/${foreign}/roles`, { role_ids: [foreign] }],
      ] as [string, string, unknown?][]) {
        const response = await jsonRequest(server, method, path, admin, body);
        expect(response.status, `${method} ${path}`).to.equal(404);
      }
      expect((await jsonRequest(server, 'GET', `/users/${crypto.randomUUID()}`, admin)).status).to.equal(404);
      expect((await jsonRequest(server, 'GET', '/users/not-a-uuid', admin)).status).to.equal(422);
    });

    it('lists a user\'s clients without secrets', async () => {
      const clients = await (await jsonRequest(server, 'GET', `/users/${other.adminId}/clients`, other.token)).json();
      expect(clients).to.have.length(1);
      expect(clients[0]).to.have.keys('client_id', 'client_name', 'kind', 'created_at', 'updated_at');
    });
  });

  describe('changes that end the user\'s tokens at the next call', () => {
    it('disable: the token issued before fails, sign-in fails; enable restores sign-in', async () => {
      const before = (await loginAs(server, 'agent2@demo.example')).access_token;
      expect((await jsonRequest(server, 'POST', `/users/${ids.agent2}/disable`, admin)).status).to.equal(200);
      expect((await callApi(server, '/me', before)).status).to.equal(401);
      expect((await login(server, { email: 'agent2@demo.example', password: DEMO_PASSWORD })).status).to.equal(401);
      expect((await jsonRequest(server, 'POST', `/users/${ids.agent2}/enable`, admin)).status).to.equal(200);
      expect((await login(server, { email: 'agent2@demo.example', password: DEMO_PASSWORD })).status).to.equal(200);
    });

    it('demote: the token issued before fails, a new one carries the new role', async () => {
      const before = (await loginAs(server, 'backoffice1@demo.example')).access_token;
      const response = await jsonRequest(server, 'POST', `/users/${ids.backoffice1}/promote`, admin, { role: 'basic_user' });
      expect(response.status).to.equal(200);
      expect((await response.json()).roles).to.deep.equal(['basic_user']);
      expect((await callApi(server, '/me', before)).status).to.equal(401);
      const after = (await loginAs(server, 'backoffice1@demo.example')).access_token;
      expect((await (await callApi(server, '/me', after)).json()).roles).to.deep.equal(['basic_user']);
      expect((await jsonRequest(server, 'GET', '/users', after)).status).to.equal(403);
    });

    it('reset-password: old tokens and password stop; the temporary one works', async () => {
      const before = (await loginAs(server, 'premium1@demo.example')).access_token;
      const response = await jsonRequest(server, 'POST', `/users/${ids.premium1}/reset-password`, admin, {});
      const { temporary_password: temporary } = await response.json();
      expect((await callApi(server, '/me', before)).status).to.equal(401);
      expect((await login(server, { email: 'premium1@demo.example', password: DEMO_PASSWORD })).status).to.equal(401);
      expect((await login(server, { email: 'premium1@demo.example', password: temporary })).status).to.equal(200);
    });

    it('delete: the token issued before fails', async () => {
      const before = (await loginAs(server, 'guest1@demo.example')).access_token;
      expect((await jsonRequest(server, 'DELETE', `/users/${ids.guest1}`, admin)).status).to.equal(204);
      expect((await callApi(server, '/me', before)).status).to.equal(401);
      expect((await jsonRequest(server, 'GET', `/users/${ids.guest1}`, admin)).status).to.equal(404);
    });
  });

  it('holds max_users on the admin:create path too (409)', async () => {
    await server.deps.orm.em.getConnection().execute(`update organization set max_users = 1 where slug = 'other'`);
    const refusal = await createAdministrator(server.deps.orm, server.deps.clientRegistry, { email: 'second@other.example', organizationSlug: 'other', source: 'test' })
      .then(() => undefined, (error: unknown) => error);
    expect(refusal).to.be.instanceOf(AppError);
    expect((refusal as AppError).code).to.equal('organization.max_users_reached');
  });

  describe('escalation and self-harm', () => {
    it('keeps an admin from deleting, disabling or demoting themselves (403)', async () => {
      expect((await jsonRequest(server, 'DELETE', `/users/${ids.admin1}`, admin)).status).to.equal(403);
      expect((await jsonRequest(server, 'POST', `/users/${ids.admin1}/disable`, admin)).status).to.equal(403);
      expect((await jsonRequest(server, 'POST', `/users/${ids.admin1}/promote`, admin, { role: 'guest' })).status).to.equal(403);
    });

    it('keeps an org admin from making anyone super admin, by promote or by role ids', async () => {
      expect((await jsonRequest(server, 'POST', `/users/${ids.agent1}/promote`, admin, { role: 'super_admin' })).status).to.equal(403);
      const superRole = (await server.deps.orm.em.getConnection().execute(`select id from role where name = 'super_admin' and organization_id is null`))[0]!.id;
      expect((await jsonRequest(server, 'POST', `/users/${ids.agent1}/roles`, admin, { role_ids: [superRole] })).status).to.be.oneOf([403, 404]);
      expect((await (await callApi(server, '/me', agent)).json()).roles).to.deep.equal(['agent']);
    });

    it('keeps an admin of the default organization from touching the super admin', async () => {
      const created = await jsonRequest(server, 'POST', '/users', root, { email: 'deputy@latchkey.test', first_name: 'D', last_name: 'Deputy', role: 'admin', password: 'vault-orchid-lamp-52' });
      expect(created.status).to.equal(201);
      const deputy = (await loginAs(server, 'deputy@latchkey.test', 'vault-orchid-lamp-52')).access_token;
      expect((await jsonRequest(server, 'POST', `/users/${server.admin.userId}/disable`, deputy)).status).to.equal(403);
      expect((await jsonRequest(server, 'POST', `/users/${server.admin.userId}/reset-password`, deputy, {})).status).to.equal(403);
    });

    it('lets only admins promote: backoffice cannot', async () => {
      const backoffice = (await loginAs(server, 'agent1@demo.example')).access_token;
      expect((await jsonRequest(server, 'POST', `/users/${ids.basic1}/promote`, backoffice, { role: 'agent' })).status).to.equal(403);
    });
  });
});
