import { expect } from 'chai';

import { insertAuditRows, organizationIdOf } from '../api/audit/fixtures.ts';
import { ROOT_PASSWORD, jsonRequest } from '../support/admin.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { loginAs, seedDemoUsers } from '../support/users.ts';

interface Problem { code: string; errors?: { path: (string | number)[] }[] }
interface Page { count: number; page: number; page_size: number; next: string | null; previous: string | null; results: { id: string }[] }

describe('paging parameters: page or skip, page_size or limit or size, and page=1 on cursor lists', () => {
  let server: TestServer;
  let root: string;
  let admin: string;
  let locationId: string;

  const get = (path: string, token = admin) => jsonRequest(server, 'GET', path, token);
  const page = async (path: string, token = admin): Promise<Page> => {
    const response = await get(path, token);
    expect(response.status, path).to.equal(200);
    return (await response.json()) as Page;
  };
  const problemPath = async (response: Response) => {
    expect(response.status).to.equal(422);
    return ((await response.json()) as Problem).errors?.[0]?.path;
  };
  /** A next/previous link as a path below /api/v1, to request it as it is. */
  const pathOf = (link: string) => link.slice(link.indexOf('/api/v1') + '/api/v1'.length);

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    admin = (await loginAs(server, 'admin1@demo.example')).access_token;
    const location = await jsonRequest(server, 'POST', '/locations', admin, { name: 'Head office', code: 'HQ' });
    expect(location.status).to.equal(201);
    locationId = ((await location.json()) as { id: string }).id;
    const users = await page('/users?page_size=100');
    for (const user of users.results) {
      const assigned = await jsonRequest(server, 'POST', '/locations/assign', admin, { user_id: user.id, location_ids: [locationId] });
      expect(assigned.status).to.be.oneOf([200, 201]);
    }
    await insertAuditRows(server, { count: 7, organizationId: await organizationIdOf(server, 'demo') });
  });
  after(async () => { await server.close(); });

  it('answers seed 004\'s list requests, literally as the seed prints them', async () => {
    for (const path of ['/users?skip=0&limit=100&search=&is_active=true', '/roles?skip=0&limit=100&search=&is_active=true',
      '/locations?skip=0&limit=100&search=&is_active=true', `/locations/${locationId}/users?skip=0&limit=100`]) {
      const body = await page(path);
      expect(body, path).to.include({ page: 1, page_size: 100, next: null, previous: null });
      expect(body.results, path).to.have.length(body.count).and.length.greaterThan(0);
    }
    const organizations = await page('/organizations?page=1&size=20&is_active=true', root);
    expect(organizations).to.include({ page: 1, page_size: 20 });
    expect(organizations.results).to.have.length.greaterThan(0);

    const audit = await get('/audit/logs?page=1&size=50&user_id=&action=&resource=&status=');
    expect(audit.status).to.equal(200);
    const { results } = (await audit.json()) as { results: unknown[] };
    expect(results).to.deep.equal(((await (await get('/audit/logs?page_size=50')).json()) as { results: unknown[] }).results);
  });

  it('takes size as another name for page_size, and refuses two names that disagree', async () => {
    const bySize = await page('/users?size=2');
    expect(bySize).to.include({ page_size: 2 });
    expect(bySize.results.map((user) => user.id)).to.deep.equal((await page('/users?page_size=2')).results.map((user) => user.id));
    expect((await get('/users?size=2&limit=2&page_size=2')).status).to.equal(200);
    expect(await problemPath(await get('/users?size=2&page_size=3'))).to.deep.equal(['query', 'size']);
    expect(await problemPath(await get('/users?size=2&limit=3'))).to.satisfy((path: string[]) => ['limit', 'size'].includes(path[1]!));
    expect(await problemPath(await get('/users?size=101'))).to.deep.equal(['query', 'page_size']);
  });

  it('starts a page at skip, answers the page that offset falls in, and links next and previous by skip', async () => {
    const all = (await page('/users?page_size=100')).results.map((user) => user.id);
    expect(all).to.have.length(7);

    const body = await page('/users?skip=3&limit=2&is_active=true');
    expect(body).to.include({ count: 7, page: 2, page_size: 2 });
    expect(body.results.map((user) => user.id)).to.deep.equal(all.slice(3, 5));
    const next = new URL(body.next!);
    expect(next.searchParams.get('skip')).to.equal('5');
    expect(next.searchParams.has('page')).to.equal(false);
    expect(next.searchParams.get('is_active')).to.equal('true');
    expect(new URL(body.previous!).searchParams.get('skip')).to.equal('1');

    // An offset off the page grid is honoured as given; the page is the one it falls in.
    expect(await page('/users?skip=1&page_size=3')).to.include({ page: 1 });
    // Following next from skip=0 visits every user once.
    const seen: string[] = [];
    for (let link: string | null = '/users?skip=0&limit=3'; link; ) {
      const current = await page(link);
      seen.push(...current.results.map((user) => user.id));
      link = current.next && pathOf(current.next);
    }
    expect(seen).to.deep.equal(all);

    const last = await page('/users?skip=6&page_size=2');
    expect(last.next).to.equal(null);
    expect(new URL(last.previous!).searchParams.get('skip')).to.equal('4');
    const first = await page('/users?skip=0&page_size=2');
    expect(first.previous).to.equal(null);
    // Past the end: no results, and previous leads back to the last results there are.
    const beyond = await page('/users?skip=50&page_size=2');
    expect(beyond).to.include({ page: 26, next: null });
    expect(beyond.results).to.deep.equal([]);
    expect(new URL(beyond.previous!).searchParams.get('skip')).to.equal('5');
  });

  it('accepts page beside skip only when both name the same offset', async () => {
    expect(await page('/users?page=2&skip=2&page_size=2')).to.include({ page: 2 });
    expect(await page('/users?page=1&skip=0&limit=100')).to.include({ page: 1 });
    expect(await problemPath(await get('/users?page=1&skip=2&page_size=2'))).to.deep.equal(['query', 'skip']);
    expect(await problemPath(await get('/users?page=2&skip=3&page_size=2'))).to.deep.equal(['query', 'skip']);
    expect(await problemPath(await get('/users?skip=-1'))).to.deep.equal(['query', 'skip']);
    expect(await problemPath(await get('/users?skip=two'))).to.deep.equal(['query', 'skip']);
  });

  it('keeps linking by page when the client pages by page', async () => {
    const body = await page('/users?page=2&size=2');
    expect(body).to.include({ page: 2 });
    expect(new URL(body.next!).searchParams.get('page')).to.equal('3');
    expect(new URL(body.next!).searchParams.has('skip')).to.equal(false);
    expect(new URL(body.previous!).searchParams.get('page')).to.equal('1');
  });

  it('answers page=1 of a cursor list with its first page, follows the cursor beside page=1, and refuses a later page without a cursor', async () => {
    const first = (await (await get('/audit/logs?page=1&size=3')).json()) as { results: { id: string }[]; next: string };
    expect(first.results).to.have.length(3);
    expect(first.results).to.deep.equal(((await (await get('/audit/logs?page_size=3')).json()) as typeof first).results);
    const second = (await (await get(`/audit/logs?page=1&size=3&cursor=${encodeURIComponent(first.next)}`)).json()) as typeof first;
    const plain = (await (await get(`/audit/logs?page_size=3&cursor=${encodeURIComponent(first.next)}`)).json()) as typeof first;
    expect(second.results.map((row) => row.id)).to.deep.equal(plain.results.map((row) => row.id));
    expect(second.results.map((row) => row.id)).to.not.include.members(first.results.map((row) => row.id));

    const refused = await get('/audit/logs?page=2&size=3');
    expect(await problemPath(refused.clone())).to.deep.equal(['query', 'page']);
    expect(((await refused.json()) as { detail: string }).detail).to.include('cursor');
    const self = (await loginAs(server, 'admin1@demo.example')).user.id;
    expect((await get(`/users/${self}/activity?page=1&size=2`)).status).to.equal(200);
    expect(await problemPath(await get(`/users/${self}/activity?page=3`))).to.deep.equal(['query', 'page']);
    expect(await problemPath(await get('/audit/logs?page=0'))).to.deep.equal(['query', 'page']);
  });
});
