// Boots the real app on a real loopback listener, against this file's own database and Redis
// key prefix. The issuer is the listener's URL, so strict OAuth clients accept what they discover.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { Redis } from 'ioredis';

import { buildApp } from '../../src/app.ts';
import { createDependencies, openStores, prepareDatabase, type Dependencies } from '../../src/dependencies.ts';
import { loadConfig, type Config } from '../../src/platform/config.ts';
import { createLogger } from '../../src/platform/logger.ts';
import type { CreatedAdmin } from '../../src/services/bootstrap.service.ts';
import { REDIS_URL, createTestDatabase, dropDatabase } from './databases.ts';

export interface TestServer {
  url: string;
  issuer: string;
  config: Config;
  deps: Dependencies;
  admin: CreatedAdmin;
  server: Server;
  databaseUrl: string;
  redisPrefix: string;
  close(): Promise<void>;
}

async function listenOnLoopback(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

export function uniqueRedisPrefix(): string {
  return `latchkey-test:${randomBytes(6).toString('hex')}:`;
}

export async function deleteRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** The environment a test server runs with; `env` overrides any of it. */
export function testEnvironment(databaseUrl: string, redisPrefix: string, port: number, env: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'test',
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: `http://127.0.0.1:${port}`,
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    REDIS_KEY_PREFIX: redisPrefix,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ADMIN_EMAIL: 'root@example.com',
    ...env,
  };
}

/**
 * `databaseUrl`: a database of the test's own (its own cluster), used as it is and not dropped.
 * `localhostIssuer`: ISSUER is http://localhost:PORT (the listener stays on 127.0.0.1, where
 * Chromium resolves localhost), for WebAuthn, which browsers refuse on an IP address.
 */
export async function startTestServer(env: Record<string, string> = {}, options: { databaseUrl?: string; localhostIssuer?: boolean } = {}): Promise<TestServer> {
  const database = options.databaseUrl ? { name: undefined, url: options.databaseUrl } : await createTestDatabase();
  const redisPrefix = uniqueRedisPrefix();
  const started = await boot(database.url, redisPrefix, env, options.localhostIssuer);
  return {
    ...started,
    admin: started.admin!,
    async close() {
      await started.close();
      await deleteRedisKeys(redisPrefix);
      if (database.name) await dropDatabase(database.name);
    },
  };
}

/**
 * Another instance of `first`, as a second process behind the same load balancer: its database,
 * Redis prefix and issuer (so each accepts the other's tokens), on a listener of its own. `env`
 * should name the same stores `first` was given. Closing it leaves the shared state to `first`.
 */
export async function startPeerServer(first: TestServer, env: Record<string, string> = {}): Promise<TestServer> {
  const started = await boot(first.databaseUrl, first.redisPrefix, { ISSUER: first.issuer, ...env });
  return { ...started, admin: first.admin };
}

async function boot(databaseUrl: string, redisPrefix: string, env: Record<string, string>, localhostIssuer = false) {
  const server = createServer();
  const port = await listenOnLoopback(server);
  const config = loadConfig(testEnvironment(databaseUrl, redisPrefix, port, localhostIssuer ? { ISSUER: `http://localhost:${port}`, ...env } : env));
  const logger = createLogger(config);
  const stores = await openStores(config, logger);
  const admin = await prepareDatabase(config, stores, logger);
  const deps = await createDependencies(config, logger, stores);
  server.on('request', buildApp(deps).callback());
  return {
    url: localhostIssuer ? config.issuer : `http://127.0.0.1:${port}`,
    issuer: config.issuer,
    config,
    deps,
    admin,
    server,
    databaseUrl,
    redisPrefix,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await deps.close();
    },
  };
}
