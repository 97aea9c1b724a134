import { expect } from 'chai';

import { queryRows } from '../../../src/platform/database.ts';
import { StoreUnavailableError } from '../../../src/platform/store.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { basicAuth, callApi, clientCredentialsToken, createClient, postForm } from '../../support/oauth.ts';
import { login, loginAs, postJson, seedDemoUsers } from '../../support/users.ts';

const ROOT_PASSWORD = 'root-password-for-organization-tests';
const USER_PASSWORD = 'Tall-Lighthouse-Keeps-37-Watch!';
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

function send(server: TestServer, method: string, path: string, token: string, body?: unknown) {
  return callApi(server, path, token, body === undefined ? { method } : {
    method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
}

async function auditRows(server: TestServer, action: string, resourceId: string) {
  return queryRows<{ action: string; status: string; actor_id: string | null; organization_id: string | null; details: Record<string, unknown> }>(
    server.deps.orm.em, 'select action, status, actor_id, organization_id, details from audit_log where action = ? and resource_id = ?', [action, resourceId],
  );
}

async function register(server: TestServer, email: string, organizationSlug: string) {
  return postJson(server, '/auth/register', { email, password: USER_PASSWORD, full_name: 'Test Person', organization_slug: organizationSlug });
}

describe('/api/v1/organizations', () => {
  let server: TestServer;
  let root: { access_token: string; user: { id: string } };
  let admin: string;
  let demoId: string;

  async function createOrganization(body: Record<string, unknown>) {
    const response = await send(server, 'POST', '/organizations', root.access_token, body);
    expect(response.status, await response.clone().text()).to.equal(201);
    return (await response.json()) as { id: string; slug: string };
  }

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    root = await loginAs(server, 'root@example.com', ROOT_PASSWORD);
    admin = (await loginAs(server, 'admin1@demo.example')).access_token;
    demoId = (await (await callApi(server, '/organizations/current', admin)).json()).id;
  });
  after(async () => { await server.close(); });

  describe('create', () => {
    it('creates an organization with its built-in roles and an audit row by the super admin', async () => {
      const response = await send(server, 'POST', '/organizations', root.access_token, { slug: 'acme', name: 'Acme Corp', description: 'Anvils', max_users: 50 });
      expect(response.status).to.equal(201);
      const created = await response.json();
      expect(created).to.include({ slug: 'acme', name: 'Acme Corp', description: 'Anvils', max_users: 50, is_active: true, user_count: 0 });
      const roles = await queryRows<{ name: string }>(server.deps.orm.em, 'select name from role where organization_id = ? order by name', [created.id]);
      expect(roles.map((role) => role.name)).to.deep.equal(['admin', 'agent', 'backoffice', 'basic_user', 'guest', 'premium_user']);
      const [audit] = await auditRows(server, 'organization.create', created.id);
      expect(audit).to.include({ status: 'success', actor_id: root.user.id, organization_id: created.id });
    });

    it('answers 409 organization.slug_taken for a slug in use, and records nothing', async () => {
      const response = await send(server, 'POST', '/organizations', root.access_token, { slug: 'demo', name: 'Second demo' });
      expect(response.status).to.equal(409);
      expect((await response.json()).code).to.equal('organization.slug_taken');
      const rows = await queryRows(server.deps.orm.em, `select 1 from audit_log where action = 'organization.create' and details->>'name' = 'Second demo'`);
      expect(rows).to.have.length(0);
    });

    it('answers 409 to one of two concurrent creations of the same slug', async () => {
      const answers = await Promise.all([1, 2].map((n) => send(server, 'POST', '/organizations', root.access_token, { slug: 'racer', name: `Racer ${n}` })));
      expect(answers.map((answer) => answer.status).sort()).to.deep.equal([201, 409]);
    });

    it('refuses missing, mistyped, oversized and unknown fields with 422 and the field path', async () => {
      const cases: [Record<string, unknown>, (string | number)[]][] = [
        [{ name: 'No slug' }, ['body', 'slug']],
        [{ slug: 'no-name' }, ['body', 'name']],
        [{ slug: 'Upper', name: 'x' }, ['body', 'slug']],
        [{ slug: '-leading', name: 'x' }, ['body', 'slug']],
        [{ slug: 'a'.repeat(64), name: 'x' }, ['body', 'slug']],
        [{ slug: 'long-name', name: 'x'.repeat(201) }, ['body', 'name']],
        [{ slug: 'blank-name', name: '   ' }, ['body', 'name']],
        [{ slug: 'zero', name: 'x', max_users: 0 }, ['body', 'max_users']],
        [{ slug: 'fraction', name: 'x', max_users: 1.5 }, ['body', 'max_users']],
        [{ slug: 'text', name: 'x', max_users: 'ten' }, ['body', 'max_users']],
        [{ slug: 'typed', name: 42 }, ['body', 'name']],
        [{ slug: 'extra', name: 'x', is_admin: true }, ['body']],
      ];
      for (const [body, path] of cases) {
        const response = await send(server, 'POST', '/organizations', root.access_token, body);
        expect(response.status, JSON.stringify(body)).to.equal(422);
        const problem = await response.json();
        expect(problem.code).to.equal('request.validation_failed');
        expect(problem.errors.map((error: { path: unknown[] }) => error.path), JSON.stringify(body)).to.deep.include(path);
      }
    });

    it('answers 403 auth.forbidden to an org admin (organizations:write is the super admin\'s)', async () => {
      const response = await send(server, 'POST', '/organizations', admin, { slug: 'sneaky', name: 'Sneaky' });
      expect(response.status).to.equal(403);
      expect((await response.json()).code).to.equal('auth.forbidden');
    });
  });

  describe('read', () => {
    it('lists every organization for a super admin, paged, with is_active and search filters', async () => {
      const all = await (await callApi(server, '/organizations?page_size=2', root.access_token)).json();
      expect(all.count).to.be.at.least(3);
      expect(all.results).to.have.length(2);
      expect(all.next).to.match(/page=2/);
      const found = await (await callApi(server, '/organizations?search=ACM', root.access_token)).json();
      expect(found.results.map((organization: { slug: string }) => organization.slug)).to.deep.equal(['acme']);
      const slugs = async (query: string) => (await (await callApi(server, `/organizations?${query}`, root.access_token)).json())
        .results.map((organization: { slug: string }) => organization.slug);
      expect(await slugs('is_active=true&page_size=100')).to.include('acme');
      expect(await slugs('is_active=false&page_size=100')).not.to.include('acme');
    });

    it('lists only the org admin\'s own organization', async () => {
      const list = await (await callApi(server, '/organizations', admin)).json();
      expect(list.count).to.equal(1);
      expect(list.results[0]).to.include({ id: demoId, slug: 'demo', user_count: 7 });
    });

    it('answers 404, not 403, when an org admin reads another organization', async () => {
      const acme = (await (await callApi(server, '/organizations?search=acme', root.access_token)).json()).results[0];
      expect((await callApi(server, `/organizations/${demoId}`, admin)).status).to.equal(200);
      const response = await callApi(server, `/organizations/${acme.id}`, admin);
      expect(response.status).to.equal(404);
      expect((await callApi(server, `/organizations/${UNKNOWN_ID}`, admin)).status).to.equal(404);
      expect((await callApi(server, `/organizations/${acme.id}`, root.access_token)).status).to.equal(200);
    });

    it('answers 422 for a malformed id and bad paging or filters, 404 for an unknown id', async () => {
      expect((await callApi(server, '/organizations/not-a-uuid', root.access_token)).status).to.equal(422);
      expect((await callApi(server, `/organizations/${UNKNOWN_ID}`, root.access_token)).status).to.equal(404);
      for (const query of ['page=0', 'page_size=101', 'is_active=maybe', 'search=' + 'x'.repeat(101), 'per_page=20']) {
        expect((await callApi(server, `/organizations?${query}`, root.access_token)).status, query).to.equal(422);
      }
    });

    it('answers 403 to roles without organizations:read', async () => {
      const backoffice = (await loginAs(server, 'backoffice1@demo.example')).access_token;
      const response = await callApi(server, '/organizations', backoffice);
      expect(response.status).to.equal(403);
      expect((await response.json()).code).to.equal('auth.forbidden');
      const agent = (await loginAs(server, 'agent1@demo.example')).access_token;
      expect((await callApi(server, `/organizations/${demoId}`, agent)).status).to.equal(403);
    });

    it('shows any signed-in user their own organization at /organizations/current', async () => {
      const guest = (await loginAs(server, 'guest1@demo.example')).access_token;
      const mine = await (await callApi(server, '/organizations/current', guest)).json();
      expect(mine).to.include({ id: demoId, slug: 'demo' });
      expect((await (await callApi(server, '/organizations/current', root.access_token)).json()).slug).to.equal('default');
    });

    it('answers 403 auth.forbidden at /organizations/current for a machine token of no organization, as every route does', async () => {
      const machine = await createClient(server);
      const { access_token: token } = await clientCredentialsToken(server, { clientId: machine.clientId, secret: machine.secret, scope: 'crm:read' });
      const response = await callApi(server, '/organizations/current', token);
      expect(response.status).to.equal(403);
      expect((await response.json()).code).to.equal('auth.forbidden');
    });
  });

  describe('update', () => {
    it('changes name, description and max_users, with an audit row', async () => {
      const created = await createOrganization({ slug: 'patchy', name: 'Patchy' });
      const response = await send(server, 'PATCH', `/organizations/${created.id}`, root.access_token, { name: 'Patched', description: null, max_users: 3 });
      expect(response.status).to.equal(200);
      expect(await response.json()).to.include({ name: 'Patched', description: null, max_users: 3, slug: 'patchy' });
      const [audit] = await auditRows(server, 'organization.update', created.id);
      expect(audit!.details.fields).to.have.members(['name', 'description', 'max_users']);
    });

    it('refuses a slug change, an empty change, wrong types and unknown ids', async () => {
      const created = await createOrganization({ slug: 'strict', name: 'Strict' });
      for (const body of [{ slug: 'renamed' }, {}, { is_active: 'no' }, { max_users: -1 }, { name: 'x'.repeat(201) }]) {
        expect((await send(server, 'PATCH', `/organizations/${created.id}`, root.access_token, body)).status, JSON.stringify(body)).to.equal(422);
      }
      expect((await send(server, 'PATCH', `/organizations/${UNKNOWN_ID}`, root.access_token, { name: 'x' })).status).to.equal(404);
      expect((await auditRows(server, 'organization.update', created.id))).to.have.length(0);
    });

    it('answers 403 to an org admin, even for their own organization', async () => {
      const response = await send(server, 'PATCH', `/organizations/${demoId}`, admin, { name: 'Mine now' });
      expect(response.status).to.equal(403);
      expect((await response.json()).code).to.equal('auth.forbidden');
    });

    it('allows max_users below the current count, and then refuses further users with 409', async () => {
      const created = await createOrganization({ slug: 'tiny', name: 'Tiny' });
      expect((await register(server, 'one@tiny.example', 'tiny')).status).to.equal(201);
      expect((await register(server, 'two@tiny.example', 'tiny')).status).to.equal(201);
      const lowered = await send(server, 'PATCH', `/organizations/${created.id}`, root.access_token, { max_users: 1 });
      expect(lowered.status).to.equal(200);
      expect(await lowered.json()).to.include({ max_users: 1, user_count: 2 });
      const refused = await register(server, 'three@tiny.example', 'tiny');
      expect(refused.status).to.equal(409);
      expect((await refused.json()).code).to.equal('organization.max_users_reached');
    });
  });

  describe('disable', () => {
    let organization: { id: string; slug: string };
    let session: { access_token: string; refresh_token: string };
    let personal: { client_id: string; client_secret: string };

    before(async () => {
      organization = await createOrganization({ slug: 'doomed-corp', name: 'Doomed Corp' });
      const registered = await (await register(server, 'worker@doomed.example', 'doomed-corp')).json();
      personal = registered.client;
      session = await loginAs(server, 'worker@doomed.example', USER_PASSWORD);
    });

    it('ends tokens issued before the change at the next call, refuses sign-in and refresh, and audits it', async () => {
      const machine = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials', scope: 'crm:read' }, { authorization: basicAuth(personal.client_id, personal.client_secret) });
      const machineToken = (await machine.json()).access_token as string;
      expect((await callApi(server, '/organizations/current', session.access_token)).status).to.equal(200);
      expect((await callApi(server, '/organizations/current', machineToken)).status).to.equal(200);

      const response = await send(server, 'PATCH', `/organizations/${organization.id}`, root.access_token, { is_active: false });
      expect(response.status).to.equal(200);
      expect((await response.json()).is_active).to.equal(false);

      expect((await callApi(server, '/organizations/current', session.access_token)).status).to.equal(401);
      expect((await callApi(server, '/organizations/current', machineToken)).status).to.equal(401);
      expect((await login(server, { email: 'worker@doomed.example', password: USER_PASSWORD })).status).to.equal(401);
      expect((await postJson(server, '/auth/refresh', { refresh_token: session.refresh_token })).status).to.equal(401);
      const grants = await queryRows(server.deps.orm.em, `select 1 from oidc_artifact a join app_user u on u.id::text = a.account_id where a.model = 'Grant' and u.organization_id = ?`, [organization.id]);
      expect(grants).to.have.length(0);
      const [audit] = await auditRows(server, 'organization.disable', organization.id);
      expect(audit).to.include({ status: 'success', actor_id: root.user.id });
    });

    it('refuses new client_credentials tokens to personal clients of a disabled organization', async () => {
      const minted = await postForm(`${server.url}/oauth/token`, { grant_type: 'client_credentials', scope: 'crm:read' }, { authorization: basicAuth(personal.client_id, personal.client_secret) });
      expect(minted.status).to.equal(401);
    });

    it('lets the users sign in again once re-enabled', async () => {
      const response = await send(server, 'PATCH', `/organizations/${organization.id}`, root.access_token, { is_active: true });
      expect(response.status).to.equal(200);
      expect((await auditRows(server, 'organization.enable', organization.id))).to.have.length(1);
      expect((await login(server, { email: 'worker@doomed.example', password: USER_PASSWORD })).status).to.equal(200);
    });

    it('changes nothing and records nothing when ending the sessions fails (store outage)', async () => {
      const revocation = server.deps.revocation;
      const original = revocation.revokeUserTokens;
      revocation.revokeUserTokens = async () => { throw new StoreUnavailableError(new Error('simulated outage')); };
      try {
        const response = await send(server, 'PATCH', `/organizations/${organization.id}`, root.access_token, { is_active: false, name: 'Half done' });
        expect(response.status).to.equal(503);
      } finally {
        revocation.revokeUserTokens = original;
      }
      const after = await (await callApi(server, `/organizations/${organization.id}`, root.access_token)).json();
      expect(after).to.include({ is_active: true, name: 'Doomed Corp' });
      expect((await auditRows(server, 'organization.disable', organization.id))).to.have.length(1);
    });

    it('refuses to disable the caller\'s own organization (403) and records nothing', async () => {
      const own = (await (await callApi(server, '/organizations/current', root.access_token)).json()).id;
      const response = await send(server, 'PATCH', `/organizations/${own}`, root.access_token, { is_active: false });
      expect(response.status).to.equal(403);
      expect((await auditRows(server, 'organization.disable', own))).to.have.length(0);
      expect((await callApi(server, '/organizations/current', root.access_token)).status).to.equal(200);
    });
  });

  describe('delete', () => {
    it('deletes an organization with its users; their tokens stop and the audit row stays', async () => {
      const organization = await createOrganization({ slug: 'gone', name: 'Gone' });
      expect((await register(server, 'leaver@gone.example', 'gone')).status).to.equal(201);
      const session = await loginAs(server, 'leaver@gone.example', USER_PASSWORD);
      const location = await send(server, 'POST', '/locations', root.access_token, { name: 'HQ', code: 'HQ', organization_id: organization.id });
      expect(location.status).to.equal(201);

      expect((await send(server, 'DELETE', `/organizations/${organization.id}`, root.access_token)).status).to.equal(204);
      expect((await callApi(server, '/organizations/current', session.access_token)).status).to.equal(401);
      expect((await callApi(server, `/organizations/${organization.id}`, root.access_token)).status).to.equal(404);
      expect((await login(server, { email: 'leaver@gone.example', password: USER_PASSWORD })).status).to.equal(401);
      const leftovers = await queryRows(server.deps.orm.em, 'select 1 from location where organization_id = ? union all select 1 from app_user where organization_id = ?', [organization.id, organization.id]);
      expect(leftovers).to.have.length(0);
      const [audit] = await auditRows(server, 'organization.delete', organization.id);
      expect(audit!.details).to.include({ slug: 'gone', users: 1 });
    });

    it('refuses to delete the default organization with 409 and records nothing', async () => {
      const own = (await (await callApi(server, '/organizations/current', root.access_token)).json()).id;
      const response = await send(server, 'DELETE', `/organizations/${own}`, root.access_token);
      expect(response.status).to.equal(409);
      expect((await response.json()).code).to.equal('organization.default');
      expect((await auditRows(server, 'organization.delete', own))).to.have.length(0);
    });

    it('answers 403 to an org admin, 404 for an unknown id and 422 for a malformed one', async () => {
      const response = await send(server, 'DELETE', `/organizations/${demoId}`, admin);
      expect(response.status).to.equal(403);
      expect((await response.json()).code).to.equal('auth.forbidden');
      expect((await send(server, 'DELETE', `/organizations/${UNKNOWN_ID}`, root.access_token)).status).to.equal(404);
      expect((await send(server, 'DELETE', '/organizations/123', root.access_token)).status).to.equal(422);
    });
  });
});

describe('/api/v1/organizations with JWT access tokens', () => {
  let server: TestServer;

  before(async () => { server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD, ACCESS_TOKEN_FORMAT: 'jwt' }); });
  after(async () => { await server.close(); });

  it('stops a JWT issued before the organization was disabled at its next call', async () => {
    const root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    const organization = await (await send(server, 'POST', '/organizations', root, { slug: 'jwt-corp', name: 'JWT Corp' })).json();
    expect((await register(server, 'jay@jwt.example', 'jwt-corp')).status).to.equal(201);
    const { access_token: token } = await loginAs(server, 'jay@jwt.example', USER_PASSWORD);
    expect(token.split('.')).to.have.length(3);
    expect((await callApi(server, '/organizations/current', token)).status).to.equal(200);
    expect((await send(server, 'PATCH', `/organizations/${organization.id}`, root, { is_active: false })).status).to.equal(200);
    expect((await callApi(server, '/organizations/current', token)).status).to.equal(401);
  });
});
