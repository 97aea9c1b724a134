// Latchkey benchmark (`npm run bench`; see bench/README.md): every row of the performance goals,
// Latchkey against its reference in the same run on the same machine, with a verdict per row.
//
//   npm run bench                    the goal rows: token, rss, login, me, customers
//   npm run bench -- login me        only those scenarios (any of SCENARIOS; `all` adds the extras)
//   npm run bench -- crm-large       an extra: the CRM reads on 100,000 customers
//
// Every server runs in its own child process on 127.0.0.1 so that autocannon, here, does not share
// its event loop. Settings (BENCH_DURATION, BENCH_CONNECTIONS, ...) are read in bench/harness.ts.
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';

import type { Measurement, Prepared, RssResult } from './types.ts';
import {
  LATCHKEY_SERVER, MEASUREMENT_HEADERS, PROFILES_DIR, RESULTS_DIR, createDatabase, databaseName, databaseUrl, deleteRedisKeys, dropDatabase,
  measurementRows, profiledRequests, redisPrefix, runDescription, runId, settings, startChild, stopAllChildren, table, threadpoolSize, waitForExit,
} from './harness.ts';
import { seedBenchData } from './data.ts';
import { benchToken } from './token.ts';
import { benchRss } from './rss.ts';
import { benchLogin } from './login.ts';
import { benchMe } from './me.ts';
import { benchCrmLarge, benchCustomers } from './crm.ts';
import { printSummary, summarize } from './summary.ts';

/** The scenarios of the goal rows, in the order they run. */
const GOAL_SCENARIOS = ['token', 'rss', 'login', 'me', 'customers'] as const;
/**
 * Run order of everything; the extras (me-jwt, crm-large) run only when named (or with `all`).
 * crm-large grows the organization the customers row reads, so it comes after it.
 */
const ORDER = ['token', 'rss', 'login', 'me', 'me-jwt', 'customers', 'crm-large'] as const;
type Scenario = (typeof ORDER)[number];
const ALIASES: Record<string, readonly Scenario[]> = { all: ORDER, crm: ['customers', 'crm-large'] };

function selectedScenarios(args: string[]): Scenario[] {
  if (args.length === 0) return [...GOAL_SCENARIOS];
  const wanted = new Set<Scenario>();
  const unknown: string[] = [];
  for (const arg of args) {
    if (ALIASES[arg]) ALIASES[arg].forEach((scenario) => wanted.add(scenario));
    else if ((ORDER as readonly string[]).includes(arg)) wanted.add(arg as Scenario);
    else unknown.push(arg);
  }
  if (unknown.length > 0) {
    console.error(`unknown scenario: ${unknown.join(', ')}\nusage: npm run bench [-- ${[...ORDER, ...Object.keys(ALIASES)].join(' | ')} ...]`
      + `   (none: ${GOAL_SCENARIOS.join(', ')})`);
    process.exit(2);
  }
  return ORDER.filter((scenario) => wanted.has(scenario));
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

/** The database migrated, the first super admin and its personal client, the demo organization. */
async function prepare(): Promise<Prepared> {
  await createDatabase();
  const prepared = await startChild<Prepared['admin']>('latchkey-prepare', LATCHKEY_SERVER, ['prepare'], {
    BENCH_DATABASE_URL: databaseUrl,
    BENCH_REDIS_URL: settings.redisUrl,
    BENCH_REDIS_PREFIX: redisPrefix,
  });
  await waitForExit(prepared.child);
  if (prepared.child.exitCode !== 0) throw new Error(`preparing the database failed\n${prepared.stderr()}`);
  const demo = await seedBenchData(databaseUrl);
  console.log(`  prepared: migrations, first super admin's personal client, organization with ${demo.customers} customers (${demo.email})`);
  return { admin: prepared.info, demo };
}

async function main(scenarios: Scenario[]): Promise<void> {
  const cpus = os.cpus();
  console.log(`Latchkey benchmark: ${scenarios.join(', ')}`);
  console.log(`  node ${process.version}, ${cpus.length} CPU(s) ${cpus[0]?.model ?? ''}, load average ${os.loadavg().map((load) => load.toFixed(2)).join(' ')}`.trimEnd());
  console.log(`  ${settings.durationSeconds} s of load per target after ${settings.warmupSeconds} s warm-up (reference and Latchkey alternate in ${settings.rounds} slices),`
    + ` ${settings.connections} connections (sign-in ${settings.loginConnections}); RSS after ${settings.rssLoadSeconds} s of token load;`
    + ` thread pool ${threadpoolSize}; autocannon in this process, each server in its own child process`);
  console.log(`  database ${databaseName}, Redis prefix ${redisPrefix}${settings.cpuProfile ? `, CPU profiles in ${PROFILES_DIR}` : ''}`);
  if (settings.cpuProfile) await mkdir(PROFILES_DIR, { recursive: true });

  const prepared = await prepare();
  const measurements: Measurement[] = [];
  let rss: RssResult | undefined;
  for (const scenario of scenarios) {
    switch (scenario) {
      case 'token': measurements.push(...await benchToken(prepared)); break;
      case 'rss': rss = await benchRss(prepared); break;
      case 'login': measurements.push(...await benchLogin(prepared)); break;
      case 'me': measurements.push(...await benchMe(prepared, 'opaque')); break;
      case 'me-jwt': measurements.push(...await benchMe(prepared, 'jwt')); break;
      case 'customers': measurements.push(...await benchCustomers(prepared)); break;
      case 'crm-large': measurements.push(...await benchCrmLarge(prepared)); break;
    }
  }

  if (measurements.length > 0) {
    console.log('\nAll measurements (latency of the 2xx responses; server CPU: all threads of the server process, from /proc)');
    console.log(table(MEASUREMENT_HEADERS, measurementRows(measurements), 3));
  }
  const summary = summarize(measurements, rss);
  printSummary(summary);

  const report = { ...runDescription(), runId, scenarios, summary: summary.goals, extras: summary.extras, rss, measurements };
  await mkdir(RESULTS_DIR, { recursive: true });
  const text = `${JSON.stringify(report, null, 2)}\n`;
  const stamped = `summary-${report.date.replace(/[:.]/g, '-')}.json`;
  await writeFile(`${RESULTS_DIR}summary-latest.json`, text);
  await writeFile(`${RESULTS_DIR}${stamped}`, text);
  console.log(`\nresults written to ${RESULTS_DIR}summary-latest.json (and ${stamped}; compare runs with: npx node bench/spread.ts)`);
  if (settings.cpuProfile) {
    await writeFile(`${PROFILES_DIR}requests-${runId}.json`, `${JSON.stringify(profiledRequests, null, 2)}\n`);
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
