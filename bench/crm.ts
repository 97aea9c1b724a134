// Scenario "crm" of the benchmark (`npm run bench -- crm`, and last in `npm run bench`; see
// bench/README.md): the read-heavy CRM API on an organization of 100,000 customers.
//
//   crm-list   GET /api/v1/customers?page=1&page_size=20
//   crm-get    GET /api/v1/customers/:id, rotating over CUSTOMER_IDS customers
//
// Latchkey (bench/servers/latchkey-server.ts, Bearer token of a backoffice user, who sees the whole
// organization) against the same statements served by plain Koa and pg for the same organization
// (bench/servers/bare-koa-crm-server.ts), on the same database, measured in alternating slices.
// bench/run.ts owns the database, the Redis prefix, the child processes and the cleanup; this file
// seeds the data, checks that both servers answer alike, measures, and writes
// bench/results/crm-latest.json.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

import { MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';

import type { BenchContext, Format, Measurement, Request, StartedChild } from './types.ts';
import { DEMO_ORGANIZATION, seedDemo } from '../src/cli/seeders/demo.seeder.ts';
import { ormOptions } from '../src/db/orm.ts';

const CUSTOMERS = 100_000;
/** How many customers GET /customers/:id rotates over. */
const CUSTOMER_IDS = 1000;
const LIST_PATH = '/api/v1/customers?page=1&page_size=20';
const CUSTOMER_PATH = '/api/v1/customers/';
const LOGIN_PATH = '/api/v1/auth/login';
const BACKOFFICE_EMAIL = `backoffice1@${DEMO_ORGANIZATION.slug}.example`;
/** Latchkey's access token format in this scenario (its default). */
const FORMAT: Format = 'opaque';

const LATCHKEY_SERVER = fileURLToPath(new URL('./servers/latchkey-server.ts', import.meta.url));
const BARE_KOA_SERVER = fileURLToPath(new URL('./servers/bare-koa-crm-server.ts', import.meta.url));
const RESULTS_FILE = new URL('./results/crm-latest.json', import.meta.url);

interface Seeded {
  organizationId: string;
  password: string;
  customers: number;
  interactions: number;
  customerIds: string[];
  /** One of customerIds with the most interactions: the detail both servers are compared on. */
  checkId: string;
  seconds: number;
}

interface ServerInfo {
  port: number;
  issuer: string;
}

// ---------------------------------------------------------------------------------------------
// Data

// One statement: CUSTOMERS rows from generate_series, spread over the demo users as creators and
// assignees (so the name joins find someone), over all stages, one every 30 s back from now.
const INSERT_CUSTOMERS = `
  insert into customer (id, organization_id, first_name, last_name, email, phone, company, address, notes, stage,
    created_by, assigned_to, created_at, updated_at)
  select gen_random_uuid(), $1::uuid, 'First' || n, 'Last' || n, 'customer' || n || '@bench.example',
    '+1 555 ' || lpad(n::text, 7, '0'), 'Company ' || (n % 5000), n || ' Bench Street, Springfield',
    case when n % 5 = 0 then 'Prefers email; renewal due next quarter.' end,
    (array['LEAD', 'IN_PROGRESS', 'ACTIVE'])[1 + n % 3],
    ($2::uuid[])[1 + n % cardinality($2::uuid[])],
    case when n % 10 <> 0 then ($2::uuid[])[1 + (n / 7) % cardinality($2::uuid[])] end,
    t.at, t.at
  from generate_series(1, $3::int) n cross join lateral (select now() - n * interval '30 seconds' as at) t`;

// 0 to 3 interactions per customer (1.5 on average), from a byte of its random id.
const INSERT_INTERACTIONS = `
  insert into customer_interaction (id, organization_id, customer_id, interaction_type, subject, description, created_by,
    created_at, updated_at)
  select gen_random_uuid(), c.organization_id, c.id, (array['CALL', 'EMAIL', 'MEETING', 'NOTE'])[1 + k % 4], 'Follow-up ' || k,
    'Talked about the renewal.', c.created_by, t.at, t.at
  from customer c
    cross join lateral generate_series(1, get_byte(uuid_send(c.id), 15) % 4) k
    cross join lateral (select least(now(), c.created_at + k * interval '1 hour') as at) t
  where c.organization_id = $1 and c.email like '%@bench.example'`;

/** The demo organization and its users (seedDemo), then CUSTOMERS customers and their interactions in bulk. */
async function seed(bench: BenchContext): Promise<Seeded> {
  const started = performance.now();
  const databaseUrl = `${bench.settings.pgUrl}/${bench.databaseName}`;
  const password = randomBytes(18).toString('base64url');
  const orm = await MikroORM.init(ormOptions(databaseUrl, { pool: { min: 0, max: 1 } }));
  try {
    const users = await orm.em.fork().transactional((em) => seedDemo(em, password));
    if (users.length === 0) throw new Error(`the organization "${DEMO_ORGANIZATION.slug}" exists already: the benchmark database is not fresh`);
  } finally {
    await orm.close();
  }

  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows: [organization] } = await client.query<{ id: string }>('select id from organization where slug = $1', [DEMO_ORGANIZATION.slug]);
    if (!organization) throw new Error(`no organization "${DEMO_ORGANIZATION.slug}" after seeding`);
    const { rows: users } = await client.query<{ id: string }>('select id from app_user where organization_id = $1 order by username', [organization.id]);
    const bulkStarted = performance.now();
    const inserted = await client.query(INSERT_CUSTOMERS, [organization.id, users.map((user) => user.id), CUSTOMERS]);
    const interactions = await client.query(INSERT_INTERACTIONS, [organization.id]);
    const bulkSeconds = (performance.now() - bulkStarted) / 1000;
    // Fresh statistics for the planner, and a visibility map for index-only counts.
    await client.query('vacuum (analyze) customer, customer_interaction');
    const { rows: ids } = await client.query<{ id: string; interactions: number }>(
      `select c.id, (select count(*)::int from customer_interaction i where i.customer_id = c.id) as interactions
       from customer c where c.organization_id = $1 and c.email like '%@bench.example' order by random() limit ${CUSTOMER_IDS}`, [organization.id]);
    const checkId = ids.reduce((best, row) => (row.interactions > best.interactions ? row : best), ids[0]!).id;
    const { rows: [totals] } = await client.query<{ customers: number; interactions: number }>(
      `select (select count(*)::int from customer where organization_id = $1) as customers,
        (select count(*)::int from customer_interaction where organization_id = $1) as interactions`, [organization.id]);
    const seconds = (performance.now() - started) / 1000;
    console.log(`  seeded organization "${DEMO_ORGANIZATION.slug}" (demo users and data, then ${inserted.rowCount} customers and`
      + ` ${interactions.rowCount} interactions in bulk in ${bench.fmt(bulkSeconds, 1)} s): ${totals!.customers} customers,`
      + ` ${totals!.interactions} interactions; ${bench.fmt(seconds, 1)} s in all, vacuum analyze included`);
    return {
      organizationId: organization.id, password, customers: totals!.customers, interactions: totals!.interactions,
      customerIds: ids.map((row) => row.id), checkId, seconds,
    };
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Requests

interface Query {
  scenario: 'crm-list' | 'crm-get';
  label: string;
  /** The path of the one request compared between the two servers before the load. */
  checkPath: string;
  request(server: ServerInfo, headers: Record<string, string>): Request;
}

function queries({ customerIds, checkId }: Pick<Seeded, 'customerIds' | 'checkId'>): Query[] {
  return [
    {
      scenario: 'crm-list',
      label: `GET ${LIST_PATH}`,
      checkPath: LIST_PATH,
      request: (server, headers) => ({ url: `${server.issuer}${LIST_PATH}`, method: 'GET', headers }),
    },
    {
      scenario: 'crm-get',
      label: `GET ${CUSTOMER_PATH}:id (${customerIds.length} ids in turn)`,
      checkPath: `${CUSTOMER_PATH}${checkId}`,
      request: (server, headers) => {
        let next = 0;
        return {
          url: `${server.issuer}${CUSTOMER_PATH}${customerIds[0]}`,
          method: 'GET',
          headers,
          requests: [{
            setupRequest: (request) => {
              const id = customerIds[next]!;
              next = (next + 1) % customerIds.length;
              return { ...request, path: `${CUSTOMER_PATH}${id}` };
            },
          }],
        };
      },
    },
  ];
}

async function login(server: ServerInfo, password: string): Promise<string> {
  const response = await fetch(`${server.issuer}${LOGIN_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ email: BACKOFFICE_EMAIL, password }),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`Latchkey: POST ${LOGIN_PATH} as ${BACKOFFICE_EMAIL} answered ${response.status}: ${text}`);
  const body = JSON.parse(text) as { access_token?: string; scope?: string; user?: { roles?: unknown } };
  if (!body.access_token) throw new Error(`Latchkey: no access_token in ${text}`);
  console.log(`  Latchkey: signed in as ${BACKOFFICE_EMAIL}, scope "${body.scope}"`);
  return body.access_token;
}

async function getJson(url: string, headers: Record<string, string>, label: string): Promise<Record<string, unknown>> {
  const response = await fetch(url, { headers });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${label}: GET ${url} answered ${response.status}: ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** Page links name the server they came from; compare them without it. */
function withoutOrigin(body: Record<string, unknown>): Record<string, unknown> {
  const relative = (link: unknown) => {
    if (typeof link !== 'string') return link;
    const url = new URL(link);
    return `${url.pathname}${url.search}`;
  };
  return 'next' in body ? { ...body, next: relative(body.next), previous: relative(body.previous) } : body;
}

/** Before any load: both servers answer 200 with the same JSON, so they do the same work. */
async function checkSameAnswer(query: Query, bare: ServerInfo, latchkey: ServerInfo, latchkeyHeaders: Record<string, string>): Promise<void> {
  const bareBody = withoutOrigin(await getJson(`${bare.issuer}${query.checkPath}`, { accept: 'application/json' }, 'bare Koa + pg'));
  const latchkeyBody = withoutOrigin(await getJson(`${latchkey.issuer}${query.checkPath}`, latchkeyHeaders, 'Latchkey'));
  if (!isDeepStrictEqual(bareBody, latchkeyBody)) {
    throw new Error(`${query.label}: bare Koa + pg and Latchkey answer differently (has the SQL in customers.service.ts changed?)\n`
      + `bare:     ${JSON.stringify(bareBody).slice(0, 2000)}\nLatchkey: ${JSON.stringify(latchkeyBody).slice(0, 2000)}`);
  }
  const results = Array.isArray(bareBody.results) ? `${bareBody.results.length} of ${String(bareBody.count)} customers`
    : `${Array.isArray(bareBody.interactions) ? bareBody.interactions.length : 0} interactions`;
  console.log(`  ${query.scenario}: same answer from both (${results}, ${JSON.stringify(bareBody).length} bytes)`);
}

// ---------------------------------------------------------------------------------------------
// Run and report

export interface CrmRatio {
  scenario: Query['scenario'];
  requestsPerSecond: number;
  p50: number;
  p99: number;
  /** bare CPU per request / Latchkey CPU per request. */
  cpuEfficiency?: number;
}

function ratioOf(scenario: Query['scenario'], measurements: Measurement[]): CrmRatio | undefined {
  const bare = measurements.find((m) => m.scenario === scenario && m.target === 'bare-koa');
  const latchkey = measurements.find((m) => m.scenario === scenario && m.target === 'latchkey');
  if (!bare || !latchkey) return undefined;
  return {
    scenario,
    requestsPerSecond: latchkey.requestsPerSecond / bare.requestsPerSecond,
    p50: latchkey.latencyMs.p50 / bare.latencyMs.p50,
    p99: latchkey.latencyMs.p99 / bare.latencyMs.p99,
    cpuEfficiency: bare.serverCpuMicrosPerRequest && latchkey.serverCpuMicrosPerRequest
      ? bare.serverCpuMicrosPerRequest / latchkey.serverCpuMicrosPerRequest
      : undefined,
  };
}

/** Seeds, then measures each query on a fresh pair of servers (so a CPU profile shows one query). */
export async function benchCrm(bench: BenchContext): Promise<void> {
  console.log(`\n[crm] ${CUSTOMERS} customers in one organization; Latchkey (${FORMAT} tokens, backoffice user) and bare Koa + pg`);
  const seeded = await seed(bench);
  const databaseUrl = `${bench.settings.pgUrl}/${bench.databaseName}`;
  const measurements: Measurement[] = [];

  for (const query of queries(seeded)) {
    const started: StartedChild<ServerInfo>[] = [];
    try {
      const bare = await bench.startChild<ServerInfo>(`bare-koa-${query.scenario}`, BARE_KOA_SERVER, [], {
        BENCH_DATABASE_URL: databaseUrl,
        BENCH_ORGANIZATION_ID: seeded.organizationId,
      });
      started.push(bare);
      const latchkey = await bench.startChild<ServerInfo>(`latchkey-${query.scenario}`, LATCHKEY_SERVER, ['serve'], {
        BENCH_DATABASE_URL: databaseUrl,
        BENCH_REDIS_URL: bench.settings.redisUrl,
        BENCH_REDIS_PREFIX: bench.redisPrefix,
        BENCH_TOKEN_FORMAT: FORMAT,
      });
      started.push(latchkey);
      const latchkeyHeaders = { authorization: `Bearer ${await login(latchkey.info, seeded.password)}`, accept: 'application/json' };
      await checkSameAnswer(query, bare.info, latchkey.info, latchkeyHeaders);
      measurements.push(...await bench.measure(query.scenario, FORMAT, [
        { target: 'bare-koa', request: query.request(bare.info, { accept: 'application/json' }), server: bare },
        { target: 'latchkey', request: query.request(latchkey.info, latchkeyHeaders), server: latchkey },
      ]));
    } catch (error) {
      const stderr = started.map((child) => child.stderr()).filter(Boolean).join('\n');
      throw stderr ? new Error(`${(error as Error).message}\nserver stderr:\n${stderr}`, { cause: error }) : error;
    } finally {
      await Promise.all(started.map((child) => bench.stopChild(child.child)));
    }
  }

  const { fmt } = bench;
  const labels = Object.fromEntries(queries(seeded).map((query) => [query.scenario, query.label]));
  const ratios = (['crm-list', 'crm-get'] as const).flatMap((scenario) => ratioOf(scenario, measurements) ?? []);
  console.log(`\nScenario "crm": ${seeded.customers} customers, ${seeded.interactions} interactions in organization "${DEMO_ORGANIZATION.slug}";`
    + ` Latchkey with a backoffice user's Bearer token (${FORMAT}), bare Koa + pg with none`);
  for (const [scenario, label] of Object.entries(labels)) console.log(`  ${scenario}: ${label}`);
  console.log(bench.table(
    ['query', 'target', 'req/s', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'non-2xx', 'errors'],
    measurements.map((m) => [
      m.scenario, m.target === 'latchkey' ? 'Latchkey' : 'bare Koa + pg', fmt(m.requestsPerSecond, 0), fmt(m.latencyMs.p50, 2),
      fmt(m.latencyMs.p99, 2), fmt(m.serverCpuMicrosPerRequest ?? Number.NaN, 0), String(m.non2xx), String(m.errors),
    ]),
  ));
  console.log('\n  Latchkey / bare Koa + pg, same run, same machine:');
  for (const ratio of ratios) {
    console.log(`    ${ratio.scenario.padEnd(8)}  req/s ${ratio.requestsPerSecond.toFixed(2)}x   (latency p50 ${ratio.p50.toFixed(2)}x, p99 ${ratio.p99.toFixed(2)}x;`
      + ` server CPU per request: bare/Latchkey ${ratio.cpuEfficiency === undefined ? 'n/a' : `${ratio.cpuEfficiency.toFixed(2)}x`})`);
  }

  const report = {
    ...bench.runDescription(),
    seed: { organization: DEMO_ORGANIZATION.slug, customers: seeded.customers, interactions: seeded.interactions, rotatedCustomerIds: seeded.customerIds.length, seconds: seeded.seconds },
    queries: labels,
    crm: measurements,
    ratios,
  };
  await mkdir(new URL('./', RESULTS_FILE), { recursive: true });
  await writeFile(RESULTS_FILE, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nresults written to ${fileURLToPath(RESULTS_FILE)}`);
}
