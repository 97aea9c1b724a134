// Memory of the server process (`npm run bench:memory`; see bench/README.md, "Memory of the server process").
//
//   npm run bench:memory              Latchkey started with `npm start` (its flags and compile cache)
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
// MEMORY_RATE (requests per second over all connections, default: as fast as the server answers;
// garbage, and so a heap's growth, is per request, so a fixed rate compares runs on a busy machine),
// MEMORY_IDLE (seconds between ready and the idle reading, default 5), MEMORY_NODE_FLAGS (runs
// `node <flags> <entry>` instead of `npm start`; flags space-separated, e.g.
// "--max-semi-space-size=8"; several variants, each measured in turn on the same database,
// separated by ";", where "npm" stands for `npm start`: "npm;;--max-semi-space-size=8" compares
// npm start, bare node and node with that flag), MEMORY_ENTRY (the entry file for those, default
// src/main.ts; dist/src/main.js after `npm run build`),
// MEMORY_TOKEN_FORMAT (opaque | jwt, default opaque), MEMORY_TRACE_GC=1 (runs the servers with
// --trace-gc and reports the garbage collector's main-thread time under load, the cost a smaller
// heap trades for its memory), MEMORY_PG_URL, MEMORY_REDIS_URL.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import autocannon from 'autocannon';
import { Redis } from 'ioredis';

import { READY_PREFIX } from './servers/lifecycle.ts';
import { positiveInteger, withPostgres } from './shared.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BARE_SERVER = fileURLToPath(new URL('./servers/bare-provider-server.ts', import.meta.url));
const RESULTS_FILE = fileURLToPath(new URL('./results/memory-latest.json', import.meta.url));
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
const SAMPLE_INTERVAL_MS = 250;
const SETTLE_AFTER_LOAD_MS = 5000;
const SCOPE = 'crm:read';


const settings = {
  durationSeconds: positiveInteger('MEMORY_DURATION', 20),
  connections: positiveInteger('MEMORY_CONNECTIONS', 32),
  idleSeconds: positiveInteger('MEMORY_IDLE', 5),
  rate: process.env.MEMORY_RATE ? positiveInteger('MEMORY_RATE', 1) : undefined,
  /** `undefined` is `npm start`. */
  variants: process.env.MEMORY_NODE_FLAGS === undefined
    ? [undefined]
    : process.env.MEMORY_NODE_FLAGS.split(';').map((variant) => (variant.trim() === 'npm' ? undefined : variant.split(' ').filter(Boolean))),
  entry: process.env.MEMORY_ENTRY ?? 'src/main.ts',
  format: process.env.MEMORY_TOKEN_FORMAT === 'jwt' ? 'jwt' : 'opaque',
  traceGc: process.env.MEMORY_TRACE_GC === '1',
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

// USER_HZ, the unit of /proc/<pid>/stat times: 100 on Linux.
const CLOCK_TICKS_PER_SECOND = 100;

/** User + system CPU seconds of a process so far (all its threads), from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** The process `npm start` ended up running: npm's deepest descendant (the script `exec`s node). */
function serverUnder(pid: number): number {
  for (let depth = 0; depth < 5; depth += 1) {
    let children: number[];
    try {
      children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);
    } catch {
      break;
    }
    if (children.length !== 1) break;
    pid = children[0]!;
  }
  return pid;
}

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

// One --trace-gc line: "... Scavenge 64.8 (85.7) -> 55.8 (87.2) MB, pooled: 0 MB, 18.79 / 0.06 ms
// (+ 3.6 ms in 16 steps since start of marking, ...)": the pause, and incremental marking steps.
const GC_LINE = /: (?:Scavenge|Mark-Compact|Minor Mark-Sweep)\b.*?MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms(?:\s+\(\+ ([\d.]+) ms in)?/;

interface Started {
  child: ChildProcess;
  output: () => string;
  /** Main-thread GC time so far (ms), from --trace-gc output; 0 without it. */
  gcMilliseconds: () => number;
  /** Resolves with the first stdout line `matches` accepts. */
  line: (matches: (line: string) => boolean) => Promise<string>;
}

function start(args: string[], env: NodeJS.ProcessEnv, command = process.execPath): Started {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const lines: string[] = [];
  let gcMilliseconds = 0;
  const waiting = new Set<{ matches: (line: string) => boolean; resolve: (line: string) => void }>();
  const take = (line: string) => {
    const gc = GC_LINE.exec(line);
    if (gc) {
      gcMilliseconds += Number(gc[1]) + Number(gc[2] ?? 0);
      return;
    }
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
  return { child, output, line, gcMilliseconds: () => gcMilliseconds };
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
  /** The server process (below npm for `npm start`). */
  pid: number;
  gcMilliseconds: () => number;
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

/**
 * First start on the fresh database, with `npm start`: migrations, keys and the first admin, whose
 * client we keep. It also fills npm start's compile cache, as any first start does.
 */
async function prepareLatchkey(): Promise<{ clientId: string; clientSecret: string }> {
  const port = await freePort();
  const server = start(['start'], latchkeyEnv(port), 'npm');
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

async function startLatchkey(nodeFlags: string[] | undefined, credentials: { clientId: string; clientSecret: string }): Promise<Target> {
  const port = await freePort();
  // --trace-gc is not allowed in NODE_OPTIONS, so `npm start` runs without it (no GC figure).
  const server = nodeFlags === undefined
    ? start(['start'], latchkeyEnv(port), 'npm')
    : start([...nodeFlags, ...(settings.traceGc ? ['--trace-gc'] : []), settings.entry], latchkeyEnv(port));
  await waitUntilReady(`http://127.0.0.1:${port}/ready`);
  return {
    name: nodeFlags === undefined ? 'Latchkey (npm start)' : `Latchkey (node ${[...nodeFlags, settings.entry].join(' ')})`,
    child: server.child,
    pid: nodeFlags === undefined ? serverUnder(server.child.pid!) : server.child.pid!,
    gcMilliseconds: server.gcMilliseconds,
    tokenUrl: `http://127.0.0.1:${port}/oauth/token`,
    ...credentials,
  };
}

async function startBare(): Promise<Target> {
  const server = start([...(settings.traceGc ? ['--trace-gc'] : []), BARE_SERVER], { ...process.env, BENCH_TOKEN_FORMAT: settings.format });
  const line = await server.line((text) => text.startsWith(READY_PREFIX));
  const info = JSON.parse(line.slice(READY_PREFIX.length)) as { issuer: string; clientId: string; clientSecret: string };
  return { name: 'bare node-oidc-provider', child: server.child, pid: server.child.pid!, gcMilliseconds: server.gcMilliseconds, tokenUrl: `${info.issuer}/oauth/token`, clientId: info.clientId, clientSecret: info.clientSecret };
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
  /** Server CPU time (all threads) per request under load: what a bigger young generation saves in GC. */
  cpuMicrosPerRequest: number;
  /** Main-thread GC time per request under load (MEMORY_TRACE_GC=1), else NaN. */
  gcMicrosPerRequest: number;
  non2xx: number;
  errors: number;
}

async function measure(target: Target): Promise<Result> {
  const { pid } = target;
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
  const cpuBefore = cpuSeconds(pid);
  const gcBefore = target.gcMilliseconds();
  try {
    result = await new Promise<autocannon.Result>((resolve, reject) => {
      autocannon({ url: target.tokenUrl, ...request, connections: settings.connections, pipelining: 1, duration: settings.durationSeconds,
        ...(settings.rate ? { overallRate: settings.rate } : {}) },
        (error, value) => (error ? reject(error) : resolve(value)));
    });
  } finally {
    clearInterval(sampler);
  }
  const endOfLoadMB = rssMegabytes(pid);
  const cpuMicrosPerRequest = ((cpuSeconds(pid) - cpuBefore) / result.requests.total) * 1e6;
  const gcMicrosPerRequest = settings.traceGc && target.gcMilliseconds() > 0 ? ((target.gcMilliseconds() - gcBefore) / result.requests.total) * 1000 : Number.NaN;
  peakMB = Math.max(peakMB, endOfLoadMB);
  await new Promise((resolve) => setTimeout(resolve, SETTLE_AFTER_LOAD_MS));
  return {
    target: target.name,
    idleMB,
    peakMB,
    endOfLoadMB,
    afterPauseMB: rssMegabytes(pid),
    requestsPerSecond: result.requests.total / result.duration,
    cpuMicrosPerRequest,
    gcMicrosPerRequest,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

// ---------------------------------------------------------------------------------------------
// Run


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
  await withPostgres(settings.pgUrl, (client) => client.query(`drop database if exists "${databaseName}" with (force)`))
    .catch((error: Error) => console.error(`cleanup: could not drop ${databaseName}: ${error.message}`));
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { void cleanup().finally(() => process.exit(130)); });
}

async function main(withBare: boolean): Promise<Result[]> {
  console.log(`Memory (VmRSS, MB): ${settings.format} client_credentials, ${settings.connections} connections${settings.rate ? ` at ${settings.rate} req/s` : ''}, ${settings.durationSeconds} s; database ${databaseName}`);
  await withPostgres(settings.pgUrl, (client) => client.query(`create database "${databaseName}"`));
  const credentials = await prepareLatchkey();
  const results: Result[] = [];
  const launches = settings.variants.map((flags) => () => startLatchkey(flags, credentials));
  for (const launch of [...launches, ...(withBare ? [startBare] : [])]) {
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
  console.log('\n  VmRSS MB: idle    peak  end of load    +5 s   req/s  CPU µs/req  GC µs/req  non-2xx  target');
  for (const r of results) {
    console.log(`          ${cell(r.idleMB)}  ${cell(r.peakMB)}       ${cell(r.endOfLoadMB)}  ${cell(r.afterPauseMB)}  ${cell(r.requestsPerSecond)}      ${cell(r.cpuMicrosPerRequest)}     ${Number.isNaN(r.gcMicrosPerRequest) ? '     -' : cell(r.gcMicrosPerRequest)}  ${String(r.non2xx + r.errors).padStart(7)}  ${r.target}`);
  }
  await mkdir(fileURLToPath(new URL('./results/', import.meta.url)), { recursive: true });
  await writeFile(RESULTS_FILE, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, settings, results }, null, 2)}\n`);
} catch (error) {
  console.error(`\nmemory benchmark failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
