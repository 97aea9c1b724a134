// What every benchmark scenario uses: the settings (BENCH_* environment, read once), the server
// child processes, the run's database and Redis prefix, the load generator (autocannon, in this
// process) with alternating slices, and the process figures read from /proc (CPU time, memory).
// bench/run.ts drives the scenarios (bench/token.ts, login.ts, me.ts, crm.ts, rss.ts); they import
// this file, and a few borrow request helpers from token.ts and login.ts, never the other way.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import autocannon from 'autocannon';
import { Redis } from 'ioredis';

import { READY_PREFIX } from './servers/lifecycle.ts';
import type { Format, LoadTarget, Measurement, MemorySample, Request, Settings, StartedChild, Target } from './types.ts';
import { defaultThreadpoolSize } from '../src/threadpool.ts';
import { positiveInteger, withPostgres } from './shared.ts';

const CHILD_START_TIMEOUT_MS = 60_000;
const CHILD_STOP_TIMEOUT_MS = 10_000;

export const LATCHKEY_SERVER = fileURLToPath(new URL('./servers/latchkey-server.ts', import.meta.url));
export const BARE_KOA_SERVER = fileURLToPath(new URL('./servers/bare-koa-server.ts', import.meta.url));
export const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
export const PROFILES_DIR = fileURLToPath(new URL('./results/profiles/', import.meta.url));


// The defaults are the measuring conditions of the performance goals (bench/README.md): 32
// connections (16 for the sign-in), 15 s of load per target after a 10 s warm-up, alternating slices.
export const settings: Settings = {
  durationSeconds: positiveInteger('BENCH_DURATION', 15),
  connections: positiveInteger('BENCH_CONNECTIONS', 32),
  loginConnections: positiveInteger('BENCH_LOGIN_CONNECTIONS', 16),
  warmupSeconds: positiveInteger('BENCH_WARMUP', 10),
  rounds: positiveInteger('BENCH_ROUNDS', 4),
  rssLoadSeconds: positiveInteger('BENCH_RSS_LOAD', 20),
  pgUrl: (process.env.BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432').replace(/\/+$/, ''),
  redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
  cpuProfile: process.env.BENCH_CPU_PROF === '1' || process.env.BENCH_CPU_PROF === 'true',
};

/**
 * libuv's thread pool size every server child gets (argon2 and WebCrypto run there), inherited by
 * all children alike: the environment's UV_THREADPOOL_SIZE, else the size `npm start` gives
 * Latchkey (src/threadpool.ts: one thread per CPU, at least 2), so the references run on the pool
 * Latchkey runs on in production.
 */
export const threadpoolSize = process.env.UV_THREADPOOL_SIZE
  ? `${process.env.UV_THREADPOOL_SIZE} (UV_THREADPOOL_SIZE)`
  : `${(process.env.UV_THREADPOOL_SIZE = String(defaultThreadpoolSize()))} (Latchkey's default, one per CPU)`;

export const runId = randomBytes(4).toString('hex');
export const databaseName = `latchkey_bench_${runId}`;
export const databaseUrl = `${settings.pgUrl}/${databaseName}`;
export const redisPrefix = `bench:${runId}:`;

// ---------------------------------------------------------------------------------------------
// Child processes

const children = new Set<ChildProcess>();

/** Requests each profiled server answered, so bench/profile-summary.ts can show time per request. */
export const profiledRequests: Record<string, number> = {};

function countProfiledRequests(child: StartedChild<unknown>, requests: number): void {
  if (settings.cpuProfile) profiledRequests[child.profile] = (profiledRequests[child.profile] ?? 0) + requests;
}

/** Starts a server script and resolves with the JSON it prints once ready (other output is ignored). */
export async function startChild<T>(name: string, script: string, args: string[], env: Record<string, string>): Promise<StartedChild<T>> {
  const profile = `${name}-${runId}.cpuprofile`;
  const execArgv = settings.cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${PROFILES_DIR}`, `--cpu-prof-name=${profile}`] : [];
  const nodeFlags = script === LATCHKEY_SERVER ? LATCHKEY_NODE_FLAGS : [];
  const child = spawn(process.execPath, [...nodeFlags, ...execArgv, script, ...args], {
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

export function waitForExit(child: ChildProcess, timeoutMs = CHILD_START_TIMEOUT_MS): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => { clearTimeout(timer); resolve(true); });
  });
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (await waitForExit(child, CHILD_STOP_TIMEOUT_MS)) return;
  child.kill('SIGKILL');
  await waitForExit(child, CHILD_STOP_TIMEOUT_MS);
}

export async function stopAllChildren(): Promise<void> {
  await Promise.all([...children].map((child) => stopChild(child)));
}

// Last resort: whatever is still running when this process exits is killed outright.
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/**
 * Runs `work` with the servers it starts through `start`, and stops them afterwards whatever
 * happens; an error carries the servers' last stderr lines.
 */
export async function withServers<T>(work: (start: <I>(name: string, script: string, args: string[], env: Record<string, string>) => Promise<StartedChild<I>>) => Promise<T>): Promise<T> {
  const started: StartedChild<unknown>[] = [];
  const start = async <I>(name: string, script: string, args: string[], env: Record<string, string>) => {
    const child = await startChild<I>(name, script, args, env);
    started.push(child);
    return child;
  };
  try {
    return await work(start);
  } catch (error) {
    const stderr = started.map((child) => child.stderr()).filter(Boolean).join('\n');
    throw stderr ? new Error(`${(error as Error).message}\nserver stderr:\n${stderr}`, { cause: error }) : error;
  } finally {
    await Promise.all(started.map((child) => stopChild(child.child)));
  }
}

/** What bench/servers/latchkey-server.ts `serve` reports. */
export interface LatchkeyInfo {
  port: number;
  issuer: string;
  audience: string;
  format: Format;
}

/** The environment of a Latchkey server child on this run's database and Redis prefix. */
export function latchkeyEnv(format: Format): Record<string, string> {
  return {
    BENCH_DATABASE_URL: databaseUrl, BENCH_REDIS_URL: settings.redisUrl, BENCH_REDIS_PREFIX: redisPrefix, BENCH_TOKEN_FORMAT: format,
    // As `npm start` runs it: type-stripped sources from Node's compile cache (docs/operations.md "Memory").
    NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE ?? fileURLToPath(new URL('../node_modules/.cache/node-compile-cache', import.meta.url)),
  };
}

/**
 * The heap flags (and --expose-gc, for the start-up collection) `npm start` gives Latchkey (read from package.json's start script), so that the
 * Latchkey children run, and use memory, as users run it; the references run with node's defaults.
 */
export const LATCHKEY_NODE_FLAGS: string[] = [
  ...(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } })
    .scripts.start.matchAll(/--max-[a-z-]+-size=\d+|--expose-gc/g),
].map((match) => match[0]);

// ---------------------------------------------------------------------------------------------
// PostgreSQL and Redis


export async function createDatabase(): Promise<void> {
  await withPostgres(settings.pgUrl, (client) => client.query(`create database "${databaseName}"`));
}

export async function dropDatabase(): Promise<void> {
  await withPostgres(settings.pgUrl, (client) => client.query(`drop database if exists "${databaseName}" with (force)`));
}

export async function deleteRedisKeys(): Promise<number> {
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
// HTTP checks before the load

/** One request before any load: the JSON of a 200 answer, or an error naming the target. */
export async function fetchJson(request: Request, label: string, expectedStatus = 200): Promise<Record<string, unknown>> {
  const response = await fetch(request.url, { method: request.method, headers: request.headers, body: request.body });
  const text = await response.text();
  if (response.status !== expectedStatus) throw new Error(`${label}: ${request.method} ${request.url} answered ${response.status}, not ${expectedStatus}: ${text.slice(0, 2000)}`);
  return text === '' ? {} : JSON.parse(text) as Record<string, unknown>;
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

/** autocannon's options for `request`: one request in flight per connection (no pipelining). */
function loadOptions(request: Request, durationSeconds: number, connections: number): autocannon.Options {
  return {
    url: request.url, method: request.method, headers: request.headers, body: request.body, requests: request.requests,
    connections, pipelining: 1, duration: durationSeconds,
  };
}

export function runAutocannon(request: Request, durationSeconds: number, connections: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(loadOptions(request, durationSeconds, connections), (error, result) => (error ? reject(error) : resolve(result)));
  });
}

/**
 * Seconds at the start of every measured slice that are loaded but not counted. Each slice opens
 * fresh connections, and its first responses come only after one full latency (hundreds of ms for
 * a sign-in), so counting from the start would take `latency / slice` off the rate, more off the
 * slower target's; from RAMP_SECONDS on, the server is in its steady state.
 */
const RAMP_SECONDS = 1;

interface Slice {
  /** Responses (2xx or not) that arrived inside the counted window. */
  responses: number;
  /** All responses, the ramp-up's included (for the CPU profiles' time per request). */
  allResponses: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  seconds: number;
  cpuSeconds?: number;
}

/**
 * RAMP_SECONDS + `seconds` of load, of which only the last `seconds` count: the responses that
 * arrive in that window, their latency, and the server's CPU time over it.
 */
function loadSlice(request: Request, seconds: number, connections: number, pid: number | undefined, samples: LatencySamples): Promise<Slice> {
  return new Promise((resolve, reject) => {
    let windowStart: number | undefined;
    let cpuAtStart: number | undefined;
    let responses = 0;
    let non2xx = 0;
    const ramp = setTimeout(() => {
      cpuAtStart = processCpuSeconds(pid);
      windowStart = performance.now();
    }, RAMP_SECONDS * 1000);
    const instance = autocannon(loadOptions(request, RAMP_SECONDS + seconds, connections), (error, result) => {
      clearTimeout(ramp);
      if (error) return reject(error);
      const cpuAtEnd = processCpuSeconds(pid);
      const end = performance.now();
      resolve({
        responses,
        allResponses: result.requests.total,
        non2xx,
        errors: result.errors,
        timeouts: result.timeouts,
        seconds: windowStart === undefined ? 0 : (end - windowStart) / 1000,
        cpuSeconds: cpuAtStart !== undefined && cpuAtEnd !== undefined ? cpuAtEnd - cpuAtStart : undefined,
      });
    });
    instance.on('response', (client, statusCode, resBytes, responseTime) => {
      if (windowStart === undefined) return;
      responses += 1;
      if (statusCode >= 200 && statusCode < 300) samples.add(responseTime);
      else non2xx += 1;
    });
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

const IDLE_POLL_MS = 100;
/** Server CPU per poll under which the server counts as idle: one clock tick (10 ms at 100 Hz) is noise. */
const IDLE_CPU_SECONDS = 1.5 / CLOCK_TICKS_PER_SECOND;
const IDLE_WAIT_MAX_MS = 5000;

/**
 * Waits until a server has finished the requests autocannon abandoned at the end of a slice (it
 * destroys its connections then, and the server still completes what it had started, a sign-in's
 * argon2 hash included), so that this work does not fall into the next target's slice: until the
 * process's CPU time stops growing, at most IDLE_WAIT_MAX_MS.
 */
async function waitUntilIdle(pid: number | undefined): Promise<void> {
  let before = processCpuSeconds(pid);
  if (before === undefined) return;
  for (let waited = 0; waited < IDLE_WAIT_MAX_MS; waited += IDLE_POLL_MS) {
    await sleep(IDLE_POLL_MS);
    const now = processCpuSeconds(pid);
    if (now === undefined || now - before < IDLE_CPU_SECONDS) return;
    before = now;
  }
}

/**
 * Resident memory of a process now (VmRSS) and at its peak so far (VmHWM), in MB (2^20 bytes),
 * from /proc/<pid>/status; undefined where /proc is not available.
 */
export function processMemory(pid: number | undefined): MemorySample | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kilobytes = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rssMb: kilobytes('VmRSS') / 1024, peakRssMb: kilobytes('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

export function targetName(target: Target): string {
  switch (target) {
    case 'bare': return 'bare oidc-provider';
    case 'bare-koa': return 'bare Koa + pg';
    case 'argon2': return 'argon2.verify server';
    case 'latchkey': return 'Latchkey';
  }
}

/**
 * Measures the targets in alternating slices (A B B A A B ...), each for BENCH_DURATION seconds in
 * all, after a warm-up of each: on a shared machine, drift in background load then falls on every
 * target alike, and the ratio stays meaningful even when the absolute numbers move between runs.
 * Each slice counts from RAMP_SECONDS on (loadSlice); between slices the server just measured
 * finishes its abandoned requests (waitUntilIdle), a pause that counts for neither target.
 */
export async function measure(scenario: Measurement['scenario'], format: Format, targets: LoadTarget[], connections = settings.connections): Promise<Measurement[]> {
  for (const { target, request, server } of targets) {
    console.log(`  ${scenario} / ${targetName(target)} / ${format}: warm-up ${settings.warmupSeconds} s, ${connections} connections`);
    const warmup = await runAutocannon(request, settings.warmupSeconds, connections);
    countProfiledRequests(server, warmup.requests.total);
    await waitUntilIdle(server.child.pid);
  }
  const rounds = targets.length > 1 ? settings.rounds : 1;
  const slice = settings.durationSeconds / rounds;
  const totals = targets.map(() => ({ samples: new LatencySamples(), requests: 0, seconds: 0, non2xx: 0, errors: 0, timeouts: 0, cpuSeconds: 0 as number | undefined }));
  process.stdout.write(`  ${scenario} / ${format}: measuring ${settings.durationSeconds} s per target in ${rounds} slice(s) of ${fmt(slice, 2)} s`
    + ` (each after ${RAMP_SECONDS} s of uncounted ramp-up) `);
  for (let round = 0; round < rounds; round += 1) {
    const order = targets.map((_, index) => index);
    if (round % 2 === 1) order.reverse();
    for (const index of order) {
      const total = totals[index]!;
      const { request, server } = targets[index]!;
      const result = await loadSlice(request, slice, connections, server.child.pid, total.samples);
      await waitUntilIdle(server.child.pid);
      countProfiledRequests(server, result.allResponses);
      total.cpuSeconds = total.cpuSeconds !== undefined && result.cpuSeconds !== undefined ? total.cpuSeconds + result.cpuSeconds : undefined;
      total.requests += result.responses;
      total.seconds += result.seconds;
      total.non2xx += result.non2xx;
      total.errors += result.errors;
      total.timeouts += result.timeouts;
      process.stdout.write('.');
    }
  }
  process.stdout.write('\n');

  return targets.map(({ target, server }, index) => {
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
      connections,
      serverCpuMicrosPerRequest: total.cpuSeconds !== undefined && total.requests > 0 ? (total.cpuSeconds / total.requests) * 1e6 : undefined,
      memoryAfter: processMemory(server.child.pid),
    };
    console.log(`    ${targetName(target)}: ${fmt(measurement.requestsPerSecond, 0)} req/s, p50 ${fmt(measurement.latencyMs.p50, 2)} ms, p99 ${fmt(measurement.latencyMs.p99, 2)} ms, `
      + `server CPU ${fmt(measurement.serverCpuMicrosPerRequest ?? Number.NaN, 0)} µs/request, RSS ${fmt(measurement.memoryAfter?.rssMb ?? Number.NaN, 0)} MB`);
    if (measurement.non2xx > 0 || measurement.errors > 0) {
      console.log(`    WARNING: ${measurement.non2xx} non-2xx responses, ${measurement.errors} errors (${measurement.timeouts} timeouts)`);
    }
    return measurement;
  });
}

// ---------------------------------------------------------------------------------------------
// Report

export function fmt(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

/** A text table; the first `leftAligned` columns are left-aligned, the rest right-aligned. */
export function table(headers: string[], rows: string[][], leftAligned = 2): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column < leftAligned ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd();
  return [line(headers), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].map((text) => `  ${text}`).join('\n');
}

export const MEASUREMENT_HEADERS = ['scenario', 'target', 'format', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'RSS MB after', 'non-2xx', 'errors'];

export function measurementRows(measurements: Measurement[]): string[][] {
  return measurements.map((m) => [
    m.scenario, targetName(m.target), m.format, String(m.connections), fmt(m.requestsPerSecond, 0), fmt(m.latencyMs.p50, 2), fmt(m.latencyMs.p99, 2),
    fmt(m.serverCpuMicrosPerRequest ?? Number.NaN, 0), fmt(m.memoryAfter?.rssMb ?? Number.NaN, 0), String(m.non2xx), String(m.errors),
  ]);
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** What every results file starts with: when, which commit, on what, with which settings. */
export function runDescription() {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    commit: gitCommit(),
    machine: { node: process.version, platform: `${os.platform()} ${os.release()}`, cpus: cpus.length, cpuModel: cpus[0]?.model, loadAverage: os.loadavg() },
    settings: {
      durationSeconds: settings.durationSeconds,
      warmupSeconds: settings.warmupSeconds,
      rounds: settings.rounds,
      connections: settings.connections,
      loginConnections: settings.loginConnections,
      rssLoadSeconds: settings.rssLoadSeconds,
      pipelining: 1,
      threadpoolSize,
      cpuProfile: settings.cpuProfile,
    },
  };
}
