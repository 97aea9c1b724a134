// The shapes the benchmark's modules share (bench/harness.ts, the scenarios, bench/run.ts).
import type { ChildProcess } from 'node:child_process';

import type autocannon from 'autocannon';

export const FORMATS = ['opaque', 'jwt'] as const;
export type Format = (typeof FORMATS)[number];
/**
 * bare: node-oidc-provider alone (token, rss); argon2: a server doing only argon2.verify (login);
 * bare-koa: Koa + pg alone (me, customers, crm-*); latchkey: the app.
 */
export type Target = 'bare' | 'argon2' | 'bare-koa' | 'latchkey';

/** The BENCH_* environment, read once by bench/harness.ts. */
export interface Settings {
  durationSeconds: number;
  connections: number;
  /** Connections of the sign-in load (the issue measures it with 16). */
  loginConnections: number;
  warmupSeconds: number;
  rounds: number;
  /** Seconds of token load before the "loaded" RSS is read. */
  rssLoadSeconds: number;
  pgUrl: string;
  redisUrl: string;
  cpuProfile: boolean;
}

export interface StartedChild<T> {
  child: ChildProcess;
  info: T;
  stderr: () => string;
  /** Its CPU profile's file name when BENCH_CPU_PROF is on. */
  profile: string;
}

export interface Request {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  /** autocannon's request sequence (each connection cycles through it), e.g. a setupRequest that varies the path. */
  requests?: autocannon.Request[];
}

/** Resident memory of a server process, in MB (2^20 bytes): now (VmRSS) and its peak so far (VmHWM). */
export interface MemorySample {
  rssMb: number;
  peakRssMb: number;
}

export interface Measurement {
  scenario: 'token' | 'login' | 'me' | 'customers' | 'crm-list' | 'crm-get';
  target: Target;
  format: Format;
  requestsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; average: number; max: number };
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationSeconds: number;
  connections: number;
  /**
   * CPU time of the server process (all its threads) per request, from /proc (Linux only). Unlike
   * req/s it hardly depends on how much CPU the load generator, Redis and PostgreSQL take.
   */
  serverCpuMicrosPerRequest?: number;
  /** The server's memory right after its measurement (warm-up and load behind it). */
  memoryAfter?: MemorySample;
}

export interface LoadTarget {
  target: Target;
  request: Request;
  server: StartedChild<unknown>;
}

/** Scenario "rss": the memory of Latchkey and of the bare provider, idle and after token load. */
export interface RssResult {
  loadSeconds: number;
  format: Format;
  latchkey: { idle?: MemorySample; loaded?: MemorySample; requests: number };
  bare: { idle?: MemorySample; loaded?: MemorySample; requests: number };
}

/** What the run prepared before any scenario (bench/run.ts), and what scenarios read from it. */
export interface Prepared {
  /** The first super admin's personal client (client_credentials, client_secret_basic). */
  admin: { clientId: string; clientSecret: string; userId: string };
  /** The demo organization (bench/data.ts) and the user the sign-in, /me and CRM loads act as. */
  demo: { organizationId: string; email: string; password: string; userId: string; customers: number };
}
