// The reference of the sign-in row (bench/login.ts): a bare node:http server that answers each
// request with one argon2.verify of the user's stored hash. The hash is read from the database
// once, at start; the package is the one Latchkey uses (src/services/passwords.ts), and argon2
// reads its options (argon2id, memory, time, parallelism) from the hash itself, so each verify
// costs what Latchkey's does. The child inherits the same UV_THREADPOOL_SIZE as Latchkey's (argon2
// runs on libuv's thread pool). The request body is the same JSON Latchkey gets; the password is
// taken from it, so a wrong one is refused (401) as by Latchkey.
//
//   node bench/servers/argon2-verify-server.ts     prints "bench-ready {port, issuer}"
//
//   POST /api/v1/auth/login  {"email": ..., "password": ...}   200 {"ok": true} or 401 {"ok": false}
//
// Input (environment): BENCH_DATABASE_URL, BENCH_EMAIL (whose password_hash is verified against).
import { createServer, type IncomingMessage } from 'node:http';

import argon2 from 'argon2';
import pg from 'pg';

import { failAndExit, listenOnLoopback, report, stopOnSignal } from './lifecycle.ts';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

async function storedHash(databaseUrl: string, email: string): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows: [row] } = await client.query<{ password_hash: string }>('select password_hash from app_user where lower(email) = lower($1)', [email]);
    if (!row) throw new Error(`no user ${email}`);
    return row.password_hash;
  } finally {
    await client.end();
  }
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function main(): Promise<void> {
  const hash = await storedHash(required('BENCH_DATABASE_URL'), required('BENCH_EMAIL'));
  const server = createServer((request, response) => {
    void (async () => {
      let ok: boolean;
      try {
        const body = JSON.parse(await readBody(request)) as { password?: unknown };
        ok = typeof body.password === 'string' && await argon2.verify(hash, body.password);
      } catch {
        ok = false; // a body that is not JSON, as a wrong password
      }
      const text = JSON.stringify({ ok });
      response.writeHead(ok ? 200 : 401, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      response.end(text);
    })();
  });
  const port = await listenOnLoopback(server);
  stopOnSignal(server);
  report({ port, issuer: `http://127.0.0.1:${port}` });
}

main().catch(failAndExit);
