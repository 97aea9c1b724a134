// A PostgreSQL cluster of a test's own (initdb + pg_ctl), for tests that stop or restart the
// database: the shared server must never be touched. It listens on its own port on 127.0.0.1 and
// keeps its socket, data and log in a temporary directory owned by the `postgres` user.
// `startStreamingReplica` makes a hot standby of such a cluster (pg_basebackup -R), for the tests
// of read replicas.
import { execFile } from 'node:child_process';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { freePort } from './processes.ts';

const run = promisify(execFile);
const BIN = process.env.TEST_POSTGRES_BIN ?? '/usr/lib/postgresql/15/bin';

export interface PostgresCluster {
  port: number;
  url: string;
  /** `pg_ctl restart -m fast`: sessions are terminated, as an operator's restart does. */
  restart(): Promise<void>;
  /** `pg_ctl stop -m fast`, and start again with the same settings. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** The postmaster's pid now (it changes with each restart). */
  pid(): Promise<number | undefined>;
  /** Stops the postmaster by its pid and removes the directory; safe to call twice or after a failed start. */
  destroy(): Promise<void>;
}

function uidOf(user: string): Promise<{ uid: number; gid: number }> {
  return Promise.all([run('id', ['-u', user]), run('id', ['-g', user])])
    .then(([uid, gid]) => ({ uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) }));
}

/** Runs a PostgreSQL program as `postgres` (they refuse to run as root). */
async function asPostgres(program: string, args: string[]): Promise<string> {
  const command = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', path.join(BIN, program), ...args]] as const : [path.join(BIN, program), args] as const;
  const { stdout } = await run(command[0], [...command[1]], { timeout: 60_000 });
  return stdout;
}

function exited(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

/** A temporary directory the `postgres` user owns. */
async function postgresDirectory(): Promise<string> {
  const directory = await mkdtemp(path.join(tmpdir(), 'latchkey-pg-'));
  if (process.getuid?.() === 0) {
    const { uid, gid } = await uidOf('postgres');
    await chown(directory, uid, gid);
  }
  return directory;
}

/** Starts the data directory `directory/data` on `port` (made by `prepare`, which runs first); the directory is removed on destroy. */
async function runCluster(directory: string, port: number, prepare: (dataDir: string) => Promise<void>): Promise<PostgresCluster> {
  const dataDir = path.join(directory, 'data');
  const logFile = path.join(directory, 'postgres.log');

  const pid = async (): Promise<number | undefined> => {
    try {
      const first = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0];
      return first ? Number(first) : undefined;
    } catch {
      return undefined;
    }
  };

  let destroyed = false;
  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    const postmaster = await pid();
    if (postmaster && !exited(postmaster)) {
      // SIGINT is PostgreSQL's fast shutdown; SIGQUIT if it does not finish.
      process.kill(postmaster, 'SIGINT');
      for (let waited = 0; waited < 100 && !exited(postmaster); waited += 1) await new Promise((resolve) => setTimeout(resolve, 100));
      if (!exited(postmaster)) process.kill(postmaster, 'SIGQUIT');
    }
    await rm(directory, { recursive: true, force: true });
  };

  const options = `-p ${port} -k ${directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`;
  // -l also keeps the postmaster off this process's pipes, which execFile would wait on.
  const start = () => asPostgres('pg_ctl', ['-D', dataDir, '-o', options, '-l', logFile, '-w', '-t', '60', 'start']).then(() => undefined);
  try {
    await prepare(dataDir);
    await start();
  } catch (error) {
    await destroy();
    throw error;
  }

  return {
    port,
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    pid,
    async restart() {
      await asPostgres('pg_ctl', ['-D', dataDir, '-o', options, '-l', logFile, '-m', 'fast', '-w', '-t', '60', 'restart']);
    },
    async stop() {
      await asPostgres('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop']);
    },
    start,
    destroy,
  };
}

export async function startPostgresCluster(): Promise<PostgresCluster> {
  const directory = await postgresDirectory();
  const port = await freePort();
  // initdb's pg_hba.conf already trusts replication connections from 127.0.0.1.
  return runCluster(directory, port, (dataDir) => asPostgres('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']).then(() => undefined));
}

/**
 * A hot standby of `primary` on its own loopback port: `pg_basebackup -R` copies the primary and
 * writes standby.signal and primary_conninfo, so it starts streaming WAL at once. It is read-only;
 * `pg_wal_replay_pause()` on it makes replication lag on demand.
 */
export async function startStreamingReplica(primary: Pick<PostgresCluster, 'port'>): Promise<PostgresCluster> {
  const directory = await postgresDirectory();
  const port = await freePort();
  return runCluster(directory, port, (dataDir) => asPostgres('pg_basebackup', [
    '-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', dataDir, '-R', '-X', 'stream', '--no-sync', '-c', 'fast',
  ]).then(() => undefined));
}
