// Cleanup benchmark (`npm run bench:cleanup`; figures and reading in bench/CLEANUP.md).
//
// Question: after a million expired tokens, does the cleanup job keep up, and does the token
// endpoint's rate move while it works? Steps:
//
//   1. Latchkey (`node src/main.ts`, its own process, cleanup timer off) on a fresh database.
//   2. Token endpoint rate, two ways: client_credentials at /oauth/token (its artefacts live in
//      Redis) and refresh-token rotation through /api/v1/auth/refresh (the provider's refresh_token
//      grant: reads, consumes and writes oidc_artifact rows, the table the job cleans).
//   3. 1,000,000 expired refresh tokens (real payloads) inserted with generate_series.
//   4. Rates again with the million in the table; then while the job deletes them (the job runs in
//      a third process, `bench/cleanup.ts cleanup-worker`, as a server process would run it), in
//      slices of BENCH_SLICE seconds with the job running and paused in turn, so that the shared
//      machine's changing load weighs on both alike; then after it is done.
//   5. Redis: every key the load left under the prefix has a TTL (its growth is bounded).
//
// Environment: BENCH_DURATION (seconds per measurement, default 8), BENCH_SLICE (seconds per slice
// while the job runs, default 3), BENCH_CONNECTIONS (default 10),
// BENCH_EXPIRED_ROWS (default 1000000), BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432),
// BENCH_REDIS_URL (default redis://127.0.0.1:6379). The database and the Redis prefix it makes are
// removed at the end, also after a failure.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import autocannon from 'autocannon';
import { MikroORM } from '@mikro-orm/postgresql';
import { Redis } from 'ioredis';

import { ormOptions } from '../src/db/orm.ts';
import { CLEANUP_TARGETS, DEFAULT_BATCH_SIZE, ExpiredRowsCleanup } from '../src/services/cleanup.service.ts';
import { onPostgres, positiveInteger } from './shared.ts';


const DURATION = positiveInteger('BENCH_DURATION', 8);
const SLICE = positiveInteger('BENCH_SLICE', 3);
const CONNECTIONS = positiveInteger('BENCH_CONNECTIONS', 10);
const EXPIRED_ROWS = positiveInteger('BENCH_EXPIRED_ROWS', 1_000_000);
const PG_URL = (process.env.BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432').replace(/\/+$/, '');
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN = { email: 'bench@example.com', password: 'bench-cleanup-password-1' };
const WORKER_PREFIX = 'cleanup-progress ';
const RESULTS = fileURLToPath(new URL('./results/cleanup-latest.json', import.meta.url));
const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const SELF = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------------------------------------
// The worker: the cleanup job in its own process, reporting progress as JSON lines.

async function cleanupWorker(): Promise<void> {
  const orm = await MikroORM.init(ormOptions(process.env.BENCH_DATABASE_URL!));
  let paused = false;
  createInterface({ input: process.stdin }).on('line', (line) => { paused = line === 'pause'; });
  let working = 0;
  let deleted = 0;
  const say = (extra: Record<string, unknown> = {}) => process.stdout.write(`${WORKER_PREFIX}${JSON.stringify({ deleted, seconds: working / 1000, ...extra })}\n`);
  // Short runs, so that a pause takes effect within one batch; runs go on where the last stopped.
  const job = new ExpiredRowsCleanup(orm, { budgetMs: 200, onDeleted: (_table, rows) => { deleted += rows; } });
  const outcomes: Record<string, number> = {};
  for (let run = 0; run < 100_000; run += 1) {
    while (paused) await new Promise((resolve) => setTimeout(resolve, 20));
    const started = performance.now();
    const { outcome } = await job.run();
    working += performance.now() - started;
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    say();
    if (outcome === 'done') break;
  }
  say({ outcomes, finished: true });
  await orm.close();
  // stdin (the pause/resume channel) would keep the process alive.
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// The driver.

interface Phase {
  phase: string; grant: 'client_credentials' | 'refresh_token'; requestsPerSecond: number; p50: number; p99: number; errors: number; non2xx: number;
  /** Rows the job deleted while this load ran (the "during cleanup" phase). */
  deletedWhileMeasured?: number;
}

const runId = randomBytes(4).toString('hex');
const databaseName = `latchkey_cleanup_${runId}`;
const databaseUrl = `${PG_URL}/${databaseName}`;
const redisPrefix = `bench-cleanup:${runId}:`;
const children = new Set<ChildProcess>();
process.on('exit', () => { for (const child of children) child.kill('SIGKILL'); });


function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function spawnChild(args: string[], env: Record<string, string>, onLine: (line: string) => void): ChildProcess {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', (line) => process.stderr.write(`  [child] ${line}\n`));
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

async function startLatchkey(): Promise<{ child: ChildProcess; url: string; clientId: string; clientSecret: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child = spawnChild([MAIN], {
    NODE_ENV: 'production', DATABASE_URL: databaseUrl, REDIS_URL, REDIS_KEY_PREFIX: redisPrefix, PORT: String(port), HOST: '127.0.0.1', ISSUER: url,
    ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, METRICS_PORT: '0', LOG_LEVEL: 'warn',
    // The job runs in its own process below, at a known time; the limits must not throttle one load generator.
    CLEANUP_INTERVAL_SECONDS: '0', TOKEN_RATE_LIMIT: '1000000', LOGIN_RATE_LIMIT: '1000000',
  }, (line) => { output += `${line}\n`; });
  for (let waited = 0; waited < 600; waited += 1) {
    if (child.exitCode !== null) throw new Error(`Latchkey exited (${child.exitCode}):\n${output}`);
    const ready = await fetch(`${url}/.well-known/openid-configuration`).then((response) => response.ok, () => false);
    const clientId = /client_id:\s+(\S+)/.exec(output)?.[1];
    const clientSecret = /client_secret:\s+(\S+)/.exec(output)?.[1];
    if (ready && clientId && clientSecret) return { child, url, clientId, clientSecret };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Latchkey did not start within 60 s:\n${output}`);
}

async function signIn(url: string): Promise<string> {
  const response = await fetch(`${url}/api/v1/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADMIN),
  });
  if (response.status !== 200) throw new Error(`login answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { refresh_token: string }).refresh_token;
}

function load(options: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ connections: CONNECTIONS, pipelining: 1, ...options }, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

/** Rates of both grants, refresh first (it touches the table the job cleans); `during` reports how far the job was when each load started and ended. */
async function measure(server: { url: string; clientId: string; clientSecret: string }, refreshTokens: string[], phase: string, during?: () => number, seconds = DURATION): Promise<Phase[]> {
  const basic = Buffer.from(`${encodeURIComponent(server.clientId)}:${encodeURIComponent(server.clientSecret)}`).toString('base64');
  const rows: Phase[] = [];
  const record = (grant: Phase['grant'], result: autocannon.Result, deletedAtStart?: number) => rows.push({
    phase, grant, requestsPerSecond: Math.round(result.requests.average), p50: result.latency.p50, p99: result.latency.p99, errors: result.errors, non2xx: result.non2xx,
    ...(during ? { deletedWhileMeasured: during() - deletedAtStart! } : {}),
  });
  // Each refresh consumes one token and answers its successor: a shared queue keeps every
  // connection on a live chain (a token used twice would be a replay and end its grant).
  let deletedAtStart = during?.();
  record('refresh_token', await load({
    duration: seconds,
    url: `${server.url}/api/v1/auth/refresh`,
    requests: [{
      method: 'POST', headers: { 'content-type': 'application/json' },
      setupRequest: (request) => ({ ...request, body: JSON.stringify({ refresh_token: refreshTokens.shift() }) }),
      onResponse: (status, body) => {
        if (status === 200) refreshTokens.push((JSON.parse(body) as { refresh_token: string }).refresh_token);
      },
    }],
  }), deletedAtStart);
  // A request still in flight when the load stopped took its chain with it: new sign-ins replace them.
  while (refreshTokens.length < CONNECTIONS * 2) refreshTokens.push(await signIn(server.url));
  deletedAtStart = during?.();
  record('client_credentials', await load({
    duration: seconds,
    url: `${server.url}/oauth/token`, method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&scope=crm%3Aread',
  }), deletedAtStart);
  return rows;
}

async function tableSize(): Promise<{ rows: number; expired: number; tableMb: number; indexesMb: number; deadRows: number }> {
  return onPostgres(databaseUrl, async (client) => {
    const { rows } = await client.query<{ rows: number; expired: number; table_mb: number; indexes_mb: number; dead: number }>(
      `select (select count(*)::int from oidc_artifact) as rows,
              (select count(*)::int from oidc_artifact where expires_at < now()) as expired,
              round(pg_table_size('oidc_artifact') / 1048576.0, 1)::float as table_mb,
              round(pg_indexes_size('oidc_artifact') / 1048576.0, 1)::float as indexes_mb,
              (select n_dead_tup::int from pg_stat_user_tables where relname = 'oidc_artifact') as dead`);
    const row = rows[0]!;
    return { rows: row.rows, expired: row.expired, tableMb: row.table_mb, indexesMb: row.indexes_mb, deadRows: row.dead };
  });
}

async function redisKeys(): Promise<{ keys: number; withoutTtl: string[]; maxTtlSeconds: number; byKind: Record<string, number> }> {
  const redis = new Redis(REDIS_URL);
  const withoutTtl: string[] = [];
  const byKind: Record<string, number> = {};
  let keys = 0;
  let maxTtlSeconds = 0;
  try {
    for await (const batch of redis.scanStream({ match: `${redisPrefix}*`, count: 1000 }) as AsyncIterable<string[]>) {
      if (batch.length === 0) continue;
      const ttls = await Promise.all(batch.map((key) => redis.ttl(key)));
      batch.forEach((key, index) => {
        keys += 1;
        const kind = key.slice(redisPrefix.length).split(':').slice(0, 2).join(':');
        byKind[kind] = (byKind[kind] ?? 0) + 1;
        if (ttls[index]! < 0) withoutTtl.push(key.slice(redisPrefix.length));
        maxTtlSeconds = Math.max(maxTtlSeconds, ttls[index]!);
      });
    }
  } finally {
    redis.disconnect();
  }
  return { keys, withoutTtl, maxTtlSeconds, byKind };
}

async function removeEverything(): Promise<void> {
  await onPostgres(`${PG_URL}/postgres`, (client) => client.query(`drop database if exists "${databaseName}" with (force)`)).catch(() => undefined);
  const redis = new Redis(REDIS_URL);
  try {
    for await (const batch of redis.scanStream({ match: `${redisPrefix}*`, count: 1000 }) as AsyncIterable<string[]>) {
      if (batch.length > 0) await redis.unlink(...batch);
    }
  } finally {
    redis.disconnect();
  }
}

async function main(): Promise<void> {
  console.log(`cleanup bench: ${EXPIRED_ROWS} expired rows, ${DURATION} s per measurement, ${CONNECTIONS} connections`);
  await onPostgres(`${PG_URL}/postgres`, (client) => client.query(`create database "${databaseName}"`));
  let server: Awaited<ReturnType<typeof startLatchkey>> | undefined;
  try {
    server = await startLatchkey();
    const refreshTokens: string[] = [];
    for (let index = 0; index < CONNECTIONS * 2; index += 1) refreshTokens.push(await signIn(server.url));
    const phases: Phase[] = [];
    const sizes: Record<string, Awaited<ReturnType<typeof tableSize>>> = {};
    const report = (rows: Phase[]) => {
      phases.push(...rows);
      for (const row of rows) console.log(`  ${row.phase.padEnd(28)} ${row.grant.padEnd(18)} ${String(row.requestsPerSecond).padStart(6)} req/s  p50 ${row.p50} ms  p99 ${row.p99} ms  non-2xx ${row.non2xx}${row.deletedWhileMeasured === undefined ? '' : `  (${row.deletedWhileMeasured} rows deleted meanwhile)`}`);
    };

    await measure(server, refreshTokens, 'warm-up');
    sizes.baseline = await tableSize();
    report(await measure(server, refreshTokens, 'baseline (no expired rows)'));

    // Real refresh-token payloads, so rows are the size production rows are.
    const insertStarted = performance.now();
    await onPostgres(databaseUrl, async (client) => {
      await client.query(
        `insert into oidc_artifact (model, id, grant_id, account_id, client_id, payload, expires_at, created_at)
         select 'RefreshToken', 'expired-' || n, t.grant_id, t.account_id, t.client_id, jsonb_set(t.payload, '{jti}', to_jsonb('expired-' || n)),
                now() - interval '1 minute' - (n % 86400) * interval '1 second', now() - interval '15 days'
           from generate_series(1, $1::int) as n,
                (select grant_id, account_id, client_id, payload from oidc_artifact where model = 'RefreshToken' limit 1) as t`, [EXPIRED_ROWS]);
      await client.query('analyze oidc_artifact');
    });
    const insertSeconds = (performance.now() - insertStarted) / 1000;
    sizes.withExpired = await tableSize();
    console.log(`  inserted ${EXPIRED_ROWS} expired rows in ${insertSeconds.toFixed(1)} s: ${JSON.stringify(sizes.withExpired)}`);
    const plan = await onPostgres(databaseUrl, async (client) => (await client.query<{ 'QUERY PLAN': string }>(
      `explain ${CLEANUP_TARGETS[0]!.deleteBatch.replace('?', String(DEFAULT_BATCH_SIZE))}`)).rows.map((row) => row['QUERY PLAN']));
    console.log(`  batch plan: ${plan.join(' | ')}`);
    report(await measure(server, refreshTokens, 'expired rows, no cleanup'));

    // The job, in its own process, while the token endpoint is under load. The machine is shared
    // and its load varies, so the job is paused and resumed in turn: each slice with the job
    // deleting is compared with the slice right after it, same table, job paused.
    let progress: { deleted: number; seconds: number; outcomes?: Record<string, number>; finished?: boolean } = { deleted: 0, seconds: 0 };
    const worker = spawnChild([SELF, 'cleanup-worker'], { BENCH_DATABASE_URL: databaseUrl }, (line) => {
      if (line.startsWith(WORKER_PREFIX)) progress = JSON.parse(line.slice(WORKER_PREFIX.length)) as typeof progress;
    });
    const workerDone = new Promise<number | null>((resolve) => worker.once('exit', resolve));
    const tell = (command: 'pause' | 'resume') => worker.stdin!.write(`${command}\n`);
    // The load starts once the job deletes (its process start-up is not the job's cost).
    for (let waited = 0; waited < 600 && progress.deleted === 0 && worker.exitCode === null; waited += 1) await new Promise((resolve) => setTimeout(resolve, 100));
    const slices: Phase[] = [];
    for (let round = 0; round < 40 && !progress.finished; round += 1) {
      tell('resume');
      slices.push(...await measure(server, refreshTokens, 'cleanup running', () => progress.deleted, SLICE));
      if (progress.finished) break;
      tell('pause');
      await new Promise((resolve) => setTimeout(resolve, 500));
      slices.push(...await measure(server, refreshTokens, 'cleanup paused', () => progress.deleted, SLICE));
    }
    tell('resume');
    const exitCode = await workerDone;
    if (exitCode !== 0 || !progress.finished) throw new Error(`the cleanup worker failed (exit ${exitCode})`);
    // A running slice counts only if the job deleted during it (the last one may have found nothing left).
    for (const phase of ['cleanup running', 'cleanup paused']) {
      for (const grant of ['refresh_token', 'client_credentials'] as const) {
        const mine = slices.filter((slice) => slice.phase === phase && slice.grant === grant && (phase === 'cleanup paused' || slice.deletedWhileMeasured! > 0));
        if (mine.length === 0) continue;
        const mean = (pick: (slice: Phase) => number) => Math.round(mine.reduce((sum, slice) => sum + pick(slice), 0) / mine.length);
        report([{
          phase: `${phase} (${mine.length} slices)`, grant, requestsPerSecond: mean((slice) => slice.requestsPerSecond), p50: mean((slice) => slice.p50), p99: mean((slice) => slice.p99),
          errors: mine.reduce((sum, slice) => sum + slice.errors, 0), non2xx: mine.reduce((sum, slice) => sum + slice.non2xx, 0),
          deletedWhileMeasured: mine.reduce((sum, slice) => sum + (slice.deletedWhileMeasured ?? 0), 0),
        }]);
      }
    }
    const cleanup = {
      deleted: progress.deleted, workingSeconds: Number(progress.seconds.toFixed(1)), rowsPerSecond: Math.round(progress.deleted / progress.seconds), outcomes: progress.outcomes,
    };
    console.log(`  cleanup: ${JSON.stringify(cleanup)}`);
    sizes.afterCleanup = await tableSize();
    await onPostgres(databaseUrl, (client) => client.query('vacuum analyze oidc_artifact'));
    sizes.afterVacuum = await tableSize();
    report(await measure(server, refreshTokens, 'after cleanup'));
    const redis = await redisKeys();
    console.log(`  table: ${JSON.stringify(sizes)}`);
    console.log(`  redis: ${redis.keys} keys, ${redis.withoutTtl.length} without a TTL ${JSON.stringify(redis.withoutTtl.slice(0, 5))}, longest TTL ${redis.maxTtlSeconds} s, ${JSON.stringify(redis.byKind)}`);

    await mkdir(new URL('./results/', import.meta.url), { recursive: true });
    await writeFile(RESULTS, `${JSON.stringify({
      at: new Date().toISOString(), settings: { duration: DURATION, connections: CONNECTIONS, expiredRows: EXPIRED_ROWS, batchSize: DEFAULT_BATCH_SIZE },
      insertSeconds, plan, phases, slices, cleanup, sizes, redis: { ...redis, withoutTtl: redis.withoutTtl.slice(0, 20) },
    }, null, 2)}\n`);
    console.log(`  written to ${RESULTS}`);
  } finally {
    if (server) await stopChild(server.child);
    for (const child of children) await stopChild(child);
    await removeEverything();
  }
}

// Ctrl-C or a timeout: the children, the database and the keys go too.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (process.argv[2] === 'cleanup-worker') process.exit(1);
    for (const child of children) child.kill('SIGKILL');
    void removeEverything().finally(() => process.exit(1));
  });
}

try {
  if (process.argv[2] === 'cleanup-worker') await cleanupWorker();
  else await main();
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exitCode = 1;
}
