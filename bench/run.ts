// Latchkey benchmark (`npm run bench`; see bench/README.md).
//
//   npm run bench              every scenario: token and me, then crm (bench/crm.ts)
//   npm run bench -- crm       only the CRM reads (`token` likewise runs only token and me)
//
// Every server runs in its own child process on 127.0.0.1 so that autocannon, here, does not share
// its event loop. Latchkey is compared with a bare node-oidc-provider measured in the same run on
// the same machine; the ratio is the figure to watch, the absolute numbers depend on the machine.
//
// Environment: BENCH_DURATION (seconds of load per target and scenario, default 10),
// BENCH_CONNECTIONS (default 10), BENCH_WARMUP (seconds, default 2), BENCH_ROUNDS (slices the
// duration is split into when targets alternate, default 4), BENCH_PG_URL (default
// postgresql://postgres@127.0.0.1:5432), BENCH_REDIS_URL (default redis://127.0.0.1:6379),
// BENCH_CPU_PROF=1 (write a V8 CPU profile of every server to bench/results/profiles/).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { benchCrm } from './crm.ts';
import { FORMATS, type Format, type LoadTarget, type Measurement, type Request, type Settings, type StartedChild, type Target } from './types.ts';
import { READY_PREFIX } from './servers/lifecycle.ts';

import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import pg from 'pg';

/** `npm run bench -- <scenario> ...`; none named runs them all. `token` includes `me`. */
const SCENARIOS = ['token', 'crm'] as const;
type Scenario = (typeof SCENARIOS)[number];

const TARGET_RATIO = 0.8;
const SCOPE = 'crm:read';
const TOKEN_PATH = '/oauth/token';
const ME_PATH = '/api/v1/me';
const CHILD_START_TIMEOUT_MS = 60_000;
const CHILD_STOP_TIMEOUT_MS = 10_000;

const LATCHKEY_SERVER = fileURLToPath(new URL('./servers/latchkey-server.ts', import.meta.url));
const BARE_SERVER = fileURLToPath(new URL('./servers/bare-provider-server.ts', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const PROFILES_DIR = fileURLToPath(new URL('./results/profiles/', import.meta.url));

function positiveInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive whole number (got "${raw}")`);
  return value;
}

const settings: Settings = {
  durationSeconds: positiveInteger('BENCH_DURATION', 10),
  connections: positiveInteger('BENCH_CONNECTIONS', 10),
  warmupSeconds: positiveInteger('BENCH_WARMUP', 2),
  rounds: positiveInteger('BENCH_ROUNDS', 4),
  pgUrl: (process.env.BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432').replace(/\/+$/, ''),
  redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
  cpuProfile: process.env.BENCH_CPU_PROF === '1' || process.env.BENCH_CPU_PROF === 'true',
};

const runId = randomBytes(4).toString('hex');
const databaseName = `latchkey_bench_${runId}`;
const redisPrefix = `bench:${runId}:`;

// ---------------------------------------------------------------------------------------------
// Child processes

const children = new Set<ChildProcess>();

/** Requests each profiled server answered, so bench/profile-summary.ts can show time per request. */
const profiledRequests: Record<string, number> = {};

function countProfiledRequests(child: StartedChild<unknown>, requests: number): void {
  if (settings.cpuProfile) profiledRequests[child.profile] = (profiledRequests[child.profile] ?? 0) + requests;
}

/** Starts a server script and resolves with the JSON it prints once ready (other output is ignored). */
async function startChild<T>(name: string, script: string, args: string[], env: Record<string, string>): Promise<StartedChild<T>> {
  const profile = `${name}-${runId}.cpuprofile`;
  const execArgv = settings.cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${PROFILES_DIR}`, `--cpu-prof-name=${profile}`] : [];
  const child = spawn(process.execPath, [...execArgv, script, ...args], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));

  const stderrLines: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderrLines.push(line);
    if (stderrLines.length > 40) stderrLines.shift();
  });
  const stderr = () => stderrLines.join('\n');

  const info = await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${CHILD_START_TIMEOUT_MS} ms\n${stderr()}`)), CHILD_START_TIMEOUT_MS);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (!line.startsWith(READY_PREFIX)) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line.slice(READY_PREFIX.length)) as T);
      } catch {
        reject(new Error(`${name} reported something other than JSON: ${line}`));
      }
    });
    child.once('error', (error) => { clearTimeout(timer); reject(error); });
    // 'close' comes after stdout has been read to its end: a child that reported and then exited
    // (prepare) has resolved the promise by then, and this rejection is a no-op.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (code ${code}, signal ${signal}) before reporting\n${stderr()}`));
    });
  });
  return { child, info, stderr, profile };
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => { clearTimeout(timer); resolve(true); });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (await waitForExit(child, CHILD_STOP_TIMEOUT_MS)) return;
  child.kill('SIGKILL');
  await waitForExit(child, CHILD_STOP_TIMEOUT_MS);
}

async function stopAllChildren(): Promise<void> {
  await Promise.all([...children].map((child) => stopChild(child)));
}

// Last resort: whatever is still running when this process exits is killed outright.
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

// ---------------------------------------------------------------------------------------------
// PostgreSQL and Redis

async function withPostgres<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `${settings.pgUrl}/postgres` });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function createDatabase(): Promise<void> {
  await withPostgres((client) => client.query(`create database "${databaseName}"`));
}

async function dropDatabase(): Promise<void> {
  await withPostgres((client) => client.query(`drop database if exists "${databaseName}" with (force)`));
}

async function deleteRedisKeys(): Promise<number> {
  const redis = new Redis(settings.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  let deleted = 0;
  try {
    for await (const keys of redis.scanStream({ match: `${redisPrefix}*`, count: 1000 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    }
  } finally {
    redis.disconnect();
  }
  return deleted;
}

// ---------------------------------------------------------------------------------------------
// HTTP

interface Credentials {
  clientId: string;
  clientSecret: string;
}

interface ServerInfo {
  port: number;
  issuer: string;
  audience: string;
  format: Format;
}

function tokenRequest(server: ServerInfo, credentials: Credentials): Request {
  // RFC 6749 section 2.3.1: both parts are form-urlencoded before the Basic encoding.
  const basic = Buffer.from(`${encodeURIComponent(credentials.clientId)}:${encodeURIComponent(credentials.clientSecret)}`).toString('base64');
  return {
    url: `${server.issuer}${TOKEN_PATH}`,
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: SCOPE }).toString(),
  };
}

function meRequest(server: ServerInfo, accessToken: string): Request {
  return { url: `${server.issuer}${ME_PATH}`, method: 'GET', headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' } };
}

function describeToken(token: string): string {
  const parts = token.split('.');
  if (parts.length !== 3) return 'opaque';
  const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as { alg?: string; typ?: string };
  return `jwt (${header.alg ?? '?'}, ${header.typ ?? '?'})`;
}

/** One request before any load: the target must answer 200 in the expected format. */
async function fetchToken(server: ServerInfo, credentials: Credentials, label: string): Promise<string> {
  const request = tokenRequest(server, credentials);
  const response = await fetch(request.url, { method: request.method, headers: request.headers, body: request.body });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${label}: token request answered ${response.status}: ${text}`);
  const body = JSON.parse(text) as { access_token?: string; token_type?: string; expires_in?: number; scope?: string };
  if (!body.access_token) throw new Error(`${label}: no access_token in ${text}`);
  const kind = describeToken(body.access_token);
  const expected = server.format === 'jwt' ? 'jwt (ES256, at+jwt)' : 'opaque';
  if (kind !== expected) throw new Error(`${label}: expected a ${expected} access token, got ${kind}`);
  console.log(`  ${label}: token ok: ${kind}, expires_in ${body.expires_in}, scope "${body.scope}"`);
  return body.access_token;
}

async function checkMe(server: ServerInfo, accessToken: string, label: string): Promise<void> {
  const request = meRequest(server, accessToken);
  const response = await fetch(request.url, { headers: request.headers });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${label}: GET ${ME_PATH} answered ${response.status}: ${text}`);
}

// ---------------------------------------------------------------------------------------------
// Load

/** Latencies of the 2xx responses, in ms, kept exactly (autocannon's histogram rounds to whole ms). */
class LatencySamples {
  #values = new Float64Array(1 << 16);
  #count = 0;

  add(ms: number): void {
    if (this.#count === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#count++] = ms;
  }

  summary(): Measurement['latencyMs'] {
    const sorted = this.#values.slice(0, this.#count).sort();
    const at = (quantile: number) => (sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil(quantile * sorted.length) - 1)]!);
    const total = sorted.reduce((sum, value) => sum + value, 0);
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99), average: total / sorted.length, max: at(1) };
  }
}

function runAutocannon(request: Request, durationSeconds: number, samples?: LatencySamples): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon({
      url: request.url,
      method: request.method,
      headers: request.headers,
      body: request.body,
      requests: request.requests,
      connections: settings.connections,
      pipelining: 1,
      duration: durationSeconds,
    }, (error, result) => (error ? reject(error) : resolve(result)));
    if (samples) {
      instance.on('response', (client, statusCode, resBytes, responseTime) => {
        if (statusCode >= 200 && statusCode < 300) samples.add(responseTime);
      });
    }
  });
}

const CLOCK_TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU seconds of a process so far, or undefined where /proc is not available. */
function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/**
 * Measures the targets in alternating slices (A B B A A B ...), each for BENCH_DURATION seconds in
 * all: on a shared machine, drift in background load then falls on every target alike, and the
 * ratio stays meaningful even when the absolute numbers move between runs.
 */
async function measure(scenario: Measurement['scenario'], format: Format, targets: LoadTarget[]): Promise<Measurement[]> {
  for (const { target, request, server } of targets) {
    console.log(`  ${scenario} / ${targetName(target)} / ${format}: warm-up ${settings.warmupSeconds} s`);
    const warmup = await runAutocannon(request, settings.warmupSeconds);
    countProfiledRequests(server, warmup.requests.total);
  }
  const rounds = targets.length > 1 ? settings.rounds : 1;
  const slice = settings.durationSeconds / rounds;
  const totals = targets.map(() => ({ samples: new LatencySamples(), requests: 0, seconds: 0, non2xx: 0, errors: 0, timeouts: 0, cpuSeconds: 0 as number | undefined }));
  process.stdout.write(`  ${scenario} / ${format}: measuring ${settings.durationSeconds} s per target in ${rounds} slice(s) of ${fmt(slice, 1)} s `);
  for (let round = 0; round < rounds; round += 1) {
    const order = targets.map((_, index) => index);
    if (round % 2 === 1) order.reverse();
    for (const index of order) {
      const total = totals[index]!;
      const { request, server } = targets[index]!;
      const cpuBefore = processCpuSeconds(server.child.pid);
      const result = await runAutocannon(request, slice, total.samples);
      const cpuAfter = processCpuSeconds(server.child.pid);
      countProfiledRequests(server, result.requests.total);
      total.cpuSeconds = total.cpuSeconds !== undefined && cpuBefore !== undefined && cpuAfter !== undefined
        ? total.cpuSeconds + (cpuAfter - cpuBefore)
        : undefined;
      total.requests += result.requests.total;
      total.seconds += result.duration;
      total.non2xx += result.non2xx;
      total.errors += result.errors;
      total.timeouts += result.timeouts;
      process.stdout.write('.');
    }
  }
  process.stdout.write('\n');

  return targets.map(({ target }, index) => {
    const total = totals[index]!;
    const measurement: Measurement = {
      scenario,
      target,
      format,
      requestsPerSecond: total.requests / total.seconds,
      latencyMs: total.samples.summary(),
      requests: total.requests,
      non2xx: total.non2xx,
      errors: total.errors,
      timeouts: total.timeouts,
      durationSeconds: total.seconds,
      connections: settings.connections,
      serverCpuMicrosPerRequest: total.cpuSeconds !== undefined && total.requests > 0 ? (total.cpuSeconds / total.requests) * 1e6 : undefined,
    };
    console.log(`    ${targetName(target)}: ${fmt(measurement.requestsPerSecond, 0)} req/s, p50 ${fmt(measurement.latencyMs.p50, 2)} ms, p99 ${fmt(measurement.latencyMs.p99, 2)} ms, `
      + `server CPU ${fmt(measurement.serverCpuMicrosPerRequest ?? Number.NaN, 0)} µs/request`);
    if (measurement.non2xx > 0 || measurement.errors > 0) {
      console.log(`    WARNING: ${measurement.non2xx} non-2xx responses, ${measurement.errors} errors (${measurement.timeouts} timeouts)`);
    }
    return measurement;
  });
}

// ---------------------------------------------------------------------------------------------
// Report

function targetName(target: Target): string {
  if (target === 'bare') return 'bare oidc-provider';
  return target === 'bare-koa' ? 'bare Koa + pg' : 'Latchkey';
}

function fmt(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column < 2 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ');
  return [line(headers), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].map((text) => `  ${text}`).join('\n');
}

const MEASUREMENT_HEADERS = ['target', 'format', 'req/s', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'non-2xx', 'errors'];

function measurementRows(measurements: Measurement[]): string[][] {
  return measurements.map((m) => [
    targetName(m.target), m.format, fmt(m.requestsPerSecond, 0), fmt(m.latencyMs.p50, 2), fmt(m.latencyMs.p99, 2),
    fmt(m.serverCpuMicrosPerRequest ?? Number.NaN, 0), String(m.non2xx), String(m.errors),
  ]);
}

interface Ratio {
  format: Format;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  /** bare CPU per request / Latchkey CPU per request: the req/s ratio if the server were the only bottleneck. */
  cpuEfficiency?: number;
  meetsTarget: boolean;
}

function ratios(token: Measurement[]): Ratio[] {
  return FORMATS.flatMap((format) => {
    const bare = token.find((m) => m.target === 'bare' && m.format === format);
    const latchkey = token.find((m) => m.target === 'latchkey' && m.format === format);
    if (!bare || !latchkey) return [];
    const requestsPerSecond = latchkey.requestsPerSecond / bare.requestsPerSecond;
    return [{
      format,
      requestsPerSecond,
      p50: latchkey.latencyMs.p50 / bare.latencyMs.p50,
      p99: latchkey.latencyMs.p99 / bare.latencyMs.p99,
      cpuEfficiency: bare.serverCpuMicrosPerRequest && latchkey.serverCpuMicrosPerRequest
        ? bare.serverCpuMicrosPerRequest / latchkey.serverCpuMicrosPerRequest
        : undefined,
      meetsTarget: requestsPerSecond >= TARGET_RATIO,
    }];
  });
}

/** Two decimals, or three where two would round a miss up to the target (0.797 -> "0.797", not "0.80"). */
function formatRatio(value: number): string {
  const short = value.toFixed(2);
  return value < TARGET_RATIO && Number(short) >= TARGET_RATIO ? value.toFixed(3) : short;
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Run

async function benchFormat(format: Format, latchkeyCredentials: Credentials, token: Measurement[], me: Measurement[]): Promise<void> {
  console.log(`\n[${format}]`);
  const latchkeyEnv = {
    BENCH_DATABASE_URL: `${settings.pgUrl}/${databaseName}`,
    BENCH_REDIS_URL: settings.redisUrl,
    BENCH_REDIS_PREFIX: redisPrefix,
    BENCH_TOKEN_FORMAT: format,
  };
  const started: StartedChild<unknown>[] = [];
  const run = async (work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      const stderr = started.map((child) => child.stderr()).filter(Boolean).join('\n');
      throw stderr ? new Error(`${(error as Error).message}\nserver stderr:\n${stderr}`, { cause: error }) : error;
    } finally {
      await Promise.all(started.splice(0).map((child) => stopChild(child.child)));
    }
  };

  // Scenario "token": bare provider and Latchkey side by side, measured in alternating slices.
  await run(async () => {
    const bare = await startChild<ServerInfo & Credentials>(`bare-${format}`, BARE_SERVER, [], { BENCH_TOKEN_FORMAT: format });
    started.push(bare);
    const latchkey = await startChild<ServerInfo>(`latchkey-token-${format}`, LATCHKEY_SERVER, ['serve'], latchkeyEnv);
    started.push(latchkey);
    await fetchToken(bare.info, bare.info, `bare oidc-provider (${format})`);
    await fetchToken(latchkey.info, latchkeyCredentials, `Latchkey (${format})`);
    token.push(...await measure('token', format, [
      { target: 'bare', request: tokenRequest(bare.info, bare.info), server: bare },
      { target: 'latchkey', request: tokenRequest(latchkey.info, latchkeyCredentials), server: latchkey },
    ]));
  });

  // Scenario "me": a fresh Latchkey process, so that a CPU profile shows this scenario alone.
  await run(async () => {
    const latchkey = await startChild<ServerInfo>(`latchkey-me-${format}`, LATCHKEY_SERVER, ['serve'], latchkeyEnv);
    started.push(latchkey);
    const accessToken = await fetchToken(latchkey.info, latchkeyCredentials, `Latchkey (${format}) token for ${ME_PATH}`);
    await checkMe(latchkey.info, accessToken, `Latchkey (${format})`);
    me.push(...await measure('me', format, [{ target: 'latchkey', request: meRequest(latchkey.info, accessToken), server: latchkey }]));
  });
}

let cleanedUp: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleanedUp ??= (async () => {
    await stopAllChildren();
    try {
      const deleted = await deleteRedisKeys();
      console.log(`cleanup: deleted ${deleted} Redis keys under ${redisPrefix}`);
    } catch (error) {
      console.error(`cleanup: could not delete Redis keys under ${redisPrefix}: ${(error as Error).message}`);
    }
    try {
      await dropDatabase();
      console.log(`cleanup: dropped database ${databaseName}`);
    } catch (error) {
      console.error(`cleanup: could not drop database ${databaseName}: ${(error as Error).message}`);
    }
  })();
  return cleanedUp;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping servers and cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

/** What every results file starts with: when, which commit, on what, with which settings. */
function runDescription() {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    commit: gitCommit(),
    machine: { node: process.version, platform: `${os.platform()} ${os.release()}`, cpus: cpus.length, cpuModel: cpus[0]?.model },
    settings: {
      durationSeconds: settings.durationSeconds,
      warmupSeconds: settings.warmupSeconds,
      rounds: settings.rounds,
      connections: settings.connections,
      pipelining: 1,
    },
  };
}

/** Scenarios "token" and "me", both token formats; results to bench/results/latest.json. */
async function benchTokenScenarios(latchkeyCredentials: Credentials): Promise<void> {
  const token: Measurement[] = [];
  const me: Measurement[] = [];
  for (const format of FORMATS) await benchFormat(format, latchkeyCredentials, token, me);
  const tokenRatios = ratios(token);

  console.log(`\nScenario "token": POST ${TOKEN_PATH} (client_credentials, client_secret_basic, scope=${SCOPE})`);
  console.log(table(MEASUREMENT_HEADERS, measurementRows(token)));
  console.log(`\n  Latchkey / bare oidc-provider, same run, same machine (target: req/s >= ${TARGET_RATIO.toFixed(2)}x):`);
  for (const ratio of tokenRatios) {
    console.log(`    ${ratio.format.padEnd(6)}  req/s ${formatRatio(ratio.requestsPerSecond)}x  ${ratio.meetsTarget ? 'meets target' : 'BELOW TARGET'}`
      + `   (latency p50 ${ratio.p50.toFixed(2)}x, p99 ${ratio.p99.toFixed(2)}x;`
      + ` server CPU per request: bare/Latchkey ${ratio.cpuEfficiency === undefined ? 'n/a' : `${ratio.cpuEfficiency.toFixed(2)}x`})`);
  }
  console.log('  (req/s is the ratio the target applies to; the CPU ratio leaves out Redis, PostgreSQL and the load generator)');
  console.log(`\nScenario "me": GET ${ME_PATH} (Bearer access token of the personal client)`);
  console.log(table(MEASUREMENT_HEADERS, measurementRows(me)));

  const report = { ...runDescription(), targetRatio: TARGET_RATIO, token, ratios: tokenRatios, me };
  await mkdir(RESULTS_DIR, { recursive: true });
  const resultsFile = new URL('./results/latest.json', import.meta.url);
  await writeFile(resultsFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nresults written to ${fileURLToPath(resultsFile)}`);
}

function selectedScenarios(args: string[]): Set<Scenario> {
  const unknown = args.filter((arg) => !(SCENARIOS as readonly string[]).includes(arg));
  if (unknown.length > 0) {
    console.error(`unknown scenario: ${unknown.join(', ')}\nusage: npm run bench [-- ${SCENARIOS.join(' | ')} ...]   (none: all of them)`);
    process.exit(2);
  }
  return new Set(args.length > 0 ? args as Scenario[] : SCENARIOS);
}

async function main(scenarios: Set<Scenario>): Promise<void> {
  const cpus = os.cpus();
  console.log(`Latchkey benchmark: ${[...scenarios].join(', ')}`);
  console.log(`  node ${process.version}, ${cpus.length} CPU(s) ${cpus[0]?.model ?? ''}`.trimEnd());
  console.log(`  ${settings.durationSeconds} s of load per target after ${settings.warmupSeconds} s warm-up (bare and Latchkey alternate in ${settings.rounds} slices),`
    + ` ${settings.connections} connections; autocannon in this process, each server in its own child process`);
  console.log(`  database ${databaseName}, Redis prefix ${redisPrefix}${settings.cpuProfile ? `, CPU profiles in ${PROFILES_DIR}` : ''}`);
  if (settings.cpuProfile) await mkdir(PROFILES_DIR, { recursive: true });

  await createDatabase();
  const prepared = await startChild<Credentials>('latchkey-prepare', LATCHKEY_SERVER, ['prepare'], {
    BENCH_DATABASE_URL: `${settings.pgUrl}/${databaseName}`,
    BENCH_REDIS_URL: settings.redisUrl,
    BENCH_REDIS_PREFIX: redisPrefix,
  });
  await waitForExit(prepared.child, CHILD_START_TIMEOUT_MS);
  if (prepared.child.exitCode !== 0) throw new Error(`preparing the database failed\n${prepared.stderr()}`);

  if (scenarios.has('token')) await benchTokenScenarios({ clientId: prepared.info.clientId, clientSecret: prepared.info.clientSecret });
  if (scenarios.has('crm')) {
    await benchCrm({ settings, databaseName, redisPrefix, startChild, stopChild, measure, table, fmt, runDescription });
  }
  if (settings.cpuProfile) {
    await writeFile(new URL(`./results/profiles/requests-${runId}.json`, import.meta.url), `${JSON.stringify(profiledRequests, null, 2)}\n`);
    console.log(`CPU profiles in ${PROFILES_DIR}; summarise them with: npx node bench/profile-summary.ts`);
  }
}

const scenarios = selectedScenarios(process.argv.slice(2));
try {
  await main(scenarios);
} catch (error) {
  console.error(`\nbenchmark failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
