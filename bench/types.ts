// The shapes bench/run.ts and its scenarios (bench/crm.ts) share. They live here so that run.ts
// imports the scenarios and the scenarios import only this file: no import runs in a circle.
import type { ChildProcess } from 'node:child_process';

import type autocannon from 'autocannon';

export const FORMATS = ['opaque', 'jwt'] as const;
export type Format = (typeof FORMATS)[number];
/** bare: node-oidc-provider alone (token scenario); bare-koa: Koa + pg alone (crm scenario). */
export type Target = 'bare' | 'bare-koa' | 'latchkey';

/** The BENCH_* environment, read once by bench/run.ts. */
export interface Settings {
  durationSeconds: number;
  connections: number;
  warmupSeconds: number;
  rounds: number;
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

export interface Measurement {
  scenario: 'token' | 'me' | 'crm-list' | 'crm-get';
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
}

export interface LoadTarget {
  target: Target;
  request: Request;
  server: StartedChild<unknown>;
}

/** What bench/run.ts lends a scenario. */
export interface BenchContext {
  settings: Settings;
  databaseName: string;
  redisPrefix: string;
  startChild<T>(name: string, script: string, args: string[], env: Record<string, string>): Promise<StartedChild<T>>;
  stopChild(child: ChildProcess): Promise<void>;
  measure(scenario: Measurement['scenario'], format: Format, targets: LoadTarget[]): Promise<Measurement[]>;
  table(headers: string[], rows: string[][]): string;
  fmt(value: number, digits?: number): string;
  runDescription(): Record<string, unknown>;
}
