// Latchkey for the benchmark, started by bench/run.ts as a child process.
//
//   node bench/servers/latchkey-server.ts prepare   migrates the database, creates the keys and the
//                                                   first super admin; prints its personal client
//   node bench/servers/latchkey-server.ts serve     serves the app on 127.0.0.1:<ephemeral>; prints the port
//
// Each prints one line "bench-ready {json}" on stdout (see lifecycle.ts).
//
// Input (environment): BENCH_DATABASE_URL, BENCH_REDIS_URL, BENCH_REDIS_PREFIX, BENCH_TOKEN_FORMAT,
// BENCH_LOG_LEVEL (default silent; logs go to stdout).
// BENCH_REDIS_URL=none runs Latchkey on its in-process store instead of Redis (for diagnosis:
// it shows what the Redis round trips cost).
import { createServer } from 'node:http';

import { buildApp } from '../../src/app.ts';
import { createDependencies, openStores, prepareDatabase } from '../../src/dependencies.ts';
import { loadConfig } from '../../src/platform/config.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { releaseStartupMemory } from '../../src/platform/startup-memory.ts';
import { failAndExit, listenOnLoopback, report, stopOnSignal } from './lifecycle.ts';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

function configFor(port: number) {
  const format = process.env.BENCH_TOKEN_FORMAT ?? 'opaque';
  return loadConfig({
    DATABASE_URL: required('BENCH_DATABASE_URL'),
    REDIS_URL: required('BENCH_REDIS_URL') === 'none' ? undefined : process.env.BENCH_REDIS_URL,
    REDIS_KEY_PREFIX: required('BENCH_REDIS_PREFIX'),
    ISSUER: `http://127.0.0.1:${port}`,
    HOST: '127.0.0.1',
    PORT: String(port),
    ACCESS_TOKEN_FORMAT: format,
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'silent',
    NODE_ENV: 'production',
    // The per-address volume limits off (0), as the performance goals are stated: a load test
    // from one address must not be throttled. Off means the middleware is not installed at all
    // (src/http/rate-limits.ts). The sign-in brute-force throttle stays on: it counts failures
    // only, and the login load signs in with the right password.
    TOKEN_RATE_LIMIT: '0',
    LOGIN_RATE_LIMIT: '0',
  });
}

async function prepare(): Promise<void> {
  const config = configFor(0);
  const logger = createLogger(config);
  const stores = await openStores(config, logger);
  try {
    const admin = await prepareDatabase(config, stores, logger);
    if (!admin) throw new Error('the benchmark database is not fresh: no first super admin was created');
    report({ clientId: admin.clientId, clientSecret: admin.clientSecret, userId: admin.userId });
  } finally {
    await stores.store.close();
    await stores.database.close();
  }
}

async function serve(): Promise<void> {
  const server = createServer();
  const port = await listenOnLoopback(server);
  const config = configFor(port);
  const logger = createLogger(config);
  const stores = await openStores(config, logger);
  const deps = await createDependencies(config, logger, stores);
  server.on('request', buildApp(deps).callback());
  // As src/main.ts does before it listens (a no-op without npm start's --expose-gc).
  releaseStartupMemory();
  stopOnSignal(server, () => deps.close());
  report({ port, issuer: config.issuer, format: config.tokens.accessTokenFormat, audience: config.apiAudience });
}

const mode = process.argv[2];
try {
  if (mode === 'prepare') {
    await prepare();
    process.exit(0);
  } else if (mode === 'serve') {
    await serve();
  } else {
    throw new Error(`usage: latchkey-server.ts prepare|serve (got ${String(mode)})`);
  }
} catch (error) {
  failAndExit(error);
}
