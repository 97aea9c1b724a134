// Summarises V8 CPU profiles written by `BENCH_CPU_PROF=1 npm run bench`: where each server's
// main-thread time went, by package / source file and by function, as a share of its busy time
// and, when bench/run.ts recorded how many requests the server answered, in µs per request (the
// figure to compare between the bare provider and Latchkey).
//
//   npx node bench/profile-summary.ts [file.cpuprofile ...]   (default: bench/results/profiles/*)
//
// Caveats: only the main thread is profiled (WebCrypto signing runs on libuv's thread pool and
// shows as `jobPromise`), samples are wall-clock, so on a busy 2-core machine time spent waiting
// for a CPU inside a syscall is charged to that call (`writeUtf8String`), and module compilation at
// start-up is included.
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const PROFILES_DIR = fileURLToPath(new URL('./results/profiles/', import.meta.url));
const IDLE = new Set(['(idle)', '(program)']);

/** Where a frame's code lives: an npm package, a Latchkey source file, or a Node.js internal. */
function owner(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (packageMatch) return packageMatch[1]!;
  const sourceMatch = /\/((?:src|bench)\/.+)$/.exec(url);
  if (sourceMatch) return sourceMatch[1]!;
  return url;
}

/** requests-<run>.json files written by bench/run.ts: profile file name -> requests answered. */
async function requestCounts(directories: string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const directory of new Set(directories)) {
    const names = await readdir(directory).catch(() => [] as string[]);
    for (const name of names.filter((entry) => /^requests-.*\.json$/.test(entry))) {
      const recorded = JSON.parse(await readFile(path.join(directory, name), 'utf8')) as Record<string, number>;
      for (const [profile, requests] of Object.entries(recorded)) counts.set(profile, requests);
    }
  }
  return counts;
}

function top(map: Map<string, number>, busy: number, requests: number | undefined, count: number): string {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, micros]) => {
      const perRequest = requests ? `${(micros / requests).toFixed(1).padStart(7)} µs/req  ` : '';
      return `    ${((micros / busy) * 100).toFixed(1).padStart(5)}%  ${perRequest}${name}`;
    })
    .join('\n');
}

async function summarise(file: string, requests: number | undefined): Promise<void> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  const selfTime = new Map<number, number>();
  profile.samples.forEach((id, index) => selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0)));

  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  // Inclusive (self + callees) time of Latchkey's own functions. A CPU profile sees synchronous
  // stacks only: what an async function does after an await counts under the microtask runner.
  const ownInclusive = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (const [id, micros] of selfTime) {
    const { functionName, url, lineNumber } = nodes.get(id)!.callFrame;
    if (IDLE.has(functionName)) {
      idle += micros;
      continue;
    }
    busy += micros;
    const where = owner(url, functionName);
    byOwner.set(where, (byOwner.get(where) ?? 0) + micros);
    const name = `${functionName || '(anonymous)'}  ${where}${url ? `:${lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);

    const seen = new Set<string>();
    for (let current: number | undefined = id; current !== undefined; current = parents.get(current)) {
      const frame = nodes.get(current)!.callFrame;
      const frameOwner = owner(frame.url, frame.functionName);
      if (!frameOwner.startsWith('src/')) continue;
      const frameName = `${frame.functionName || '(anonymous)'}  ${frameOwner}:${frame.lineNumber + 1}`;
      if (seen.has(frameName)) continue;
      seen.add(frameName);
      ownInclusive.set(frameName, (ownInclusive.get(frameName) ?? 0) + micros);
    }
  }

  const perRequest = requests ? `, ${requests} requests: ${(busy / requests).toFixed(0)} µs busy per request` : '';
  console.log(`\n${path.basename(file)}: busy ${(busy / 1e6).toFixed(1)} s, idle ${(idle / 1e6).toFixed(1)} s${perRequest}`);
  console.log('  self time by package / file:');
  console.log(top(byOwner, busy, requests, 20));
  console.log('  hottest functions (self time):');
  console.log(top(byFunction, busy, requests, 25));
  if (ownInclusive.size > 0) {
    console.log("  Latchkey's own functions, inclusive time (synchronous part only; nested, so not additive):");
    console.log(top(ownInclusive, busy, requests, 15));
  }
}

const files = process.argv.slice(2);
if (files.length === 0) {
  const names = (await readdir(PROFILES_DIR).catch(() => [] as string[])).filter((name) => name.endsWith('.cpuprofile')).sort();
  files.push(...names.map((name) => path.join(PROFILES_DIR, name)));
}
if (files.length === 0) console.log(`no .cpuprofile files given or found in ${PROFILES_DIR}`);
const counts = await requestCounts(files.map((file) => path.dirname(path.resolve(file))));
for (const file of files) await summarise(file, counts.get(path.basename(file)));
