// A client that sends its headers or body a byte at a time must not hold a connection for Node's
// default five minutes: HTTP_HEADERS_TIMEOUT_MS and HTTP_REQUEST_TIMEOUT_MS cut it off with 408.
import { connect, type Socket } from 'node:net';

import { expect } from 'chai';

import { REDIS_URL, createTestDatabase, dropDatabase } from '../support/databases.ts';
import { deleteRedisKeys, uniqueRedisPrefix } from '../support/harness.ts';
import { freePort, startServerProcess, type ServerProcess } from '../support/processes.ts';

interface Trickle { answer: string; closedAfterMs: number }

/** Writes `head` at once, then `tail` one byte per `everyMs`, until the server answers or closes. */
async function trickle(port: number, head: string, tail: string, everyMs: number): Promise<Trickle> {
  const socket: Socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const started = Date.now();
  let answer = '';
  socket.on('data', (chunk: Buffer) => { answer += chunk.toString(); });
  socket.write(head);
  let sent = 0;
  const timer = setInterval(() => {
    if (sent < tail.length && socket.writable) socket.write(tail[sent++]!);
  }, everyMs);
  try {
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.once('error', () => resolve());
    });
  } finally {
    clearInterval(timer);
    socket.destroy();
  }
  return { answer, closedAfterMs: Date.now() - started };
}

describe('slow clients', function () {
  this.timeout(60_000);

  let database: { name: string; url: string };
  const prefix = uniqueRedisPrefix();
  let server: ServerProcess;
  let port: number;

  before(async () => {
    database = await createTestDatabase();
    port = await freePort();
    server = await startServerProcess({
      DATABASE_URL: database.url, REDIS_URL, REDIS_KEY_PREFIX: prefix, PORT: String(port),
      HTTP_HEADERS_TIMEOUT_MS: '1000', HTTP_REQUEST_TIMEOUT_MS: '2000',
    });
  });
  after(async () => {
    await server?.stop();
    await deleteRedisKeys(prefix);
    await dropDatabase(database.name);
  });

  it('cuts off a body that trickles in, with 408, soon after HTTP_REQUEST_TIMEOUT_MS', async () => {
    const body = JSON.stringify({ email: 'slow@example.com', password: 'x'.repeat(200) });
    const head = `POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const { answer, closedAfterMs } = await trickle(port, head, body, 200);
    expect(answer).to.match(/^HTTP\/1\.1 408 /);
    expect(closedAfterMs).to.be.within(1500, 5000);
  });

  it('cuts off headers that trickle in (slowloris), soon after HTTP_HEADERS_TIMEOUT_MS', async () => {
    const headers = 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n' + 'X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(20) + '\r\n';
    const { answer, closedAfterMs } = await trickle(port, 'GET /health HTTP/1.1\r\n', headers.slice(22), 100);
    expect(answer).to.match(/^HTTP\/1\.1 408 /);
    expect(closedAfterMs).to.be.within(500, 4000);
  });

  it('still serves a client that sends its request at a normal pace', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/health`);
    expect(response.status).to.equal(200);
  });
});
