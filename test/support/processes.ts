// Runs `src/main.ts` as a real child process, the way `npm start` does.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Environment without the caller's Latchkey variables, so a test states every one it relies on. */
export function cleanEnvironment(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(DATABASE_URL|REDIS_|ISSUER|PORT|ADMIN_|ACCESS_TOKEN|WEB_CONCURRENCY|DATA_DIR|LOG_LEVEL|COOKIE_KEYS|METRICS_PORT)/.test(name)));
  // Metrics stay off unless a test asks: several servers would contend for the default port.
  return { ...base, METRICS_PORT: '0', ...env };
}

export function runMain(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [MAIN], { cwd: ROOT, env: cleanEnvironment(env), stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `npm start`, exactly as README tells people to run it (npm runs the script through a shell). */
export function runNpmStart(env: Record<string, string>): ChildProcess {
  return spawn('npm', ['start'], { cwd: ROOT, env: cleanEnvironment(env), stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Every process below `pid` (Linux /proc), so a test can prove none is left behind. */
export async function descendantsOf(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name (2nd field) is in parentheses and may hold spaces; the ppid follows it.
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // The process ended while we read.
    }
  }
  const found: number[] = [];
  const visit = (parent: number) => {
    for (const child of parents.get(parent) ?? []) {
      found.push(child);
      visit(child);
    }
  };
  visit(pid);
  return found;
}

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts the server and resolves once it logs that it listens (or rejects with its output). */
export async function startServerProcess(env: Record<string, string>, timeoutMs = 30_000, launch: typeof runMain = runMain): Promise<ServerProcess> {
  const child = launch({ LOG_LEVEL: 'info', ...env });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in time:\n${output}`)), timeoutMs);
    const check = () => {
      if (/Latchkey listening/.test(output) && (!env.WEB_CONCURRENCY || (output.match(/Latchkey listening/g) ?? []).length >= Number(env.WEB_CONCURRENCY))) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}:\n${output}`)); });
  });
  child.removeAllListeners('exit');
  return {
    url: env.ISSUER ?? `http://127.0.0.1:${env.PORT}`,
    child,
    output: () => output,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    },
  };
}
