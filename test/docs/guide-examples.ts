// `npm run docs:check`: runs every shell example of docs/guide/ against a fresh server, the way a
// reader would paste them, so the guide cannot drift from what the server answers.
//
// It starts Latchkey in embedded mode (no PostgreSQL or Redis needed) with the passwords the
// guide's introduction names, seeds the demo organization, then runs, page by page in the order of
// the guide's table of contents, the introduction's `sh` blocks followed by the page's, in one bash
// (`set -eo pipefail`; curl and jq must be installed). A page fails when a command fails, when
// any answer is a 5xx, or when a command followed by a `# NNN` comment answers another status.
// The two steps a person does in a browser (signing in to authorize a code or a device) are played
// by test/docs/play-user.ts in headless Chromium.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { cleanEnvironment, freePort, startServerProcess } from '../support/processes.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GUIDE = path.join(ROOT, 'docs/guide');
const PLAY_USER = fileURLToPath(new URL('./play-user.ts', import.meta.url));
const DOCUMENTED_URL = 'http://localhost:3000';

/** Lines a reader types by hand, and what the check runs instead. */
const USER_STEPS: { line: RegExp; replacement: string }[] = [
  {
    line: /^CODE='the code from the callback URL'$/m,
    replacement: `CODE=$(node ${PLAY_USER} code "$AUTHORIZE_URL" https://app.example.com/callback agent1@demo.example "$SEED_PASSWORD")`,
  },
  {
    line: /^CODE='the 6 digits your authenticator app shows'$/m,
    replacement: `CODE=$(node ${PLAY_USER} totp "$SECRET")`,
  },
  {
    line: /^sleep 5$/m,
    replacement: `node ${PLAY_USER} device "$(jq -r .verification_uri_complete /tmp/device.json)" agent1@demo.example "$SEED_PASSWORD"; sleep 5`,
  },
];

// Every curl records its answer's status (the last HTTP status line of its headers) for the checks.
const PRELUDE = `set -eo pipefail
__headers=$(mktemp); __status=$(mktemp)
curl() {
  local rc=0
  command curl -D "$__headers" "$@" || rc=$?
  awk '/^HTTP\\//{s=$2} END{print s}' "$__headers" | tr -d '\\r' > "$__status"
  echo "[HTTP $(cat "$__status")]" >&2
  return $rc
}
expect_status() {
  local got; got=$(cat "$__status")
  if [ "$got" != "$1" ]; then echo "[EXPECTED HTTP $1, GOT $got]" >&2; return 1; fi
}
`;

function shellBlocks(markdown: string, language = 'sh'): string[] {
  const blocks: string[] = [];
  const fence = new RegExp(`^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\`$`, 'gm');
  for (const match of markdown.matchAll(fence)) blocks.push(match[1]!);
  return blocks;
}

function pagesInOrder(index: string): string[] {
  const pages = [...index.matchAll(/^\| \[[^\]]+\]\(([\w-]+\.md)\) \|/gm)].map((match) => match[1]!);
  if (pages.length === 0) throw new Error('docs/guide/README.md lists no pages');
  return pages;
}

function assignment(markdown: string, name: string): string {
  const value = new RegExp(`${name}='([^']+)'`).exec(markdown)?.[1];
  if (!value) throw new Error(`docs/guide/README.md sets no ${name}='...'`);
  return value;
}

function script(introduction: string[], page: string, url: string, stepsSeen: Set<number>): string {
  let body = shellBlocks(page).join('\n');
  USER_STEPS.forEach((step, index) => {
    if (step.line.test(body)) stepsSeen.add(index);
    body = body.replace(step.line, step.replacement);
  });
  body = body.replace(/^# (\d{3})$/gm, 'expect_status $1');
  return [PRELUDE, ...introduction, body].join('\n').replaceAll(DOCUMENTED_URL, url);
}

function runBash(source: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-s'], { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(source);
  });
}

for (const tool of ['bash', 'curl', 'jq', 'openssl']) {
  if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).error) throw new Error(`docs:check needs ${tool} on the PATH`);
}

const index = await readFile(path.join(GUIDE, 'README.md'), 'utf8');
const adminPassword = assignment(index, 'ADMIN_PASSWORD');
const seedPassword = assignment(index, 'SEED_PASSWORD');
const introduction = shellBlocks(index);
const workDir = await mkdtemp(path.join(tmpdir(), 'latchkey-docs-'));
const port = await freePort();
const url = `http://localhost:${port}`;
const serverEnv = {
  PORT: String(port), ISSUER: url, DATA_DIR: path.join(workDir, 'data'),
  ADMIN_PASSWORD: adminPassword, SEED_PASSWORD: seedPassword,
};
let failures = 0;
const server = await startServerProcess(serverEnv, 120_000).catch(async (error: unknown) => {
  await rm(workDir, { recursive: true, force: true });
  throw error;
});
try {
  const seeded = spawnSync(process.execPath, [path.join(ROOT, 'src/cli/seed.ts')], { cwd: ROOT, env: cleanEnvironment(serverEnv), encoding: 'utf8' });
  if (seeded.status !== 0) throw new Error(`npm run db:seed failed:\n${seeded.stdout}${seeded.stderr}`);

  const stepsSeen = new Set<number>();
  for (const name of pagesInOrder(index)) {
    const page = await readFile(path.join(GUIDE, name), 'utf8');
    const { code, output } = await runBash(script(introduction, page, url, stepsSeen), workDir, { ...process.env, SEED_PASSWORD: seedPassword });
    const serverErrors = output.split('\n').filter((line) => /^\[HTTP 5\d\d\]/.test(line));
    const requests = output.split('\n').filter((line) => /^\[HTTP \d*\]/.test(line)).length;
    if (code === 0 && serverErrors.length === 0) {
      process.stdout.write(`ok    ${name} (${requests} requests)\n`);
    } else {
      failures += 1;
      process.stdout.write(`FAIL  ${name} (bash exit ${code}, ${serverErrors.length} server errors)\n${output.replace(/^/gm, '      ')}\n`);
    }
  }
  USER_STEPS.forEach((step, index_) => {
    if (!stepsSeen.has(index_)) {
      failures += 1;
      process.stdout.write(`FAIL  no page has the browser step ${step.line}; update test/docs/guide-examples.ts\n`);
    }
  });
} finally {
  await server.stop();
  await rm(workDir, { recursive: true, force: true });
}
if (failures > 0) {
  process.stdout.write(`${failures} failure(s)\n`);
  process.exitCode = 1;
}
