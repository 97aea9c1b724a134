// Scenario "rss" (bench/README.md): the resident memory of a fresh Latchkey server process and of
// a fresh bare node-oidc-provider, both with opaque access tokens: idle (after start and a few
// token requests, before any load) and loaded (right after BENCH_RSS_LOAD seconds, default 20, of
// token load at BENCH_CONNECTIONS), from /proc/<pid>/status: VmRSS now, and VmHWM, the peak.
// Each server gets its own load in turn (bare first), so the two loads do not overlap.
import { setTimeout as sleep } from 'node:timers/promises';

import type { Format, Prepared, RssResult } from './types.ts';
import { fetchJson, fmt, processMemory, runAutocannon, settings } from './harness.ts';
import { fetchToken, tokenRequest, withTokenServers } from './token.ts';

const FORMAT: Format = 'opaque';
/** Token requests each server answers before its idle memory is read (code paths loaded, caches warm). */
const WARM_REQUESTS = 10;
/** Let start-up garbage be collected and the servers settle before the idle reading. */
const SETTLE_MS = 2000;

export async function benchRss(prepared: Prepared): Promise<RssResult> {
  console.log(`\n[rss] memory of fresh servers (${FORMAT} tokens): idle, then after ${settings.rssLoadSeconds} s of token load each`);
  if (settings.cpuProfile) console.log('  note: BENCH_CPU_PROF is on, and a CPU profile in memory inflates both servers\' RSS');
  return withTokenServers(FORMAT, 'rss', async (bare, latchkey) => {
    await fetchToken(bare.info, bare.info, 'bare oidc-provider');
    await fetchToken(latchkey.info, prepared.admin, 'Latchkey');
    for (let i = 1; i < WARM_REQUESTS; i += 1) {
      await fetchJson(tokenRequest(bare.info, bare.info), 'bare oidc-provider');
      await fetchJson(tokenRequest(latchkey.info, prepared.admin), 'Latchkey');
    }
    await sleep(SETTLE_MS);
    const result: RssResult = {
      loadSeconds: settings.rssLoadSeconds,
      format: FORMAT,
      bare: { idle: processMemory(bare.child.pid), requests: 0 },
      latchkey: { idle: processMemory(latchkey.child.pid), requests: 0 },
    };
    for (const [name, side, request, pid] of [
      ['bare oidc-provider', result.bare, tokenRequest(bare.info, bare.info), bare.child.pid],
      ['Latchkey', result.latchkey, tokenRequest(latchkey.info, prepared.admin), latchkey.child.pid],
    ] as const) {
      const load = await runAutocannon(request, settings.rssLoadSeconds, settings.connections);
      side.loaded = processMemory(pid);
      side.requests = load.requests.total;
      if (load.non2xx > 0 || load.errors > 0) console.log(`    WARNING: ${name}: ${load.non2xx} non-2xx responses, ${load.errors} errors under load`);
      console.log(`  ${name}: idle ${fmt(side.idle?.rssMb ?? Number.NaN, 0)} MB, after ${settings.rssLoadSeconds} s of load (${load.requests.total} tokens)`
        + ` ${fmt(side.loaded?.rssMb ?? Number.NaN, 0)} MB, peak ${fmt(side.loaded?.peakRssMb ?? Number.NaN, 0)} MB`);
    }
    return result;
  });
}
