// The CRM reads of the benchmark (bench/README.md), Latchkey with the demo backoffice user's opaque
// Bearer token (the backoffice role sees the whole organization) against bare Koa + pg running the
// same statements for the same organization (bench/servers/bare-koa-server.ts), on the same
// database, in alternating slices:
//
//   customers   GET /api/v1/customers?page_size=20 in the demo organization of 200 customers
//               (bench/data.ts): the row of the performance goals
//   crm-large   the organization grown to 100,000 customers, then
//                 crm-list  GET /api/v1/customers?page=1&page_size=20
//                 crm-get   GET /api/v1/customers/:id, rotating over CUSTOMER_IDS customers
//
// Before any load both servers must answer the same JSON (the page links' origin aside), so a
// change to the SQL in src/services/customers.service.ts not mirrored in the bare server fails the
// run. Each query gets a fresh pair of servers, so a CPU profile shows that query alone.
import { isDeepStrictEqual } from 'node:util';

import type { Format, Measurement, Prepared, Request } from './types.ts';
import { BARE_KOA_SERVER, LATCHKEY_SERVER, databaseUrl, fetchJson, fmt, latchkeyEnv, measure, withServers, type LatchkeyInfo } from './harness.ts';
import { LARGE_CUSTOMERS, growOrganization, sampleCustomers } from './data.ts';
import { signIn } from './login.ts';

/** How many customers GET /customers/:id rotates over. */
const CUSTOMER_IDS = 1000;
const CUSTOMER_PATH = '/api/v1/customers/';
/** Latchkey's access token format here (its default). */
const FORMAT: Format = 'opaque';

interface Query {
  scenario: 'customers' | 'crm-list' | 'crm-get';
  label: string;
  /** The path of the one request compared between the two servers before the load. */
  checkPath: string;
  request(server: { issuer: string }, headers: Record<string, string>): Request;
}

function listQuery(scenario: 'customers' | 'crm-list', path: string): Query {
  return { scenario, label: `GET ${path}`, checkPath: path, request: (server, headers) => ({ url: `${server.issuer}${path}`, method: 'GET', headers }) };
}

/** GET /customers/:id over `customerIds` in turn (autocannon setupRequest); the first is the one compared. */
function getQuery(customerIds: string[]): Query {
  return {
    scenario: 'crm-get',
    label: `GET ${CUSTOMER_PATH}:id (${customerIds.length} ids in turn)`,
    checkPath: `${CUSTOMER_PATH}${customerIds[0]}`,
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
  };
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
async function checkSameAnswer(query: Query, bare: { issuer: string }, latchkey: { issuer: string }, latchkeyHeaders: Record<string, string>): Promise<void> {
  const bareBody = withoutOrigin(await fetchJson({ url: `${bare.issuer}${query.checkPath}`, method: 'GET', headers: { accept: 'application/json' } }, 'bare Koa + pg'));
  const latchkeyBody = withoutOrigin(await fetchJson({ url: `${latchkey.issuer}${query.checkPath}`, method: 'GET', headers: latchkeyHeaders }, 'Latchkey'));
  if (!isDeepStrictEqual(bareBody, latchkeyBody)) {
    throw new Error(`${query.label}: bare Koa + pg and Latchkey answer differently (has the SQL in customers.service.ts changed?)\n`
      + `bare:     ${JSON.stringify(bareBody).slice(0, 2000)}\nLatchkey: ${JSON.stringify(latchkeyBody).slice(0, 2000)}`);
  }
  const results = Array.isArray(bareBody.results) ? `${bareBody.results.length} of ${String(bareBody.count)} customers`
    : `${Array.isArray(bareBody.interactions) ? bareBody.interactions.length : 0} interactions`;
  console.log(`  ${query.scenario}: same answer from both (${results}, ${JSON.stringify(bareBody).length} bytes)`);
}

/** Measures each query on a fresh pair of servers. */
async function measureQueries(prepared: Prepared, queries: Query[]): Promise<Measurement[]> {
  const { demo } = prepared;
  const measurements: Measurement[] = [];
  for (const query of queries) {
    measurements.push(...await withServers(async (start) => {
      const bare = await start<{ issuer: string }>(`bare-koa-${query.scenario}`, BARE_KOA_SERVER, [], {
        BENCH_DATABASE_URL: databaseUrl, BENCH_ORGANIZATION_ID: demo.organizationId, BENCH_USER_ID: demo.userId,
      });
      const latchkey = await start<LatchkeyInfo>(`latchkey-${query.scenario}`, LATCHKEY_SERVER, ['serve'], latchkeyEnv(FORMAT));
      const latchkeyHeaders = { authorization: `Bearer ${await signIn(latchkey.info, demo, FORMAT, 'Latchkey')}`, accept: 'application/json' };
      await checkSameAnswer(query, bare.info, latchkey.info, latchkeyHeaders);
      return measure(query.scenario, FORMAT, [
        { target: 'bare-koa', request: query.request(bare.info, { accept: 'application/json' }), server: bare },
        { target: 'latchkey', request: query.request(latchkey.info, latchkeyHeaders), server: latchkey },
      ]);
    }));
  }
  return measurements;
}

/** The goal row: the list of an organization of 200 customers. */
export async function benchCustomers(prepared: Prepared): Promise<Measurement[]> {
  const query = listQuery('customers', '/api/v1/customers?page_size=20');
  console.log(`\n[customers] ${query.label} in an organization of ${prepared.demo.customers} customers (${prepared.demo.email}); bare Koa + pg runs the same SQL`);
  return measureQueries(prepared, [query]);
}

/** The extra rows: list and detail reads after the organization has grown to LARGE_CUSTOMERS. */
export async function benchCrmLarge(prepared: Prepared): Promise<Measurement[]> {
  console.log(`\n[crm-large] the demo organization grown to ${LARGE_CUSTOMERS} customers`);
  const grown = await growOrganization(databaseUrl, prepared.demo.organizationId, LARGE_CUSTOMERS);
  console.log(`  ${grown.customers} customers, ${grown.interactions} interactions (${fmt(grown.seconds, 1)} s, vacuum analyze included)`);
  const customerIds = await sampleCustomers(databaseUrl, prepared.demo.organizationId, CUSTOMER_IDS);
  return measureQueries(prepared, [listQuery('crm-list', '/api/v1/customers?page=1&page_size=20'), getQuery(customerIds)]);
}
