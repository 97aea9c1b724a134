// Audit export benchmark: `npx node bench/audit-export.ts`.
//
// Fills a fresh database with BENCH_AUDIT_ROWS audit rows (default 1,000,000, one INSERT ... SELECT
// generate_series), then downloads GET /api/v1/audit/logs/export as CSV and as NDJSON from a
// Latchkey child process and reports rows per second, bytes, and the server's resident memory
// (sampled from /proc during each download): an export streams, so memory must not follow size.
//
// Environment: BENCH_AUDIT_ROWS, BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432),
// BENCH_REDIS_URL (default redis://127.0.0.1:6379).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { Redis } from 'ioredis';

import { READY_PREFIX } from './servers/lifecycle.ts';
import { onPostgres } from './shared.ts';

const ROWS = Number(process.env.BENCH_AUDIT_ROWS ?? 1_000_000);
const PG_URL = (process.env.BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432').replace(/\/+$/, '');
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SERVER = fileURLToPath(new URL('./servers/latchkey-server.ts', import.meta.url));
const run = randomBytes(4).toString('hex');
const database = `latchkey_bench_audit_${run}`;
const env = { ...process.env, BENCH_DATABASE_URL: `${PG_URL}/${database}`, BENCH_REDIS_URL: REDIS_URL, BENCH_REDIS_PREFIX: `bench:${run}:` };


/** Runs latchkey-server.ts in `mode` and resolves with its report line. */
function startChild(mode: 'prepare' | 'serve'): Promise<{ child: ChildProcess; info: Record<string, string> }> {
  const child = spawn(process.execPath, [SERVER, mode], { env, stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith(READY_PREFIX)) resolve({ child, info: JSON.parse(line.slice(READY_PREFIX.length)) as Record<string, string> });
    });
    child.once('exit', (code) => reject(new Error(`latchkey-server.ts ${mode} exited with ${code}`)));
  });
}

/** Resident set size of a process, in MB (Linux /proc). */
function residentMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

async function download(url: string, token: string, pid: number) {
  const started = performance.now();
  const before = residentMb(pid);
  let peak = before;
  const sampler = setInterval(() => { peak = Math.max(peak, residentMb(pid)); }, 50);
  let bytes = 0;
  let lines = 0;
  try {
    const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    if (response.status !== 200) throw new Error(`export answered ${response.status}: ${await response.text()}`);
    const reader = response.body!.getReader();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      bytes += chunk.value.length;
      for (const byte of chunk.value) if (byte === 10) lines += 1;
    }
  } finally {
    clearInterval(sampler);
  }
  const seconds = (performance.now() - started) / 1000;
  return { lines, megabytes: +(bytes / 1e6).toFixed(1), seconds: +seconds.toFixed(2), rowsPerSecond: Math.round(ROWS / seconds), rssBeforeMb: Math.round(before), rssPeakMb: Math.round(peak) };
}

let server: ChildProcess | undefined;
try {
  await onPostgres(`${PG_URL}/postgres`, (client) => client.query(`create database "${database}"`));
  const prepared = await startChild('prepare');
  await onPostgres(env.BENCH_DATABASE_URL, (client) => client.query(
    `insert into audit_log (id, occurred_at, organization_id, actor_id, target_id, action, resource, resource_id, status, ip, user_agent, details)
     select gen_random_uuid(), now() - n * interval '1 second', null, $1::uuid, $1::text, 'auth.login', 'session', null,
            case when n % 10 = 0 then 'failure' else 'success' end, '203.0.113.7', 'Mozilla/5.0 (X11; Linux x86_64) bench', jsonb_build_object('via', 'password_grant', 'n', n)
       from generate_series(1, $2::int) as n`, [prepared.info.userId, ROWS]));
  const served = await startChild('serve');
  server = served.child;
  const base = `http://127.0.0.1:${served.info.port}`;
  const credentials = Buffer.from(`${prepared.info.clientId}:${prepared.info.clientSecret}`).toString('base64');
  const tokenResponse = await fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${credentials}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'audit:read' }),
  });
  const { access_token: token } = (await tokenResponse.json()) as { access_token: string };
  const results: Record<string, unknown> = {};
  for (const format of ['csv', 'ndjson']) results[format] = await download(`${base}/api/v1/audit/logs/export?format=${format}`, token, server.pid!);
  console.log(`audit export of ${ROWS.toLocaleString('en')} rows`);
  console.table(results);
} finally {
  server?.kill('SIGTERM');
  await onPostgres(`${PG_URL}/postgres`, (client) => client.query(`drop database if exists "${database}" with (force)`)).catch(() => {});
  const redis = new Redis(REDIS_URL);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `bench:${run}:*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  redis.disconnect();
}
