import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { expect } from 'chai';

import { queryOne } from '../../../src/platform/database.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { callApi } from '../../support/oauth.ts';
import { loginAs, seedDemoUsers } from '../../support/users.ts';
import { ROOT_PASSWORD, insertAuditRows, parseCsv, organizationIdOf, seedOtherOrganization, userIdOf, withoutPermission } from './fixtures.ts';

const HEADER = 'id,occurred_at,organization_id,actor_id,actor_email,actor_client_id,target_id,target_email,action,resource,resource_id,status,ip,user_agent,details';

/** Reads a streamed body chunk by chunk, keeping only counts (the test must not hold it either). */
async function drain(response: Response, onChunk: (bytesSoFar: number) => void): Promise<{ bytes: number; lines: number }> {
  let bytes = 0;
  let lines = 0;
  const reader = response.body!.getReader();
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    bytes += chunk.value.length;
    for (const byte of chunk.value) if (byte === 10) lines += 1;
    onChunk(bytes);
  }
  return { bytes, lines };
}

describe('GET /api/v1/audit/logs/export', () => {
  let server: TestServer;
  let admin: string;
  let agent: string;
  let backoffice: string;
  let acmeAdmin: string;
  let demoId: string;

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    const acme = await seedOtherOrganization(server);
    demoId = await organizationIdOf(server, 'demo');
    admin = (await loginAs(server, 'admin1@demo.example')).access_token;
    agent = (await loginAs(server, 'agent1@demo.example')).access_token;
    backoffice = (await loginAs(server, 'backoffice1@demo.example')).access_token;
    acmeAdmin = (await loginAs(server, 'admin@acme.example')).access_token;
    const adminId = await userIdOf(server, 'admin1@demo.example');
    await insertAuditRows(server, { count: 20, organizationId: demoId, action: 'user.update', resource: 'user', actorId: adminId, targetId: adminId });
    await insertAuditRows(server, { count: 1, organizationId: demoId, action: 'auth.login', status: 'failure', userAgent: '=HYPERLINK("http://evil.example")', details: `'{"note":"a, \\"quoted\\"\\nline"}'::jsonb` });
    await insertAuditRows(server, { count: 15, organizationId: acme.organizationId, action: 'user.update', resource: 'user' });
  });
  after(async () => { await server.close(); });

  it('streams the organization\'s rows as CSV with a header row, oldest first, as an attachment', async () => {
    const response = await callApi(server, '/audit/logs/export?format=csv', admin);
    expect(response.status).to.equal(200);
    expect(response.headers.get('content-type')).to.equal('text/csv; charset=utf-8');
    expect(response.headers.get('content-disposition')).to.equal(`attachment; filename=audit-${new Date().toISOString().slice(0, 10)}.csv`);
    const text = await response.text();
    expect(text.split('\n')[0]).to.equal(HEADER);
    const rows = parseCsv(text);
    expect(rows).to.have.length(20 + 1 + 3); // + the three sign-ins
    expect(rows.every((row) => row.organization_id === demoId)).to.equal(true);
    const times = rows.map((row) => row.occurred_at!);
    expect(times).to.deep.equal([...times].sort());
    // Oldest first: the fixture's row 20 is its earliest.
    expect(rows.find((row) => row.action === 'user.update')).to.include({ actor_email: 'admin1@demo.example', target_email: 'admin1@demo.example', details: '{"n":20}' });
  });

  it('quotes commas, quotes and newlines, and defuses spreadsheet formulas', async () => {
    const text = await (await callApi(server, '/audit/logs/export?status=failure', admin)).text();
    const [row] = parseCsv(text);
    expect(row!.user_agent).to.equal('\'=HYPERLINK("http://evil.example")');
    expect(JSON.parse(row!.details!)).to.deep.equal({ note: 'a, "quoted"\nline' });
  });

  it('streams NDJSON, one JSON object per line, with the list\'s fields', async () => {
    const response = await callApi(server, '/audit/logs/export?format=ndjson&action=user.update', admin);
    expect(response.status).to.equal(200);
    expect(response.headers.get('content-type')).to.equal('application/x-ndjson');
    expect(response.headers.get('content-disposition')).to.match(/^attachment; filename=audit-\d{4}-\d{2}-\d{2}\.ndjson$/);
    const lines = (await response.text()).split('\n');
    expect(lines.pop()).to.equal('');
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records).to.have.length(20);
    expect(records[0]).to.include({ action: 'user.update', organization_id: demoId });
    expect(records[0]!.details).to.deep.equal({ n: 20 });
  });

  it('limits the export to from and to, and gives only a header row for an empty window', async () => {
    const text = await (await callApi(server, '/audit/logs/export?from=2020-01-01&to=2020-02-01', admin)).text();
    expect(text).to.equal(`${HEADER}\n`);
    const empty = await (await callApi(server, '/audit/logs/export?format=ndjson&from=2020-01-01&to=2020-02-01', admin)).text();
    expect(empty).to.equal('');
  });

  it('never exports another organization\'s rows to an org admin', async () => {
    const text = await (await callApi(server, `/audit/logs/export?organization_id=${demoId}`, acmeAdmin)).text();
    expect(text).to.equal(`${HEADER}\n`);
    const own = parseCsv(await (await callApi(server, '/audit/logs/export', acmeAdmin)).text());
    expect(own).to.have.length(15 + 2);
    expect(own.some((row) => row.organization_id === demoId)).to.equal(false);
  });

  it('answers 422 for an unknown format or a bad date, 403 to an agent and auth.forbidden without the permission', async () => {
    for (const query of ['format=xml', 'from=last-week', 'to=2026-02-30']) {
      expect((await callApi(server, `/audit/logs/export?${query}`, admin)).status, query).to.equal(422);
    }
    expect((await callApi(server, '/audit/logs/export', agent)).status).to.equal(403);
    await withoutPermission(server, 'backoffice', 'audit:read', async () => {
      const response = await callApi(server, '/audit/logs/export', backoffice);
      expect(response.status).to.equal(403);
      expect((await response.json()).code).to.equal('auth.forbidden');
    });
  });
});

describe('GET /api/v1/audit/logs/export of 100,000 rows', () => {
  const ROWS = 100_000;
  let server: TestServer;
  let root: string;
  let collectGarbage: () => void;

  before(async function () {
    this.timeout(60_000);
    // As jest-leak-detector does: --expose-gc applies to contexts made after it is set.
    setFlagsFromString('--expose-gc');
    collectGarbage = runInNewContext('gc') as () => void;
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    // ~600 bytes a row: the export is about 60 MB, far more than the heap growth allowed below.
    await insertAuditRows(server, {
      count: ROWS, organizationId: null, action: 'bulk.event',
      userAgent: `Mozilla/5.0 (X11; Linux x86_64) ${'x'.repeat(100)}`,
      details: `jsonb_build_object('n', n, 'note', repeat('detail ', 40))`,
    });
  });
  after(async () => { await server.close(); });

  it('closes the database cursor and frees its connection when the client goes away', async () => {
    const exportsInFlight = async () => Number((await queryOne<{ count: number }>(server.deps.orm.em,
      `select count(*)::int as count from pg_stat_activity
        where datname = current_database() and state <> 'idle' and query like '%from audit_log a%' and pid <> pg_backend_pid()`))!.count);
    // More abandoned downloads than the pool has connections: a leak would starve the next request.
    for (let attempt = 0; attempt < 12; attempt += 1) {
      const aborter = new AbortController();
      const response = await callApi(server, '/audit/logs/export?format=ndjson', root, { signal: aborter.signal });
      const reader = response.body!.getReader();
      await reader.read();
      if (attempt === 0) expect(await exportsInFlight(), 'an open export is visible').to.equal(1);
      aborter.abort();
      await reader.closed.catch(() => {});
    }
    const deadline = Date.now() + 10_000;
    while (await exportsInFlight() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await exportsInFlight()).to.equal(0);
    expect((await callApi(server, '/audit/logs?limit=1', root)).status).to.equal(200);
  });

  for (const format of ['csv', 'ndjson'] as const) {
    it(`streams it as ${format} while the server's heap stays flat`, async function () {
      this.timeout(60_000);
      // The server runs in this process. heapUsed alone mostly shows garbage not yet collected (the
      // young generation here is over 100 MB), so the heap is measured after a full collection,
      // at the start and every 8 MB of the download: what is left is what the server holds.
      collectGarbage();
      const start = process.memoryUsage().heapUsed;
      let peak = 0;
      let samples = 0;
      const response = await callApi(server, `/audit/logs/export?format=${format}&action=bulk.event`, root);
      expect(response.status).to.equal(200);
      const { bytes, lines } = await drain(response, (bytesSoFar) => {
        if (bytesSoFar < (samples + 1) * 8e6) return;
        samples += 1;
        collectGarbage();
        peak = Math.max(peak, process.memoryUsage().heapUsed - start);
      });
      expect(lines).to.equal(format === 'csv' ? ROWS + 1 : ROWS);
      expect(bytes).to.be.above(50e6);
      expect(samples).to.be.at.least(6);
      expect(peak, `held ${(peak / 1e6).toFixed(1)} MB while streaming ${(bytes / 1e6).toFixed(0)} MB`).to.be.below(16e6);
    });
  }
});
