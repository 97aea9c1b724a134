// Shared plumbing of the benchmark servers: each one is a child process of bench/run.ts that
// reports itself as one JSON line on stdout and stops when told (SIGTERM/SIGINT) or when its
// parent goes away (stdin closes), so that no server outlives a failed or interrupted run.
import type { Server } from 'node:http';

/** Marks the report line, so that log output on stdout (BENCH_LOG_LEVEL) cannot be mistaken for it. */
export const READY_PREFIX = 'bench-ready ';

export function report(info: Record<string, unknown>): void {
  process.stdout.write(`${READY_PREFIX}${JSON.stringify(info)}\n`);
}

/** Listens on an ephemeral loopback port and returns it. */
export async function listenOnLoopback(server: Server): Promise<number> {
  // Same as src/main.ts: load-generator connections stay open between requests.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('server has no TCP address');
  return address.port;
}

export function stopOnSignal(server: Server, close: () => Promise<void> = async () => {}): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.closeAllConnections();
    server.close();
    // process.exit (not a kill) lets --cpu-prof write its profile.
    close().catch(() => {}).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}

export function failAndExit(error: unknown): never {
  process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
}
