import { expect } from 'chai';

import { createLogger } from '../../src/platform/logger.ts';
import { RedisStore } from '../../src/platform/redis-store.ts';
import { ClientAuthThrottle } from '../../src/services/client-auth-throttle.ts';
import { REDIS_URL } from '../support/databases.ts';
import { deleteRedisKeys, uniqueRedisPrefix } from '../support/harness.ts';

async function eventually(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('ClientAuthThrottle across processes (one Redis)', () => {
  const prefix = uniqueRedisPrefix();
  const logger = createLogger({ logLevel: 'silent', env: 'test' });
  let stores: RedisStore[] = [];

  before(async () => {
    stores = await Promise.all([RedisStore.connect(REDIS_URL, prefix, logger), RedisStore.connect(REDIS_URL, prefix, logger)]);
  });
  after(async () => {
    await Promise.all(stores.map((store) => store.close()));
    await deleteRedisKeys(prefix);
  });

  it('shares the counts, and announces a block so that every process refuses the address without asking Redis', async () => {
    const settings = { perAddress: 4, perClient: 100, windowSeconds: 60 };
    const [first, second] = stores.map((store) => new ClientAuthThrottle(store, settings)) as [ClientAuthThrottle, ClientAuthThrottle];
    await Promise.all([first.start(), second.start()]);

    expect(await first.recordFailure('203.0.113.1', 'lk_a')).to.equal(undefined);
    expect(await second.recordFailure('203.0.113.1', 'lk_a')).to.equal(undefined);
    expect(await first.recordFailure('203.0.113.1')).to.equal(undefined);
    expect(second.addressBlocked('203.0.113.1')).to.equal(undefined);
    // The fourth failure, counted by the second process, reaches the limit: both know at once.
    expect(await second.recordFailure('203.0.113.1')).to.equal(undefined);
    expect(second.addressBlocked('203.0.113.1')).to.be.within(59, 60);
    await eventually(() => first.addressBlocked('203.0.113.1') !== undefined);
    expect(first.addressBlocked('203.0.113.2')).to.equal(undefined);

    // A process that missed the announcement learns from its next failure's count.
    const late = new ClientAuthThrottle(stores[0]!, settings);
    expect(await late.recordFailure('203.0.113.1')).to.deep.equal({ retryAfterSeconds: 60, scope: 'address' });
    expect(late.addressBlocked('203.0.113.1')).to.be.within(59, 60);
  });

  it('answers a client id past its limit with its window\'s remaining time', async () => {
    const throttle = new ClientAuthThrottle(stores[0]!, { perAddress: 0, perClient: 2, windowSeconds: 30 });
    expect(await throttle.recordFailure('198.51.100.1', 'lk_b')).to.equal(undefined);
    expect(await throttle.recordFailure('198.51.100.2', 'lk_b')).to.equal(undefined);
    const throttled = await throttle.recordFailure('198.51.100.3', 'lk_b');
    expect(throttled?.scope).to.equal('client');
    expect(throttled?.retryAfterSeconds).to.be.within(1, 30);
    expect(throttle.addressBlocked('198.51.100.3'), 'no address limit').to.equal(undefined);
  });
});
