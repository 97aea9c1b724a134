// One memory-reducing collection between start-up and the first request (issue 12, memory).
//
// Start-up (module loading, migrations check, key import, the first queries) allocates in bursts
// that grow V8's young generation to its maximum, and an idle process runs no collection that
// would shrink it again: about 30 MB of empty semi-spaces stayed resident for good. `npm start`
// and the Docker image pass `--expose-gc`; this one "last-resort" collection (V8's
// CollectAllAvailableGarbage: full, compacting, and shrinking the young generation) takes about
// 100 ms before the server listens, so no request waits on it. Without the flag it does nothing.
export function releaseStartupMemory(): boolean {
  if (typeof globalThis.gc !== 'function') return false;
  globalThis.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return true;
}
