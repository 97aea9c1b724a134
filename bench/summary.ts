// The verdict of a run: one row per performance goal (bench/README.md "The goals"), each with
// Latchkey's figure, its reference's in the same run, the ratio, the goal and a one-line verdict;
// then the extra comparisons, which have no goal. bench/run.ts prints it and writes it to
// bench/results/summary-latest.json; bench/spread.ts reads several of those.
import type { Format, Measurement, RssResult } from './types.ts';
import { fmt, table } from './harness.ts';

interface RatioGoal {
  kind: 'ratio';
  /** req/s Latchkey / req/s reference at least this. */
  minRatio: number;
  /** And Latchkey's p99 below this (the sign-in row). */
  maxP99Ms?: number;
}

interface MemoryGoal {
  kind: 'memory';
  state: 'idle' | 'loaded';
  maxMb: number;
}

interface GoalDefinition {
  id: string;
  path: string;
  reference: Reference;
  goal: RatioGoal | MemoryGoal;
  scenario?: Measurement['scenario'];
  format?: Format;
}

/** The references, by the short name the tables use. */
export const REFERENCES = {
  'bare provider': 'node-oidc-provider alone, configured like Latchkey\'s for client_credentials (bench/servers/bare-provider-server.ts)',
  'argon2.verify': 'a bare HTTP server doing one argon2.verify of the same stored hash per request, same thread pool (bench/servers/argon2-verify-server.ts)',
  'bare Koa + pg': 'Koa and a pg Pool running the same SQL for the same user or organization, no authentication (bench/servers/bare-koa-server.ts)',
} as const;
type Reference = keyof typeof REFERENCES;

export const GOALS: GoalDefinition[] = [
  { id: 'token-opaque', path: 'client_credentials, opaque', reference: 'bare provider', scenario: 'token', format: 'opaque', goal: { kind: 'ratio', minRatio: 0.8 } },
  { id: 'token-jwt', path: 'client_credentials, jwt (ES256)', reference: 'bare provider', scenario: 'token', format: 'jwt', goal: { kind: 'ratio', minRatio: 0.8 } },
  { id: 'login', path: 'POST /api/v1/auth/login', reference: 'argon2.verify', scenario: 'login', format: 'opaque', goal: { kind: 'ratio', minRatio: 0.8, maxP99Ms: 500 } },
  { id: 'me', path: 'GET /api/v1/me (opaque)', reference: 'bare Koa + pg', scenario: 'me', format: 'opaque', goal: { kind: 'ratio', minRatio: 0.7 } },
  { id: 'customers', path: 'GET /api/v1/customers?page_size=20 (200)', reference: 'bare Koa + pg', scenario: 'customers', format: 'opaque', goal: { kind: 'ratio', minRatio: 0.7 } },
  { id: 'rss-idle', path: 'RSS idle', reference: 'bare provider', goal: { kind: 'memory', state: 'idle', maxMb: 150 } },
  { id: 'rss-loaded', path: 'RSS after token load', reference: 'bare provider', goal: { kind: 'memory', state: 'loaded', maxMb: 300 } },
];

/** Comparisons the run may make beyond the goals (scenarios "me-jwt" and "crm-large"). */
const EXTRAS: { id: string; path: string; reference: Reference; scenario: Measurement['scenario']; format: Format }[] = [
  { id: 'me-jwt', path: 'GET /api/v1/me (jwt)', reference: 'bare Koa + pg', scenario: 'me', format: 'jwt' },
  { id: 'crm-list', path: 'GET /api/v1/customers?page=1&page_size=20 (100,000)', reference: 'bare Koa + pg', scenario: 'crm-list', format: 'opaque' },
  { id: 'crm-get', path: 'GET /api/v1/customers/:id (100,000)', reference: 'bare Koa + pg', scenario: 'crm-get', format: 'opaque' },
];

export interface SummaryRow {
  id: string;
  path: string;
  reference: string;
  /** Latchkey's figure and the reference's, as printed. */
  latchkeyFigure: string;
  referenceFigure: string;
  /** req/s Latchkey / req/s reference (ratio rows). */
  ratio?: number;
  /** Server CPU per request, reference / Latchkey: the req/s ratio if the server were the only bottleneck. */
  cpuRatio?: number;
  /** Latchkey's memory in MB (memory rows), p99 in ms (ratio rows). */
  latchkeyMb?: number;
  latchkeyP99Ms?: number;
  goal: string;
  /** undefined: not measured in this run. */
  pass?: boolean;
  verdict: string;
}

/** Two decimals, or three where two would round a miss up to the goal (0.797 -> "0.797", not "0.80"). */
function formatRatio(value: number, goal: number): string {
  const short = value.toFixed(2);
  return value < goal && Number(short) >= goal ? value.toFixed(3) : short;
}

function throughput(m: Measurement): string {
  return `${fmt(m.requestsPerSecond, 0)}/s, p99 ${fmt(m.latencyMs.p99, m.latencyMs.p99 < 10 ? 1 : 0)} ms`;
}

function pair(measurements: Measurement[], scenario: Measurement['scenario'], format: Format): { latchkey: Measurement; reference: Measurement } | undefined {
  const latchkey = measurements.find((m) => m.scenario === scenario && m.format === format && m.target === 'latchkey');
  const reference = measurements.find((m) => m.scenario === scenario && m.format === format && m.target !== 'latchkey');
  return latchkey && reference ? { latchkey, reference } : undefined;
}

function ratioRow(definition: { id: string; path: string; reference: string }, found: ReturnType<typeof pair>, goal?: RatioGoal): SummaryRow {
  const goalText = goal ? `ratio >= ${goal.minRatio}${goal.maxP99Ms ? `, p99 < ${goal.maxP99Ms} ms` : ''}` : 'none';
  if (!found) return { ...definition, latchkeyFigure: '-', referenceFigure: '-', goal: goalText, verdict: 'not run' };
  const { latchkey, reference } = found;
  const ratio = latchkey.requestsPerSecond / reference.requestsPerSecond;
  const cpuRatio = reference.serverCpuMicrosPerRequest && latchkey.serverCpuMicrosPerRequest
    ? reference.serverCpuMicrosPerRequest / latchkey.serverCpuMicrosPerRequest : undefined;
  const row: SummaryRow = {
    ...definition, latchkeyFigure: throughput(latchkey), referenceFigure: throughput(reference), ratio, cpuRatio,
    latchkeyP99Ms: latchkey.latencyMs.p99, goal: goalText, verdict: `${formatRatio(ratio, goal?.minRatio ?? 0)} (no goal)`,
  };
  if (!goal) return row;
  const ratioOk = ratio >= goal.minRatio;
  const parts = [`${formatRatio(ratio, goal.minRatio)} ${ratioOk ? '>=' : '<'} ${goal.minRatio}`];
  let pass = ratioOk;
  if (goal.maxP99Ms !== undefined) {
    const p99Ok = latchkey.latencyMs.p99 < goal.maxP99Ms;
    pass &&= p99Ok;
    parts.push(`p99 ${fmt(latchkey.latencyMs.p99, 0)} ms ${p99Ok ? '<' : '>='} ${goal.maxP99Ms} ms`);
  }
  if (latchkey.non2xx > 0 || latchkey.errors > 0) {
    pass = false;
    parts.push(`${latchkey.non2xx} non-2xx, ${latchkey.errors} errors`);
  }
  return { ...row, pass, verdict: `${pass ? 'PASS' : 'FAIL'} ${parts.join(', ')}` };
}

function memoryRow(definition: GoalDefinition, goal: MemoryGoal, rss: RssResult | undefined): SummaryRow {
  const goalText = `Latchkey < ${goal.maxMb} MB`;
  const latchkey = rss?.latchkey[goal.state];
  const bare = rss?.bare[goal.state];
  if (!rss || !latchkey) return { ...definition, latchkeyFigure: '-', referenceFigure: '-', goal: goalText, verdict: 'not run' };
  const figure = (sample: typeof latchkey | undefined) => (sample ? `${fmt(sample.rssMb, 0)} MB${goal.state === 'loaded' ? ` (peak ${fmt(sample.peakRssMb, 0)})` : ''}` : 'n/a');
  const pass = latchkey.rssMb < goal.maxMb;
  const path = goal.state === 'loaded' ? `RSS after ${rss.loadSeconds} s of token load` : definition.path;
  return {
    ...definition, path, latchkeyFigure: figure(latchkey), referenceFigure: figure(bare), latchkeyMb: latchkey.rssMb, goal: goalText, pass,
    verdict: `${pass ? 'PASS' : 'FAIL'} ${fmt(latchkey.rssMb, 0)} MB ${pass ? '<' : '>='} ${goal.maxMb} MB`,
  };
}

export function summarize(measurements: Measurement[], rss: RssResult | undefined): { goals: SummaryRow[]; extras: SummaryRow[] } {
  const goals = GOALS.map((definition) => {
    const { goal, scenario, format, ...shown } = definition;
    return goal.kind === 'memory'
      ? memoryRow(definition, goal, rss)
      : ratioRow({ id: shown.id, path: shown.path, reference: shown.reference }, pair(measurements, scenario!, format!), goal);
  });
  const extras = EXTRAS.flatMap(({ scenario, format, ...shown }) => {
    const found = pair(measurements, scenario, format);
    return found ? [ratioRow(shown, found)] : [];
  });
  return { goals, extras };
}

const HEADERS = ['path', 'Latchkey', 'reference', 'ratio', 'CPU ratio', 'goal', 'verdict'];

function rows(summary: SummaryRow[]): string[][] {
  return summary.map((row) => [
    row.path, row.latchkeyFigure, `${row.reference} ${row.referenceFigure}`, row.ratio === undefined ? '-' : row.ratio.toFixed(2),
    row.cpuRatio === undefined ? '-' : row.cpuRatio.toFixed(2), row.goal, row.verdict,
  ]);
}

export function printSummary({ goals, extras }: ReturnType<typeof summarize>): void {
  console.log('\nPerformance goals: Latchkey against its reference, same run, same machine (ratio: req/s Latchkey / reference;'
    + ' CPU ratio: server CPU per request, reference / Latchkey)');
  console.log(table(HEADERS, rows(goals), HEADERS.length));
  const measured = goals.filter((row) => row.pass !== undefined);
  const passed = measured.filter((row) => row.pass).length;
  console.log(`  ${passed} of ${measured.length} measured goal rows pass${measured.length < goals.length ? ` (${goals.length - measured.length} not run)` : ''}`);
  if (extras.length > 0) {
    console.log('\nExtra comparisons (no goal):');
    console.log(table(HEADERS, rows(extras), HEADERS.length));
  }
  console.log('\nReferences, measured in the same run on the same machine:');
  for (const [name, description] of Object.entries(REFERENCES)) console.log(`  ${name}: ${description}`);
}
