import { expect } from 'chai';

import { queryRows } from '../../../src/platform/database.ts';
import { createAdministrator } from '../../../src/services/bootstrap.service.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { callApi } from '../../support/oauth.ts';
import { loginAs, seedDemoUsers } from '../../support/users.ts';

const ROOT_PASSWORD = 'root-password-for-location-tests';
const OTHER_ADMIN_PASSWORD = 'other-admin-password-for-location-tests';
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

interface LocationBody { id: string; organization_id: string; code: string; name: string; is_primary?: boolean }

function send(server: TestServer, method: string, path: string, token: string, body?: unknown) {
  return callApi(server, path, token, body === undefined ? { method } : {
    method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
}

async function auditCount(server: TestServer, action: string, resourceId?: string): Promise<number> {
  const rows = await queryRows<{ count: number }>(
    server.deps.orm.em, 'select count(*)::int as count from audit_log where action = ? and (?::text is null or resource_id = ?)', [action, resourceId ?? null, resourceId ?? null],
  );
  return rows[0]!.count;
}

async function expectProblem(response: Response, status: number, code: string) {
  expect(response.status, await response.clone().text()).to.equal(status);
  expect((await response.json()).code).to.equal(code);
}

describe('/api/v1/locations', () => {
  let server: TestServer;
  let root: string;
  let admin: string;
  let backoffice: string;
  let agent: string;
  let otherAdmin: string;
  let demoId: string;
  let otherId: string;
  let users: Record<string, string>;

  async function createLocation(token: string, body: Record<string, unknown>): Promise<LocationBody> {
    const response = await send(server, 'POST', '/locations', token, body);
    expect(response.status, await response.clone().text()).to.equal(201);
    return (await response.json()) as LocationBody;
  }

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    const admin1 = await loginAs(server, 'admin1@demo.example');
    admin = admin1.access_token;
    backoffice = (await loginAs(server, 'backoffice1@demo.example')).access_token;
    agent = (await loginAs(server, 'agent1@demo.example')).access_token;
    demoId = (await (await callApi(server, '/organizations/current', admin)).json()).id;
    // A second organization, made through the API, with its own admin: the boundary under test.
    const other = await (await send(server, 'POST', '/organizations', root, { slug: 'other', name: 'Other Org' })).json();
    otherId = other.id;
    await createAdministrator(server.deps.orm, server.deps.clientRegistry, { email: 'admin@other.example', password: OTHER_ADMIN_PASSWORD, organizationSlug: 'other', source: 'test' });
    otherAdmin = (await loginAs(server, 'admin@other.example', OTHER_ADMIN_PASSWORD)).access_token;
    const rows = await queryRows<{ id: string; email: string }>(server.deps.orm.em, 'select id, email from app_user');
    users = Object.fromEntries(rows.map((row) => [row.email, row.id]));
  });
  after(async () => { await server.close(); });

  describe('create', () => {
    it('creates a location in the admin\'s organization with every seed 004 field, and audits it', async () => {
      const body = {
        name: 'Main Office', code: 'MAIN-001', description: 'Main office location', address: '123 Business Street',
        city: 'New York', state: 'NY', country: 'USA', postal_code: '10001',
      };
      const created = await createLocation(admin, body);
      expect(created).to.include({ ...body, organization_id: demoId, is_active: true });
      expect(await auditCount(server, 'location.create', created.id)).to.equal(1);
    });

    it('answers 409 location.code_taken for a code used in the organization, and records nothing', async () => {
      const before = await auditCount(server, 'location.create');
      await expectProblem(await send(server, 'POST', '/locations', admin, { name: 'Copy', code: 'MAIN-001' }), 409, 'location.code_taken');
      expect(await auditCount(server, 'location.create')).to.equal(before);
    });

    it('allows the same code in another organization', async () => {
      const created = await createLocation(otherAdmin, { name: 'Other main', code: 'MAIN-001' });
      expect(created.organization_id).to.equal(otherId);
    });

    it('lets a super admin create in a named organization, and answers 404 for an unknown or invisible one', async () => {
      const created = await createLocation(root, { name: 'Remote', code: 'REMOTE', organization_id: otherId });
      expect(created.organization_id).to.equal(otherId);
      expect((await send(server, 'POST', '/locations', root, { name: 'x', code: 'X1', organization_id: UNKNOWN_ID })).status).to.equal(404);
      await expectProblem(await send(server, 'POST', '/locations', admin, { name: 'x', code: 'X2', organization_id: otherId }), 404, 'resource.not_found');
      const mine = await createLocation(admin, { name: 'Explicit', code: 'EXPLICIT', organization_id: demoId });
      expect(mine.organization_id).to.equal(demoId);
    });

    it('refuses missing, mistyped, oversized and unknown fields with 422 and the field path', async () => {
      const cases: [Record<string, unknown>, (string | number)[]][] = [
        [{ code: 'NO-NAME' }, ['body', 'name']],
        [{ name: 'No code' }, ['body', 'code']],
        [{ name: 'x', code: 'C'.repeat(33) }, ['body', 'code']],
        [{ name: 'x', code: 'has space' }, ['body', 'code']],
        [{ name: 'x'.repeat(201), code: 'LONG' }, ['body', 'name']],
        [{ name: 'x', code: 'CITY', city: 'c'.repeat(101) }, ['body', 'city']],
        [{ name: 'x', code: 'ZIP', postal_code: 12345 }, ['body', 'postal_code']],
        [{ name: 'x', code: 'ACTIVE', is_active: 'yes' }, ['body', 'is_active']],
        [{ name: 'x', code: 'EXTRA', manager: 'me' }, ['body']],
        [{ name: 'x', code: 'ORG', organization_id: 'demo' }, ['body', 'organization_id']],
      ];
      for (const [body, path] of cases) {
        const response = await send(server, 'POST', '/locations', admin, body);
        expect(response.status, JSON.stringify(body)).to.equal(422);
        const problem = await response.json();
        expect(problem.errors.map((error: { path: unknown[] }) => error.path), JSON.stringify(body)).to.deep.include(path);
      }
    });

    it('answers 403 to roles that may not write locations', async () => {
      expect((await send(server, 'POST', '/locations', backoffice, { name: 'x', code: 'BO' })).status).to.equal(403);
      expect((await send(server, 'POST', '/locations', agent, { name: 'x', code: 'AG' })).status).to.equal(403);
    });
  });

  describe('read', () => {
    it('lists the organization\'s locations only, paged, with is_active and search filters', async () => {
      const list = await (await callApi(server, '/locations', admin)).json();
      expect(list).to.include({ page: 1, page_size: 20, next: null, previous: null });
      expect(list.results.length).to.equal(list.count);
      expect(list.results.every((location: LocationBody) => location.organization_id === demoId)).to.equal(true);
      const found = await (await callApi(server, '/locations?search=main', admin)).json();
      expect(found.results.map((location: LocationBody) => location.code)).to.deep.equal(['MAIN-001']);
      const byCity = await (await callApi(server, '/locations?search=york', admin)).json();
      expect(byCity.count).to.equal(1);
      expect((await (await callApi(server, '/locations?is_active=false', admin)).json()).count).to.equal(0);
    });

    it('lets backoffice read, and a super admin list every organization or filter by one', async () => {
      expect((await callApi(server, '/locations', backoffice)).status).to.equal(200);
      const everything = await (await callApi(server, '/locations', root)).json();
      expect(new Set(everything.results.map((location: LocationBody) => location.organization_id))).to.have.keys(demoId, otherId);
      const other = await (await callApi(server, `/locations?organization_id=${otherId}`, root)).json();
      expect(other.results.every((location: LocationBody) => location.organization_id === otherId)).to.equal(true);
      const foreign = await (await callApi(server, `/locations?organization_id=${otherId}`, admin)).json();
      expect(foreign.count).to.equal(0);
    });

    it('gets one location, and answers 404 for another organization\'s or an unknown one, 422 for a malformed id', async () => {
      const [mine] = (await (await callApi(server, '/locations?search=MAIN-001', admin)).json()).results;
      const [theirs] = (await (await callApi(server, '/locations?search=MAIN-001', otherAdmin)).json()).results;
      expect((await callApi(server, `/locations/${mine.id}`, admin)).status).to.equal(200);
      await expectProblem(await callApi(server, `/locations/${theirs.id}`, admin), 404, 'resource.not_found');
      expect((await callApi(server, `/locations/${UNKNOWN_ID}`, admin)).status).to.equal(404);
      expect((await callApi(server, '/locations/nope', admin)).status).to.equal(422);
    });

    it('answers 403 to roles without locations:read and 422 for bad paging or unknown filters', async () => {
      expect((await callApi(server, '/locations', agent)).status).to.equal(403);
      for (const query of ['page=0', 'page_size=500', 'is_active=1', 'per_page=10', 'organization_id=demo']) {
        expect((await callApi(server, `/locations?${query}`, admin)).status, query).to.equal(422);
      }
    });
  });

  describe('update and delete', () => {
    it('changes fields, audits it, and answers 409 for a code in use', async () => {
      const location = await createLocation(admin, { name: 'Warehouse', code: 'WH-1' });
      const response = await send(server, 'PATCH', `/locations/${location.id}`, admin, { name: 'Big Warehouse', city: 'Newark', is_active: false });
      expect(response.status).to.equal(200);
      expect(await response.json()).to.include({ name: 'Big Warehouse', city: 'Newark', is_active: false, code: 'WH-1' });
      expect(await auditCount(server, 'location.update', location.id)).to.equal(1);
      await expectProblem(await send(server, 'PATCH', `/locations/${location.id}`, admin, { code: 'MAIN-001' }), 409, 'location.code_taken');
      expect(await auditCount(server, 'location.update', location.id)).to.equal(1);
    });

    it('refuses an empty change, wrong types and unknown fields with 422', async () => {
      const [location] = (await (await callApi(server, '/locations?search=WH-1', admin)).json()).results;
      for (const body of [{}, { name: '' }, { code: null }, { is_active: 'no' }, { organization_id: otherId }, { name: 'x'.repeat(201) }]) {
        expect((await send(server, 'PATCH', `/locations/${location.id}`, admin, body)).status, JSON.stringify(body)).to.equal(422);
      }
    });

    it('answers 404 for another organization\'s location and 403 to roles without locations:write', async () => {
      const theirs = await createLocation(otherAdmin, { name: 'Theirs', code: 'THEIRS' });
      expect((await send(server, 'PATCH', `/locations/${theirs.id}`, admin, { name: 'Mine' })).status).to.equal(404);
      expect((await send(server, 'DELETE', `/locations/${theirs.id}`, admin)).status).to.equal(404);
      expect((await send(server, 'PATCH', `/locations/${theirs.id}`, backoffice, { name: 'Mine' })).status).to.equal(403);
      const unchanged = await (await callApi(server, `/locations/${theirs.id}`, otherAdmin)).json();
      expect(unchanged.name).to.equal('Theirs');
    });

    it('answers 403 auth.forbidden when the token has the scope but the role lacks locations:write', async () => {
      // The admin role keeps users:write (the scope) but loses locations:write (the permission).
      const strip = `delete from role_permission where role_id = (select id from role where name = 'admin' and organization_id = ?)
        and permission_id = (select id from permission where name = 'locations:write') returning role_id, permission_id`;
      const [link] = await queryRows<{ role_id: string; permission_id: string }>(server.deps.orm.em, strip, [demoId]);
      await server.deps.permissionResolver.invalidate();
      try {
        const [location] = (await (await callApi(server, '/locations?search=WH-1', admin)).json()).results;
        await expectProblem(await send(server, 'PATCH', `/locations/${location.id}`, admin, { name: 'x' }), 403, 'auth.forbidden');
        await expectProblem(await send(server, 'POST', '/locations', admin, { name: 'x', code: 'FORBIDDEN' }), 403, 'auth.forbidden');
      } finally {
        await queryRows(server.deps.orm.em, 'insert into role_permission (role_id, permission_id) values (?, ?)', [link!.role_id, link!.permission_id]);
        await server.deps.permissionResolver.invalidate();
      }
    });

    it('deletes a location with its assignments, audits it, then answers 404', async () => {
      const location = await createLocation(admin, { name: 'Kiosk', code: 'KIOSK' });
      const assigned = await send(server, 'POST', '/locations/assign', admin, { user_id: users['agent2@demo.example'], location_ids: [location.id], primary_location_id: location.id });
      expect(assigned.status).to.equal(200);
      expect((await send(server, 'DELETE', `/locations/${location.id}`, admin)).status).to.equal(204);
      expect((await callApi(server, `/locations/${location.id}`, admin)).status).to.equal(404);
      expect((await send(server, 'DELETE', `/locations/${location.id}`, admin)).status).to.equal(404);
      expect(await queryRows(server.deps.orm.em, 'select 1 from user_location where location_id = ?', [location.id])).to.have.length(0);
      expect(await auditCount(server, 'location.delete', location.id)).to.equal(1);
    });
  });

  describe('assignments', () => {
    let north: LocationBody;
    let south: LocationBody;
    let east: LocationBody;
    let theirs: LocationBody;

    before(async () => {
      north = await createLocation(admin, { name: 'North', code: 'N' });
      south = await createLocation(admin, { name: 'South', code: 'S' });
      east = await createLocation(admin, { name: 'East', code: 'E' });
      theirs = await createLocation(otherAdmin, { name: 'Their north', code: 'N' });
    });

    it('assigns locations with a primary one, visible from both sides, and audits it', async () => {
      const agentId = users['agent1@demo.example']!;
      const response = await send(server, 'POST', '/locations/assign', admin, { user_id: agentId, location_ids: [north.id, south.id], primary_location_id: south.id });
      expect(response.status).to.equal(200);
      const answer = await response.json();
      expect(answer).to.include({ user_id: agentId, primary_location_id: south.id });
      expect(answer.locations.map((location: LocationBody) => [location.code, location.is_primary])).to.deep.equal([['S', true], ['N', false]]);

      const mine = await (await callApi(server, `/users/${agentId}/locations`, admin)).json();
      expect(mine).to.include({ count: 2, page: 1 });
      expect(mine.results[0]).to.include({ id: south.id, is_primary: true });
      const people = await (await callApi(server, `/locations/${north.id}/users`, backoffice)).json();
      expect(people.results).to.have.length(1);
      expect(people.results[0]).to.include({ id: agentId, email: 'agent1@demo.example', full_name: 'Al Agent', is_primary: false });
      expect(await auditCount(server, 'location.assign', agentId)).to.equal(1);
    });

    it('replaces the previous assignments and moves the primary flag', async () => {
      const agentId = users['agent1@demo.example']!;
      const response = await send(server, 'POST', '/locations/assign', admin, { user_id: agentId, location_ids: [north.id, east.id], primary_location_id: north.id });
      expect(response.status).to.equal(200);
      const mine = await (await callApi(server, `/users/${agentId}/locations`, admin)).json();
      expect(mine.results.map((location: LocationBody) => [location.code, location.is_primary])).to.deep.equal([['N', true], ['E', false]]);
      expect((await (await callApi(server, `/locations/${south.id}/users`, admin)).json()).count).to.equal(0);
    });

    it('answers 404 for a user or a location of another organization, and changes nothing', async () => {
      const agentId = users['agent1@demo.example']!;
      const before = await auditCount(server, 'location.assign');
      await expectProblem(await send(server, 'POST', '/locations/assign', admin, { user_id: users['admin@other.example'], location_ids: [north.id], primary_location_id: north.id }), 404, 'resource.not_found');
      await expectProblem(await send(server, 'POST', '/locations/assign', admin, { user_id: agentId, location_ids: [theirs.id], primary_location_id: theirs.id }), 404, 'resource.not_found');
      // A super admin cannot put a user at a location of another organization either.
      expect((await send(server, 'POST', '/locations/assign', root, { user_id: agentId, location_ids: [south.id, theirs.id] })).status).to.equal(404);
      expect((await send(server, 'POST', '/locations/assign', admin, { user_id: UNKNOWN_ID, location_ids: [north.id] })).status).to.equal(404);
      expect(await auditCount(server, 'location.assign')).to.equal(before);
      const mine = await (await callApi(server, `/users/${agentId}/locations`, admin)).json();
      expect(mine.results.map((location: LocationBody) => location.code)).to.deep.equal(['N', 'E']);
    });

    it('refuses a primary outside location_ids, repeats, disabled locations and malformed input with 422', async () => {
      const agentId = users['agent1@demo.example'];
      const disabled = await createLocation(admin, { name: 'Closed', code: 'CLOSED', is_active: false });
      const cases: [Record<string, unknown>, (string | number)[]][] = [
        [{ user_id: agentId, location_ids: [north.id], primary_location_id: south.id }, ['body', 'primary_location_id']],
        [{ user_id: agentId, location_ids: [north.id, north.id] }, ['body', 'location_ids']],
        [{ user_id: agentId, location_ids: [north.id, disabled.id] }, ['body', 'location_ids', 1]],
        [{ location_ids: [north.id] }, ['body', 'user_id']],
        [{ user_id: agentId }, ['body', 'location_ids']],
        [{ user_id: 'agent1', location_ids: [] }, ['body', 'user_id']],
        [{ user_id: agentId, location_ids: ['N'] }, ['body', 'location_ids', 0]],
        [{ user_id: agentId, location_ids: north.id }, ['body', 'location_ids']],
        [{ user_id: agentId, location_ids: [], extra: 1 }, ['body']],
      ];
      for (const [body, path] of cases) {
        const response = await send(server, 'POST', '/locations/assign', admin, body);
        expect(response.status, JSON.stringify(body)).to.equal(422);
        expect((await response.json()).errors.map((error: { path: unknown[] }) => error.path), JSON.stringify(body)).to.deep.include(path);
      }
    });

    it('answers 403 to roles that may not assign or read assignments', async () => {
      const agentId = users['agent1@demo.example'];
      expect((await send(server, 'POST', '/locations/assign', backoffice, { user_id: agentId, location_ids: [] })).status).to.equal(403);
      expect((await callApi(server, `/users/${agentId}/locations`, agent)).status).to.equal(403);
      expect((await callApi(server, `/locations/${north.id}/users`, agent)).status).to.equal(403);
      expect((await send(server, 'DELETE', `/users/${agentId}/locations/${north.id}`, backoffice)).status).to.equal(403);
    });

    it('answers 404 for assignments of another organization\'s user or location', async () => {
      expect((await callApi(server, `/users/${users['admin@other.example']}/locations`, admin)).status).to.equal(404);
      expect((await callApi(server, `/users/${UNKNOWN_ID}/locations`, admin)).status).to.equal(404);
      expect((await callApi(server, '/users/bad/locations', admin)).status).to.equal(422);
      expect((await callApi(server, `/locations/${theirs.id}/users`, admin)).status).to.equal(404);
      expect((await callApi(server, `/locations/${north.id}/users?page_size=0`, admin)).status).to.equal(422);
    });

    it('takes one location away from a user, audits it, then answers 404', async () => {
      const agentId = users['agent1@demo.example']!;
      expect((await send(server, 'DELETE', `/users/${agentId}/locations/${east.id}`, admin)).status).to.equal(204);
      const mine = await (await callApi(server, `/users/${agentId}/locations`, admin)).json();
      expect(mine.results.map((location: LocationBody) => location.code)).to.deep.equal(['N']);
      expect(await auditCount(server, 'location.unassign', agentId)).to.equal(1);
      expect((await send(server, 'DELETE', `/users/${agentId}/locations/${east.id}`, admin)).status).to.equal(404);
      expect((await send(server, 'DELETE', `/users/${users['admin@other.example']}/locations/${theirs.id}`, admin)).status).to.equal(404);
      expect((await send(server, 'DELETE', `/users/${agentId}/locations/not-a-uuid`, admin)).status).to.equal(422);
      expect(await auditCount(server, 'location.unassign', agentId)).to.equal(1);
    });

    it('clears every assignment with an empty list', async () => {
      const agentId = users['agent1@demo.example']!;
      const response = await send(server, 'POST', '/locations/assign', admin, { user_id: agentId, location_ids: [] });
      expect(response.status).to.equal(200);
      expect(await response.json()).to.deep.include({ primary_location_id: null, locations: [] });
    });
  });
});
