// The benchmark's data, on the run's fresh database (after bench/servers/latchkey-server.ts
// `prepare` has migrated it): the demo organization (`seedDemo`: one user per organization role,
// a few customers with their history), grown to DEMO_CUSTOMERS customers for the list row of the
// goals; scenario "crm-large" grows the same organization to LARGE_CUSTOMERS later in the run.
// Bulk rows come from `insert ... select ... generate_series`, spread over the demo users as
// creators and assignees, with 0 to 3 interactions each, then `vacuum analyze`.
import { randomBytes } from 'node:crypto';

import { MikroORM } from '@mikro-orm/postgresql';
import type pg from 'pg';

import { DEMO_ORGANIZATION, seedDemo } from '../src/cli/seeders/demo.seeder.ts';
import { ormOptions } from '../src/db/orm.ts';
import type { Prepared } from './types.ts';
import { onPostgres } from './shared.ts';

/** The organization size of the list row of the performance goals. */
export const DEMO_CUSTOMERS = 200;
/** The organization size of the extra scenario "crm-large". */
export const LARGE_CUSTOMERS = 100_000;
/** A backoffice user sees the whole organization's customers. */
export const DEMO_EMAIL = `backoffice1@${DEMO_ORGANIZATION.slug}.example`;

// Customers number `from` to `to` (inclusive), one every 30 s back from now, over all stages.
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
  from generate_series($3::int, $4::int) n cross join lateral (select now() - n * interval '30 seconds' as at) t`;

// 0 to 3 interactions (1.5 on average, from a byte of the random id) for each bulk customer that
// has none yet.
const INSERT_INTERACTIONS = `
  insert into customer_interaction (id, organization_id, customer_id, interaction_type, subject, description, created_by,
    created_at, updated_at)
  select gen_random_uuid(), c.organization_id, c.id, (array['CALL', 'EMAIL', 'MEETING', 'NOTE'])[1 + k % 4], 'Follow-up ' || k,
    'Talked about the renewal.', c.created_by, t.at, t.at
  from customer c
    cross join lateral generate_series(1, get_byte(uuid_send(c.id), 15) % 4) k
    cross join lateral (select least(now(), c.created_at + k * interval '1 hour') as at) t
  where c.organization_id = $1 and c.email like '%@bench.example'
    and not exists (select 1 from customer_interaction i where i.customer_id = c.id)`;


async function customerCount(client: pg.Client, organizationId: string): Promise<number> {
  const { rows: [row] } = await client.query<{ count: number }>('select count(*)::int as count from customer where organization_id = $1', [organizationId]);
  return row?.count ?? 0;
}

/** Adds bulk customers (and their interactions) until the organization holds `total`; returns the count. */
export async function growOrganization(databaseUrl: string, organizationId: string, total: number): Promise<{ customers: number; interactions: number; seconds: number }> {
  const started = performance.now();
  return onPostgres(databaseUrl, async (client) => {
    const existing = await customerCount(client, organizationId);
    const { rows: [bulk] } = await client.query<{ count: number }>(
      `select count(*)::int as count from customer where organization_id = $1 and email like '%@bench.example'`, [organizationId]);
    const { rows: users } = await client.query<{ id: string }>('select id from app_user where organization_id = $1 order by username', [organizationId]);
    if (existing < total) {
      const from = (bulk?.count ?? 0) + 1;
      await client.query(INSERT_CUSTOMERS, [organizationId, users.map((user) => user.id), from, from + (total - existing) - 1]);
      await client.query(INSERT_INTERACTIONS, [organizationId]);
      // Fresh statistics for the planner, and a visibility map for index-only counts.
      await client.query('vacuum (analyze) customer, customer_interaction');
    }
    const { rows: [totals] } = await client.query<{ customers: number; interactions: number }>(
      `select (select count(*)::int from customer where organization_id = $1) as customers,
        (select count(*)::int from customer_interaction where organization_id = $1) as interactions`, [organizationId]);
    return { customers: totals!.customers, interactions: totals!.interactions, seconds: (performance.now() - started) / 1000 };
  });
}

/** The demo organization with DEMO_CUSTOMERS customers; its users share one random password. */
export async function seedBenchData(databaseUrl: string): Promise<Prepared['demo']> {
  const password = randomBytes(18).toString('base64url');
  const orm = await MikroORM.init(ormOptions(databaseUrl, { pool: { min: 0, max: 1 } }));
  try {
    const users = await orm.em.fork().transactional((em) => seedDemo(em, password));
    if (users.length === 0) throw new Error(`the organization "${DEMO_ORGANIZATION.slug}" exists already: the benchmark database is not fresh`);
  } finally {
    await orm.close();
  }
  const ids = await onPostgres(databaseUrl, async (client) => {
    const { rows: [organization] } = await client.query<{ id: string }>('select id from organization where slug = $1', [DEMO_ORGANIZATION.slug]);
    const { rows: [user] } = await client.query<{ id: string }>('select id from app_user where email = $1', [DEMO_EMAIL]);
    if (!organization || !user) throw new Error(`no organization "${DEMO_ORGANIZATION.slug}" or no ${DEMO_EMAIL} after seeding`);
    return { organizationId: organization.id, userId: user.id };
  });
  const grown = await growOrganization(databaseUrl, ids.organizationId, DEMO_CUSTOMERS);
  if (grown.customers !== DEMO_CUSTOMERS) throw new Error(`the demo organization holds ${grown.customers} customers, not ${DEMO_CUSTOMERS}`);
  return { ...ids, email: DEMO_EMAIL, password, customers: grown.customers };
}

/** Up to `limit` random bulk customers of the organization; the first has the most interactions. */
export async function sampleCustomers(databaseUrl: string, organizationId: string, limit: number): Promise<string[]> {
  return onPostgres(databaseUrl, async (client) => {
    const { rows } = await client.query<{ id: string; interactions: number }>(
      `select c.id, (select count(*)::int from customer_interaction i where i.customer_id = c.id) as interactions
       from customer c where c.organization_id = $1 and c.email like '%@bench.example' order by random() limit $2`, [organizationId, limit]);
    const most = rows.reduce((best, row) => (row.interactions > best.interactions ? row : best), rows[0]!);
    return [most.id, ...rows.filter((row) => row !== most).map((row) => row.id)];
  });
}
