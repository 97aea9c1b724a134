// Summarises V8 CPU profiles written by `BENCH_CPU_PROF=1 npm run bench`: where the busy time of
// each server went, by package / source file, and the hottest functions (self time).
//
//   npx node bench/profile-summary.ts [file.cpuprofile ...]   (default: bench/results/profiles/*)
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
  const sourceMatch = /\/(src\/.+|bench\/.+)$/.exec(url);
  if (sourceMatch) return sourceMatch[1]!;
  if (url.startsWith('node:')) return url;
  return url;
}

function top(map: Map<string, number>, total: number, count: number): string[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, micros]) => `    ${((micros / total) * 100).toFixed(1).padStart(5)}%  ${name}`);
}

async function summarise(file: string): Promise<void> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfTime = new Map<number, number>();
  profile.samples.forEach((id, index) => selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0)));

  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
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
  }
  console.log(`\n${path.basename(file)}: busy ${(busy / 1e6).toFixed(1)} s, idle/program ${(idle / 1e6).toFixed(1)} s`);
  console.log('  self time by package / file (share of busy time):');
  console.log(top(byOwner, busy, 20).join('\n'));
  console.log('  hottest functions (self time):');
  console.log(top(byFunction, busy, 25).join('\n'));
}

const files = process.argv.slice(2);
if (files.length === 0) {
  const names = (await readdir(PROFILES_DIR).catch(() => [] as string[])).filter((name) => name.endsWith('.cpuprofile')).sort();
  files.push(...names.map((name) => path.join(PROFILES_DIR, name)));
}
if (files.length === 0) console.log(`no .cpuprofile files given or found in ${PROFILES_DIR}`);
for (const file of files) await summarise(file);
