// The size of libuv's thread pool Latchkey runs on. argon2 (every password check) and WebCrypto
// signing run on that pool. libuv's default of 4 threads on a 2-core machine runs four password
// hashes against the event loop at once: sign-ins came out at 15/s instead of 36/s with 2 threads
// (bench/README.md). One thread per CPU, at least 2 so that a slow file read or DNS lookup never
// holds every thread.
import { availableParallelism } from 'node:os';

export function defaultThreadpoolSize(): number {
  return Math.max(2, availableParallelism());
}
