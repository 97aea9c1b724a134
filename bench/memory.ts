// Memory of the server process (`npm run bench:memory`; see bench/MEMORY.md).
//
//   npm run bench:memory              Latchkey as `npm start` runs it (node src/main.ts)
//   npm run bench:memory -- bare      the same, then the bare node-oidc-provider for reference
//
// For each target: start it, leave it idle, read its resident set size (VmRSS from
// /proc/<pid>/status), then put client_credentials token load on it with autocannon (from this
// process) while sampling VmRSS, then read it again after a pause. Latchkey runs as the real server
// (src/main.ts on PostgreSQL and Redis), its first super admin's personal client asking for tokens;
// a first process prepares the database (migrations, keys, admin) and exits, a second one, which
// only serves, is measured, as after any restart. Linux only (/proc).
//
// Environment: MEMORY_DURATION (seconds of load, default 20), MEMORY_CONNECTIONS (default 32),
// MEMORY_IDLE (seconds between ready and the idle reading, default 5), MEMORY_NODE_FLAGS (extra
// node flags for the server, space-separated, e.g. "--max-semi-space-size=8"), MEMORY_ENTRY (the
// server's entry file, default src/main.ts; dist/src/main.js after `npm run build`),
// MEMORY_TOKEN_FORMAT (opaque | jwt, default opaque), MEMORY_PG_URL, MEMORY_REDIS_URL.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import pg from 'pg';

import { READY_PREFIX } from './servers/lifecycle.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BARE_SERVER = fileURLToPath(new URL('./servers/bare-provider-server.ts', import.meta.url));
const RESULTS_FILE = fileURLToPath(new URL('./results/memory-latest.json', import.meta.url));
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
const SAMPLE_INTERVAL_MS = 250;
const SETTLE_AFTER_LOAD_MS = 5000;
const SCOPE = 'crm:read';

function positiveInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive whole number (got "${raw}")`);
  return value;
}

const settings = {
  durationSeconds: positiveInteger('MEMORY_DURATION', 20),
  connections: positiveInteger('MEMORY_CONNECTIONS', 32),
  idleSeconds: positiveInteger('MEMORY_IDLE', 5),
  nodeFlags: (process.env.MEMORY_NODE_FLAGS ?? '').split(' ').filter(Boolean),
  entry: process.env.MEMORY_ENTRY ?? 'src/main.ts',
  format: process.env.MEMORY_TOKEN_FORMAT === 'jwt' ? 'jwt' : 'opaque',
  pgUrl: (process.env.MEMORY_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432').replace(/\/+$/, ''),
  redisUrl: process.env.MEMORY_REDIS_URL ?? 'redis://127.0.0.1:6379',
};

const runId = randomBytes(4).toString('hex');
const databaseName = `latchkey_memory_${runId}`;
const redisPrefix = `memory:${runId}:`;
const children = new Set<ChildProcess>();

process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

// ---------------------------------------------------------------------------------------------
// Processes

/** VmRSS of a process in MB (10^6 bytes), or NaN once it is gone. */
function rssMegabytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? (Number(match[1]) * 1024) / 1e6 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Started {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the first stdout line `matches` accepts. */
  line: (matches: (line: string) => boolean) => Promise<string>;
}

function start(args: string[], env: NodeJS.ProcessEnv): Started {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const lines: string[] = [];
  const waiting = new Set<{ matches: (line: string) => boolean; resolve: (line: string) => void }>();
  const take = (line: string) => {
    lines.push(line);
    if (lines.length > 200) lines.shift();
    for (const waiter of waiting) {
      if (waiter.matches(line)) {
        waiting.delete(waiter);
        waiter.resolve(line);
      }
    }
  };
  createInterface({ input: child.stdout! }).on('line', take);
  createInterface({ input: child.stderr! }).on('line', take);
  const output = () => lines.join('\n');
  const line = (matches: (line: string) => boolean) => new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no expected output within ${START_TIMEOUT_MS} ms\n${output()}`)), START_TIMEOUT_MS);
    const found = lines.find(matches);
    if (found !== undefined) {
      clearTimeout(timer);
      resolve(found);
      return;
    }
    waiting.add({ matches, resolve: (value) => { clearTimeout(timer); resolve(value); } });
    child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`exited (code ${code}, signal ${signal})\n${output()}`)); });
  });
  return { child, output, line };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

async function waitUntilReady(url: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not answer 200 within ${START_TIMEOUT_MS} ms`);
}

// ---------------------------------------------------------------------------------------------
// Latchkey and the bare provider

interface Target {
  name: string;
  child: ChildProcess;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
}

/** Latchkey's environment: everything stated, nothing inherited from the caller's own settings. */
function latchkeyEnv(port: number): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(DATABASE_URL|REDIS_|ISSUER|PORT|ADMIN_|ACCESS_TOKEN|WEB_CONCURRENCY|DATA_DIR|LOG_LEVEL|COOKIE_KEYS|METRICS_PORT|TOKEN_RATE|LOGIN_RATE|NODE_ENV)/.test(name)));
  return {
    ...base,
    NODE_ENV: 'production',
    DATABASE_URL: `${settings.pgUrl}/${databaseName}`,
    REDIS_URL: settings.redisUrl,
    REDIS_KEY_PREFIX: redisPrefix,
    PORT: String(port),
    ISSUER: `http://127.0.0.1:${port}`,
    ACCESS_TOKEN_FORMAT: settings.format,
    LOG_LEVEL: 'warn',
    METRICS_PORT: '0',
    // One load generator on loopback must not be throttled.
    TOKEN_RATE_LIMIT: '0',
    LOGIN_RATE_LIMIT: '0',
  };
}

/** First start on the fresh database: migrations, keys and the first admin, whose client we keep. */
async function prepareLatchkey(): Promise<{ clientId: string; clientSecret: string }> {
  const port = await freePort();
  const server = start([settings.entry], latchkeyEnv(port));
  try {
    const value = async (label: string) => (await server.line((line) => line.trimStart().startsWith(`${label}:`))).split(':').slice(1).join(':').trim();
    const clientId = await value('client_id');
    const clientSecret = await value('client_secret');
    await waitUntilReady(`http://127.0.0.1:${port}/ready`);
    return { clientId, clientSecret };
  } finally {
    await stop(server.child);
  }
}

async function startLatchkey(credentials: { clientId: string; clientSecret: string }): Promise<Target> {
  const port = await freePort();
  const server = start([...settings.nodeFlags, settings.entry], latchkeyEnv(port));
  await waitUntilReady(`http://127.0.0.1:${port}/ready`);
  return { name: `Latchkey (${[...settings.nodeFlags, settings.entry].join(' ')})`, child: server.child, tokenUrl: `http://127.0.0.1:${port}/oauth/token`, ...credentials };
}

async function startBare(): Promise<Target> {
  const server = start([...settings.nodeFlags, BARE_SERVER], { ...process.env, BENCH_TOKEN_FORMAT: settings.format });
  const line = await server.line((text) => text.startsWith(READY_PREFIX));
  const info = JSON.parse(line.slice(READY_PREFIX.length)) as { issuer: string; clientId: string; clientSecret: string };
  return { name: 'bare node-oidc-provider', child: server.child, tokenUrl: `${info.issuer}/oauth/token`, clientId: info.clientId, clientSecret: info.clientSecret };
}

// ---------------------------------------------------------------------------------------------
// Measuring

interface Result {
  target: string;
  idleMB: number;
  peakMB: number;
  endOfLoadMB: number;
  afterPauseMB: number;
  requestsPerSecond: number;
  non2xx: number;
  errors: number;
}

async function measure(target: Target): Promise<Result> {
  const pid = target.child.pid!;
  // RFC 6749 section 2.3.1: both parts are form-urlencoded before the Basic encoding.
  const basic = Buffer.from(`${encodeURIComponent(target.clientId)}:${encodeURIComponent(target.clientSecret)}`).toString('base64');
  const request = {
    method: 'POST' as const,
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: SCOPE }).toString(),
  };
  const check = await fetch(target.tokenUrl, request);
  if (check.status !== 200) throw new Error(`${target.name}: token request answered ${check.status}: ${await check.text()}`);

  await new Promise((resolve) => setTimeout(resolve, settings.idleSeconds * 1000));
  const idleMB = rssMegabytes(pid);
  console.log(`  ${target.name}: idle ${idleMB.toFixed(0)} MB; ${settings.durationSeconds} s of load at ${settings.connections} connections`);

  let peakMB = idleMB;
  const sampler = setInterval(() => { peakMB = Math.max(peakMB, rssMegabytes(pid)); }, SAMPLE_INTERVAL_MS);
  let result: autocannon.Result;
  try {
    result = await new Promise<autocannon.Result>((resolve, reject) => {
      autocannon({ url: target.tokenUrl, ...request, connections: settings.connections, pipelining: 1, duration: settings.durationSeconds },
        (error, value) => (error ? reject(error) : resolve(value)));
    });
  } finally {
    clearInterval(sampler);
  }
  const endOfLoadMB = rssMegabytes(pid);
  peakMB = Math.max(peakMB, endOfLoadMB);
  await new Promise((resolve) => setTimeout(resolve, SETTLE_AFTER_LOAD_MS));
  return {
    target: target.name,
    idleMB,
    peakMB,
    endOfLoadMB,
    afterPauseMB: rssMegabytes(pid),
    requestsPerSecond: result.requests.total / result.duration,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

// ---------------------------------------------------------------------------------------------
// Run

async function withPostgres<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `${settings.pgUrl}/postgres` });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function cleanup(): Promise<void> {
  await Promise.all([...children].map((child) => stop(child)));
  const redis = new Redis(settings.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    for await (const keys of redis.scanStream({ match: `${redisPrefix}*`, count: 1000 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) await redis.unlink(...keys);
    }
  } catch (error) {
    console.error(`cleanup: Redis keys under ${redisPrefix} remain: ${(error as Error).message}`);
  } finally {
    redis.disconnect();
  }
  await withPostgres((client) => client.query(`drop database if exists "${databaseName}" with (force)`))
    .catch((error: Error) => console.error(`cleanup: could not drop ${databaseName}: ${error.message}`));
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { void cleanup().finally(() => process.exit(130)); });
}

async function main(withBare: boolean): Promise<Result[]> {
  console.log(`Memory (VmRSS, MB): ${settings.format} client_credentials, ${settings.connections} connections, ${settings.durationSeconds} s; database ${databaseName}`);
  await withPostgres((client) => client.query(`create database "${databaseName}"`));
  const credentials = await prepareLatchkey();
  const results: Result[] = [];
  for (const launch of [() => startLatchkey(credentials), ...(withBare ? [startBare] : [])]) {
    const target = await launch();
    try {
      results.push(await measure(target));
    } finally {
      await stop(target.child);
    }
  }
  return results;
}

const args = process.argv.slice(2);
if (args.some((arg) => arg !== 'bare')) {
  console.error('usage: npm run bench:memory [-- bare]');
  process.exit(2);
}
try {
  const results = await main(args.includes('bare'));
  const cell = (value: number) => value.toFixed(0).padStart(6);
  console.log('\n  idle    peak  end of load  +5 s   req/s  non-2xx  target');
  for (const r of results) {
    console.log(`${cell(r.idleMB)}  ${cell(r.peakMB)}  ${cell(r.endOfLoadMB)}     ${cell(r.afterPauseMB)}  ${cell(r.requestsPerSecond)}  ${String(r.non2xx + r.errors).padStart(7)}  ${r.target}`);
  }
  await mkdir(fileURLToPath(new URL('./results/', import.meta.url)), { recursive: true });
  await writeFile(RESULTS_FILE, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, settings, results }, null, 2)}\n`);
} catch (error) {
  console.error(`\nmemory benchmark failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
