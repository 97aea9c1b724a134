// The reference of the /me and CRM rows (bench/me.ts, bench/crm.ts): the same reads served by
// plain Koa and a `pg` Pool, for one fixed user and organization. No authentication, no permission
// check, no validation, no logging or metrics: whatever Latchkey does on top of these statements
// is what the ratio measures.
//
// GET /api/v1/me runs the SQL of findActiveProfile and its row-to-JSON mapping, imported from
// src/services/users.service.ts (`profileColumns`, `profileFrom`), so the two cannot drift apart.
// The customer reads run the SQL CustomersService runs for a caller who sees the whole organization
// (src/services/customers.service.ts, visibility from src/services/crm-access.ts), written out
// here; bench/crm.ts checks before any load that both servers give the same answers, so that SQL
// cannot drift apart unnoticed either.
//
//   node bench/servers/bare-koa-server.ts     prints "bench-ready {port, issuer}"
//
//   GET /api/v1/me                                the profile of BENCH_USER_ID
//   GET /api/v1/customers?page=1&page_size=20     { count, page, page_size, next, previous, results }
//   GET /api/v1/customers/:id                     the customer, its newest 100 interactions, interaction_count
//
// Input (environment): BENCH_DATABASE_URL, BENCH_ORGANIZATION_ID, BENCH_USER_ID, BENCH_POOL_SIZE
// (default 10, as Latchkey's MikroORM pool).
import { createServer } from 'node:http';

import Koa, { type Context } from 'koa';
import pg from 'pg';

import { profileColumns, profileFrom, type ProfileRow } from '../../src/services/users.service.ts';
import { failAndExit, listenOnLoopback, report, stopOnSignal } from './lifecycle.ts';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

// customers.service.ts COLUMNS and FROM, with crm-access.ts displayNameSql written out.
const displayName = (alias: string) => `coalesce(nullif(trim(${alias}.first_name || ' ' || ${alias}.last_name), ''), ${alias}.email)`;
const COLUMNS = `c.id, c.organization_id, c.first_name, c.last_name, c.email, c.phone, c.company, c.address, c.notes, c.stage,
  c.created_by, ${displayName('cu')} as created_by_name, c.assigned_to, ${displayName('au')} as assigned_to_name,
  c.created_at, c.updated_at`;
const FROM = 'customer c left join app_user cu on cu.id = c.created_by left join app_user au on au.id = c.assigned_to';
// interactions.service.ts INTERACTION_COLUMNS and INTERACTION_FROM.
const INTERACTION_COLUMNS = `i.id, i.organization_id, i.customer_id as customer, trim(c.first_name || ' ' || c.last_name) as customer_name,
  i.interaction_type, i.subject, i.description, i.created_by, ${displayName('iu')} as created_by_name, i.created_at, i.updated_at`;
const INTERACTION_FROM = 'customer_interaction i join customer c on c.id = i.customer_id left join app_user iu on iu.id = i.created_by';
const EMBEDDED_INTERACTIONS = 100;

const LIST_SQL = `select ${COLUMNS} from ${FROM} where c.organization_id = $1 order by c.created_at desc, c.id desc limit $2 offset $3`;
const COUNT_SQL = 'select count(*)::int as count from customer c where c.organization_id = $1';
const CUSTOMER_SQL = `select ${COLUMNS} from ${FROM} where c.id = $1 and c.organization_id = $2`;
const INTERACTIONS_SQL = `select ${INTERACTION_COLUMNS} from ${INTERACTION_FROM} where i.customer_id = $1 and i.organization_id = $2
  order by i.created_at desc, i.id desc limit $3`;
const INTERACTION_COUNT_SQL = `select count(*)::int as count from customer_interaction i join customer c on c.id = i.customer_id
  where i.customer_id = $1 and i.organization_id = $2`;

// users.service.ts findActiveProfile, with pg's placeholder.
const PROFILE_SQL = `${profileColumns} where u.id = $1 and u.is_active and o.is_active group by u.id, o.id`;

const ME_PATH = '/api/v1/me';
const CUSTOMERS_PATH = '/api/v1/customers';
const CUSTOMER_PATH = /^\/api\/v1\/customers\/([^/]+)$/;

async function main(): Promise<void> {
  const organizationId = required('BENCH_ORGANIZATION_ID');
  const userId = required('BENCH_USER_ID');
  const pool = new pg.Pool({ connectionString: required('BENCH_DATABASE_URL'), max: Number(process.env.BENCH_POOL_SIZE ?? 10) });

  const server = createServer();
  const port = await listenOnLoopback(server);
  const issuer = `http://127.0.0.1:${port}`;

  /** Same links as src/http/pagination.ts: the request's path and query, with another page. */
  const pageLink = (ctx: Context, page: number) => {
    const url = new URL(ctx.path, issuer);
    for (const [name, value] of Object.entries(ctx.query)) if (typeof value === 'string') url.searchParams.set(name, value);
    url.searchParams.set('page', String(page));
    return url.href;
  };

  const app = new Koa();
  app.silent = true;
  app.use(async (ctx) => {
    if (ctx.method !== 'GET') return;
    if (ctx.path === ME_PATH) {
      const row = (await pool.query<ProfileRow>(PROFILE_SQL, [userId])).rows[0];
      if (row) ctx.body = profileFrom(row);
      return;
    }
    if (ctx.path === CUSTOMERS_PATH) {
      const page = Number(ctx.query.page ?? 1);
      const pageSize = Number(ctx.query.page_size ?? 20);
      // Both at once, as CustomersService.list does.
      const [rows, total] = await Promise.all([
        pool.query(LIST_SQL, [organizationId, pageSize, (page - 1) * pageSize]),
        pool.query<{ count: number }>(COUNT_SQL, [organizationId]),
      ]);
      const count = total.rows[0]?.count ?? 0;
      const lastPage = Math.max(1, Math.ceil(count / pageSize));
      ctx.body = {
        count,
        page,
        page_size: pageSize,
        next: page < lastPage ? pageLink(ctx, page + 1) : null,
        previous: page > 1 ? pageLink(ctx, Math.min(page - 1, lastPage)) : null,
        results: rows.rows,
      };
      return;
    }
    const match = CUSTOMER_PATH.exec(ctx.path);
    if (match) {
      const id = match[1]!;
      // One after the other, as CustomersService.get does.
      const customer = (await pool.query(CUSTOMER_SQL, [id, organizationId])).rows[0] as Record<string, unknown> | undefined;
      if (!customer) return; // 404
      const interactions = await pool.query(INTERACTIONS_SQL, [id, organizationId, EMBEDDED_INTERACTIONS]);
      const total = await pool.query<{ count: number }>(INTERACTION_COUNT_SQL, [id, organizationId]);
      ctx.body = { ...customer, interactions: interactions.rows, interaction_count: total.rows[0]?.count ?? 0 };
    }
  });

  server.on('request', app.callback());
  stopOnSignal(server, () => pool.end());
  report({ port, issuer });
}

main().catch(failAndExit);
