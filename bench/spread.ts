// The spread of the goal rows over several runs of `npm run bench`: for each row its figure in
// every run (the req/s ratio, or Latchkey's RSS in MB), lowest, highest, and how many runs passed.
//
//   npx node bench/spread.ts                     the last 3 runs in bench/results/
//   npx node bench/spread.ts 5                   the last 5
//   npx node bench/spread.ts a.json b.json ...   these summaries
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import type { SummaryRow } from './summary.ts';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

interface Run {
  file: string;
  date: string;
  commit?: string;
  settings: { durationSeconds: number; connections: number };
  summary: SummaryRow[];
}

async function files(args: string[]): Promise<string[]> {
  if (args.length > 0 && !/^\d+$/.test(args[0]!)) return args;
  const count = Number(args[0] ?? 3);
  const names = (await readdir(RESULTS_DIR)).filter((name) => /^summary-\d.*\.json$/.test(name)).sort();
  return names.slice(-count).map((name) => `${RESULTS_DIR}${name}`);
}

function figure(row: SummaryRow): number | undefined {
  return row.ratio ?? row.latchkeyMb;
}

const paths = await files(process.argv.slice(2));
if (paths.length === 0) {
  console.error(`no summaries in ${RESULTS_DIR}: run npm run bench first`);
  process.exit(1);
}
const runs = await Promise.all(paths.map(async (file) => ({ file, ...JSON.parse(await readFile(file, 'utf8')) as Omit<Run, 'file'> })));
for (const run of runs) console.log(`  ${run.date}  commit ${run.commit ?? '?'}  ${run.settings.durationSeconds} s per target  ${run.file}`);
if (new Set(runs.map((run) => JSON.stringify(run.settings))).size > 1) console.log('  note: these runs do not share their settings (see each file\'s "settings")');

const ids = [...new Set(runs.flatMap((run) => run.summary.map((row) => row.id)))];
console.log('');
for (const id of ids) {
  const rows = runs.map((run) => run.summary.find((row) => row.id === id && row.pass !== undefined));
  const measured = rows.filter((row): row is SummaryRow => row !== undefined);
  if (measured.length === 0) continue;
  const values = measured.map(figure).filter((value): value is number => value !== undefined);
  const memory = measured[0]!.ratio === undefined;
  const show = (value: number) => (memory ? `${value.toFixed(0)} MB` : value.toFixed(2));
  const p99 = measured.map((row) => row.latchkeyP99Ms).filter((value): value is number => value !== undefined);
  console.log(`  ${measured[0]!.path.padEnd(42)} ${values.map(show).join(' / ').padEnd(24)} range ${show(Math.min(...values))}..${show(Math.max(...values))}`
    + `  ${measured.filter((row) => row.pass).length} of ${measured.length} pass (${measured[0]!.goal})`
    + (id === 'login' ? `; Latchkey p99 ${p99.map((value) => value.toFixed(0)).join(' / ')} ms` : ''));
}
