// `npm start` is how README starts Latchkey, so it is how supervisors will stop it: a SIGTERM to
// the npm process itself must drain and stop the server (and every cluster worker), exit 0, and
// leave no process behind.
import { once } from 'node:events';

import { expect } from 'chai';

import { REDIS_URL, createTestDatabase, dropDatabase } from './support/databases.ts';
import { deleteRedisKeys, uniqueRedisPrefix } from './support/harness.ts';
import { descendantsOf, freePort, isRunning, runNpmStart, startServerProcess } from './support/processes.ts';

describe('npm start', function () {
  this.timeout(90_000);

  async function startAndTerminate(env: Record<string, string>, signal: NodeJS.Signals): Promise<{ code: number | null; left: number[]; output: string }> {
    const database = await createTestDatabase();
    const prefix = uniqueRedisPrefix();
    const server = await startServerProcess({ DATABASE_URL: database.url, REDIS_URL, REDIS_KEY_PREFIX: prefix, PORT: String(await freePort()), ...env }, 60_000, runNpmStart);
    const processes = await descendantsOf(server.child.pid!);
    try {
      expect((await fetch(`${server.url}/health`)).status).to.equal(200);
      const exit = once(server.child, 'exit');
      server.child.kill(signal);
      const [code] = (await exit) as [number | null];
      // npm waits for its script; give an orphan a moment to show itself anyway.
      await new Promise((resolve) => setTimeout(resolve, 300));
      return { code, left: processes.filter(isRunning), output: server.output() };
    } finally {
      for (const pid of processes.filter(isRunning)) process.kill(pid, 'SIGKILL');
      await deleteRedisKeys(prefix);
      await dropDatabase(database.name);
    }
  }

  it('stops the server on SIGTERM to npm, exits 0 after draining, and leaves no process behind', async () => {
    const { code, left, output } = await startAndTerminate({}, 'SIGTERM');
    expect(left, 'processes still running').to.deep.equal([]);
    expect(code).to.equal(0);
    expect(output).to.include('"msg":"stopped"');
  });

  it('stops every cluster worker on SIGTERM to npm, with exit code 0', async () => {
    const { code, left, output } = await startAndTerminate({ WEB_CONCURRENCY: '2' }, 'SIGTERM');
    expect(left, 'processes still running').to.deep.equal([]);
    expect(code).to.equal(0);
    expect(output.match(/"msg":"stopped"/g)).to.have.length(2);
  });

  it('drains on Ctrl-C too, where the terminal signals npm and the server alike', async () => {
    const database = await createTestDatabase();
    const prefix = uniqueRedisPrefix();
    const server = await startServerProcess({ DATABASE_URL: database.url, REDIS_URL, REDIS_KEY_PREFIX: prefix, PORT: String(await freePort()) }, 60_000, runNpmStart);
    const processes = await descendantsOf(server.child.pid!);
    try {
      const exit = once(server.child, 'exit');
      // The terminal sends SIGINT to the whole foreground group; npm forwards its own copy as well.
      for (const pid of [server.child.pid!, ...processes]) process.kill(pid, 'SIGINT');
      const [code] = (await exit) as [number | null];
      expect(code).to.equal(0);
      expect(server.output()).to.include('"msg":"stopped"');
    } finally {
      for (const pid of processes.filter(isRunning)) process.kill(pid, 'SIGKILL');
      await deleteRedisKeys(prefix);
      await dropDatabase(database.name);
    }
  });
});
