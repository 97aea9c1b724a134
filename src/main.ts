// load config -> prepare stores -> build dependencies -> build app -> listen. SIGTERM drains and closes.
import cluster from 'node:cluster';
import { createServer, type Server, type ServerOptions } from 'node:http';

import { buildApp } from './app.ts';
import { createDependencies, describeStores, openStores, prepareDatabase } from './dependencies.ts';
import { ConfigError, loadConfig, type Config } from './platform/config.ts';
import { EmbeddedDatabaseBusyError } from './db/orm.ts';
import { createLogger, type Logger } from './platform/logger.ts';
import { releaseStartupMemory } from './platform/startup-memory.ts';
import { StoreUnavailableError } from './platform/store.ts';
import type { CreatedAdmin } from './services/bootstrap.service.ts';

const STORE_CLOSE_TIMEOUT_MS = 5000;

function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`latchkey: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

/** The first admin's credentials go to the terminal once, never to the log. */
function printFirstAdmin(admin: CreatedAdmin, issuer: string): void {
  const lines = [
    'Latchkey created the first super admin. These credentials are shown only now:',
    `  email:          ${admin.email}`,
    ...(admin.generatedPassword ? [`  password:       ${admin.generatedPassword}`] : ['  password:       (from ADMIN_PASSWORD)']),
    `  client_id:      ${admin.clientId}`,
    `  client_secret:  ${admin.clientSecret}`,
    'Get a token:',
    `  curl -s -u '${admin.clientId}:<client_secret>' -d grant_type=client_credentials ${issuer}/oauth/token`,
  ];
  process.stdout.write(`\n${lines.join('\n')}\n\n`);
}

async function serve(config: Config, logger: Logger, options: { prepare: boolean }): Promise<void> {
  // Cluster workers reach an embedded database through the primary, which serves it.
  const stores = await openStores(config, logger, { joinRunningServer: cluster.isWorker });
  if (options.prepare) {
    const admin = await prepareDatabase(config, stores, logger);
    if (admin) printFirstAdmin(admin, config.issuer);
  }
  const deps = await createDependencies(config, logger, stores);
  const app = buildApp(deps);
  const server = createServer(httpServerOptions(config), app.callback());
  releaseStartupMemory();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  logger.info({ issuer: config.issuer, host: config.host, port: config.port }, `Latchkey listening (${describeStores(stores)})`);
  if (stores.store.kind === 'memory') logger.warn('the embedded stores serve this one process only; set DATABASE_URL and REDIS_URL for several');
  // Each worker of a cluster exposes its own metrics on the next port up.
  const metricsPort = config.metricsPort + config.workerIndex;
  const metricsServer = config.metricsPort === 0 ? undefined : await deps.metrics.serve(metricsPort);
  if (metricsServer) logger.info({ port: metricsPort }, 'metrics on 127.0.0.1');
  installShutdown(server, config, logger, async () => {
    metricsServer?.close();
    await deps.close();
  });
}

/**
 * Limits that keep a slow or silent client from holding a connection: the headers, then the whole
 * request (body included), must arrive in time or Node answers 408 and closes the socket. Node
 * checks them every `connectionsCheckingInterval`, 30 s by default: far coarser than the limits.
 */
function httpServerOptions(config: Pick<Config, 'http'>): ServerOptions {
  const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = config.http;
  return {
    headersTimeout: headersTimeoutMs,
    requestTimeout: requestTimeoutMs,
    // Longer than the idle timeout of common load balancers (60 s), so they close first.
    keepAliveTimeout: keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, headersTimeoutMs),
  };
}

function installShutdown(server: Server, config: Config, logger: Logger, close: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: no new connections, finishing requests in flight');
    const forced = setTimeout(() => {
      logger.warn('shutdown timeout reached; closing remaining connections');
      server.closeAllConnections();
    }, config.shutdownTimeoutMs).unref();
    server.close(async () => {
      clearTimeout(forced);
      // A store that cannot close (a database that stopped answering) must not keep the process alive.
      setTimeout(() => {
        logger.error('the stores did not close in time; exiting anyway');
        process.exit(1);
      }, STORE_CLOSE_TIMEOUT_MS);
      try {
        await close();
      } finally {
        logger.info('stopped');
        process.exit(0);
      }
    });
    // Idle keep-alive sockets would otherwise hold close() open until they time out.
    server.closeIdleConnections();
  };
  // Not `once`: a second copy of the signal must not kill the process mid-drain. It is common:
  // Ctrl-C signals the whole process group, and npm forwards its own copy to the script.
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function runPrimary(config: Config, logger: Logger): Promise<void> {
  // The primary prepares the database once, then forks workers that only serve.
  const stores = await openStores(config, logger);
  const admin = await prepareDatabase(config, stores, logger);
  if (admin) printFirstAdmin(admin, config.issuer);
  await stores.store.close();
  // An embedded database stays open here: the workers connect to it through its socket.
  if (stores.database.mode === 'postgres') await stores.database.close();

  let stopping = false;
  // A replacement worker takes its predecessor's index, and so its metrics port.
  const indexOfWorker = new Map<number, number>();
  const fork = (index: number) => indexOfWorker.set(cluster.fork({ LATCHKEY_WORKER_INDEX: String(index) }).id, index);
  for (let index = 0; index < config.webConcurrency; index += 1) fork(index);
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        void stores.database.close().finally(() => process.exit(0));
      }
      return;
    }
    logger.error({ pid: worker.process.pid, code, signal }, 'worker exited; starting a new one');
    fork(indexOfWorker.get(worker.id) ?? 0);
  });
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

const config = loadConfigOrExit();
const logger = createLogger(config, cluster.isWorker ? { worker: cluster.worker?.id } : {});

try {
  if (cluster.isPrimary && config.webConcurrency > 1) await runPrimary(config, logger);
  else await serve(config, logger, { prepare: cluster.isPrimary });
} catch (error) {
  if (error instanceof EmbeddedDatabaseBusyError || error instanceof StoreUnavailableError) {
    process.stderr.write(`latchkey: ${error.message}\n`);
  } else {
    logger.fatal({ err: error }, 'Latchkey failed to start');
  }
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 100).unref();
}
