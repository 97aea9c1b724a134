// Redis topologies of a test's own, made from the Debian `redis-server` binary: a three-master
// Redis Cluster, and a primary with a replica watched by three sentinels. Every process listens
// on its own free loopback port and keeps its files in a temporary directory; each is stopped by
// its pid, after a failed start too, and any still running when the test process exits is killed.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { Redis } from 'ioredis';

import { freePort } from './processes.ts';

const run = promisify(execFile);
const REDIS_SERVER = process.env.TEST_REDIS_SERVER_BIN ?? 'redis-server';
const REDIS_CLI = process.env.TEST_REDIS_CLI_BIN ?? 'redis-cli';
const HOST = '127.0.0.1';
/**
 * Every node and sentinel asks for this password (`requirepass`), as production setups do, so the
 * tests go through Latchkey's REDIS_PASSWORD and REDIS_SENTINEL_PASSWORD.
 */
export const TOPOLOGY_PASSWORD = 'topology-password-for-tests';

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface RedisProcess {
  port: number;
  pid: number;
  /** Stops the process by its pid (SIGKILL: a crash, not a shutdown) and waits for it to exit. */
  kill(): Promise<void>;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Distinct free ports (a cluster node needs two: clients and the cluster bus). */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** One command on a short-lived connection; rejects at once when nothing listens. */
async function command(port: number, name: string, ...args: string[]): Promise<unknown> {
  const redis = new Redis({ host: HOST, port, password: TOPOLOGY_PASSWORD, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000 });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return await redis.call(name, ...args);
  } finally {
    redis.disconnect();
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    await sleep(100);
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
}

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

async function startRedisProcess(directory: string, port: number, args: string[]): Promise<RedisProcess> {
  const logFile = path.join(directory, `redis-${port}.log`);
  const child = spawn(REDIS_SERVER, [...args, '--requirepass', TOPOLOGY_PASSWORD, '--port', String(port), '--bind', HOST, '--dir', directory, '--logfile', logFile, '--daemonize', 'no'], {
    stdio: 'ignore',
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  };
  try {
    if (!child.pid) throw new Error(`${REDIS_SERVER} did not start`);
    await until(`redis-server on port ${port} answering PING`, async () => {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${await readFile(logFile, 'utf8').catch(() => '')}`);
      return (await command(port, 'PING')) === 'PONG';
    }, 10_000);
  } catch (error) {
    await kill();
    throw error;
  }
  return { port, pid: child.pid, kill };
}

/** Starts processes into `started` one by one, so that a failure part-way still stops every one. */
async function withCleanup<T>(directory: string, started: RedisProcess[], build: () => Promise<T>): Promise<T> {
  try {
    return await build();
  } catch (error) {
    await Promise.allSettled(started.map((redis) => redis.kill()));
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
}

export interface RedisClusterTopology {
  nodes: RedisProcess[];
  /** `REDIS_CLUSTER_NODES` for Latchkey (every master). */
  clusterNodes: string;
  /** How many keys each master holds. */
  keyCounts(): Promise<number[]>;
  destroy(): Promise<void>;
}

/** Three masters with no replicas, joined by `redis-cli --cluster create`, every slot covered. */
export async function startRedisCluster(): Promise<RedisClusterTopology> {
  const directory = await mkdtemp(path.join(tmpdir(), 'latchkey-redis-cluster-'));
  const nodes: RedisProcess[] = [];
  return withCleanup(directory, nodes, async () => {
    const ports = await freePorts(6);
    for (let index = 0; index < 3; index += 1) {
      const nodeDirectory = path.join(directory, `node-${index}`);
      await mkdir(nodeDirectory);
      nodes.push(await startRedisProcess(nodeDirectory, ports[index]!, [
        '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(ports[index + 3]),
        '--cluster-node-timeout', '2000', '--save', '', '--appendonly', 'no',
      ]));
    }
    await run(REDIS_CLI, ['--no-auth-warning', '-a', TOPOLOGY_PASSWORD, '--cluster', 'create', ...nodes.map((node) => `${HOST}:${node.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    for (const node of nodes) {
      await until(`cluster_state:ok on port ${node.port}`, async () => infoField(String(await command(node.port, 'CLUSTER', 'INFO')), 'cluster_state') === 'ok');
    }
    let destroyed = false;
    return {
      nodes,
      clusterNodes: nodes.map((node) => `${HOST}:${node.port}`).join(','),
      keyCounts: () => Promise.all(nodes.map(async (node) => Number(await command(node.port, 'DBSIZE')))),
      async destroy() {
        if (destroyed) return;
        destroyed = true;
        await Promise.allSettled(nodes.map((node) => node.kill()));
        await rm(directory, { recursive: true, force: true });
      },
    };
  });
}

export interface RedisSentinelTopology {
  /** The master name the sentinels monitor (`REDIS_SENTINEL_NAME`). */
  name: string;
  primary: RedisProcess;
  replica: RedisProcess;
  sentinels: RedisProcess[];
  /** `REDIS_SENTINELS` for Latchkey. */
  sentinelAddresses: string;
  /** Resolves once the replica has everything the primary has written so far. */
  replicaCaughtUp(): Promise<void>;
  /** The port the sentinels now name as the primary's. */
  primaryPort(): Promise<number>;
  destroy(): Promise<void>;
}

/**
 * A primary, its replica and three sentinels (quorum 2). The primary is judged down after one
 * second without an answer, so a failover completes within a few seconds of a kill.
 */
export async function startRedisSentinel(name = 'latchkey'): Promise<RedisSentinelTopology> {
  const directory = await mkdtemp(path.join(tmpdir(), 'latchkey-redis-sentinel-'));
  const started: RedisProcess[] = [];
  return withCleanup(directory, started, async () => {
    const [primaryPort, replicaPort, ...sentinelPorts] = await freePorts(5) as [number, number, number, number, number];
    // masterauth: the replica (and a promoted primary's new replica) authenticates to its primary.
    const data = ['--save', '', '--appendonly', 'no', '--masterauth', TOPOLOGY_PASSWORD];
    const primary = await startRedisProcess(directory, primaryPort, data);
    started.push(primary);
    const replica = await startRedisProcess(directory, replicaPort, [...data, '--replicaof', HOST, String(primaryPort)]);
    started.push(replica);
    await until('the replica in sync', async () => infoField(String(await command(replicaPort, 'INFO', 'replication')), 'master_link_status') === 'up');

    const sentinels: RedisProcess[] = [];
    for (const port of sentinelPorts) {
      // A sentinel rewrites its configuration file as it learns the topology: each gets its own.
      const file = path.join(directory, `sentinel-${port}.conf`);
      await writeFile(file, [
        `sentinel monitor ${name} ${HOST} ${primaryPort} 2`,
        `sentinel auth-pass ${name} ${TOPOLOGY_PASSWORD}`,
        // The sentinels ask one another for the same password (their own requirepass).
        `sentinel sentinel-pass ${TOPOLOGY_PASSWORD}`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'));
      const sentinel = await startRedisProcess(directory, port, [file, '--sentinel']);
      started.push(sentinel);
      sentinels.push(sentinel);
    }
    // A failover needs the sentinels to know one another (quorum, leader election) and the replica.
    for (const sentinel of sentinels) {
      await until(`sentinel ${sentinel.port} knowing the others and the replica`, async () => {
        const others = (await command(sentinel.port, 'SENTINEL', 'SENTINELS', name)) as unknown[];
        const replicas = (await command(sentinel.port, 'SENTINEL', 'REPLICAS', name)) as string[][];
        return others.length === 2 && replicas.some((fields) => fields[fields.indexOf('port') + 1] === String(replicaPort)
          && !fields[fields.indexOf('flags') + 1]!.includes('disconnected'));
      }, 30_000);
    }

    let destroyed = false;
    return {
      name,
      primary,
      replica,
      sentinels,
      sentinelAddresses: sentinels.map((sentinel) => `${HOST}:${sentinel.port}`).join(','),
      async replicaCaughtUp() {
        await until('the replica caught up', async () => {
          const written = infoField(String(await command(primaryPort, 'INFO', 'replication')), 'master_repl_offset');
          const applied = infoField(String(await command(replicaPort, 'INFO', 'replication')), 'master_repl_offset');
          return written !== undefined && written === applied;
        }, 10_000);
      },
      async primaryPort() {
        for (const sentinel of sentinels) {
          try {
            const [, port] = (await command(sentinel.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as [string, string];
            return Number(port);
          } catch {
            // Ask the next sentinel.
          }
        }
        throw new Error('no sentinel answered');
      },
      async destroy() {
        if (destroyed) return;
        destroyed = true;
        await Promise.allSettled(started.map((redis) => redis.kill()));
        await rm(directory, { recursive: true, force: true });
      },
    };
  });
}
