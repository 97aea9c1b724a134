// The brute-force rules of SignInThrottle on both stores it runs on: Redis (its counters read in
// one MGET on the way in) and the in-process store of the embedded mode.
import { expect } from 'chai';

import { createLogger } from '../../src/platform/logger.ts';
import { MemoryStore } from '../../src/platform/memory-store.ts';
import { RedisStore } from '../../src/platform/redis-store.ts';
import type { KeyValueStore } from '../../src/platform/store.ts';
import { SignInThrottle, SignInThrottled } from '../../src/services/sign-in-throttle.ts';
import { REDIS_URL } from '../support/databases.ts';
import { deleteRedisKeys, uniqueRedisPrefix } from '../support/harness.ts';

async function refusal(work: Promise<unknown>): Promise<SignInThrottled | undefined> {
  return work.then(() => undefined, (error: unknown) => {
    if (error instanceof SignInThrottled) return error;
    throw error;
  });
}

const stores: { name: string; open(): Promise<{ store: KeyValueStore; close(): Promise<void> }> }[] = [
  {
    name: 'Redis',
    async open() {
      const prefix = uniqueRedisPrefix();
      const store = await RedisStore.connect(REDIS_URL, prefix, createLogger({ logLevel: 'silent', env: 'test' }));
      return { store, async close() { await store.close(); await deleteRedisKeys(prefix); } };
    },
  },
  {
    name: 'the in-process store',
    async open() {
      const store = new MemoryStore();
      return { store, close: () => store.close() };
    },
  },
];

for (const { name, open } of stores) {
  describe(`sign-in throttle on ${name}`, () => {
    let opened: Awaited<ReturnType<typeof open>>;
    let throttle: SignInThrottle;

    beforeEach(async () => {
      opened = await open();
      throttle = new SignInThrottle(opened.store);
    });
    afterEach(async () => { await opened.close(); });

    it('lets a clean account in and reports that it has no failures to clear', async () => {
      const standing = await throttle.assertAllowed('*:ann@example.com', '192.0.2.1');
      expect(standing).to.deep.equal({ accountHasFailures: false });
    });

    it('locks the account after five failures with the time left, and a success after the lock clears it', async () => {
      const account = '*:bob@example.com';
      for (let attempt = 0; attempt < 4; attempt += 1) await throttle.recordFailure(account, '192.0.2.2');
      const standing = await throttle.assertAllowed(account, '192.0.2.2');
      expect(standing.accountHasFailures).to.equal(true);

      await throttle.recordFailure(account, '192.0.2.2');
      const locked = await refusal(throttle.assertAllowed(account, '192.0.2.2'));
      expect(locked?.scope).to.equal('account');
      expect(locked?.retryAfterSeconds).to.be.within(1, 2);
      // Another account from the same address is not stopped.
      await throttle.assertAllowed('*:carol@example.com', '192.0.2.2');

      await throttle.recordSuccess(account, standing);
      expect(await throttle.assertAllowed(account, '192.0.2.2')).to.deep.equal({ accountHasFailures: false });
    });

    it('refuses an address past 100 failures a minute, whichever accounts they were for', async () => {
      for (let attempt = 0; attempt < 100; attempt += 1) await throttle.recordFailure(`*:user${attempt}@example.com`, '192.0.2.3');
      const refused = await refusal(throttle.assertAllowed('*:new@example.com', '192.0.2.3'));
      expect(refused?.scope).to.equal('ip');
      expect(refused?.retryAfterSeconds).to.be.within(1, 60);
      await throttle.assertAllowed('*:new@example.com', '192.0.2.4');
    });
  });
}
