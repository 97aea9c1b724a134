// Single-use link tokens (issue 14 part 3) against real PostgreSQL: stored only as a hash, peeked
// without being used, consumed atomically (of concurrent clicks exactly one wins), and every way a
// token can be wrong answered with its own 4xx code, never a 500.
import { createHash } from 'node:crypto';

import { expect } from 'chai';
import { MikroORM, type EntityManager } from '@mikro-orm/postgresql';

import { Organization } from '../../src/db/entities/organization.entity.ts';
import { User } from '../../src/db/entities/user.entity.ts';
import { ormOptions } from '../../src/db/orm.ts';
import { executeStatement, queryOne, queryRows } from '../../src/platform/database.ts';
import { AppError } from '../../src/platform/errors.ts';
import { CLEANUP_TARGETS } from '../../src/services/cleanup.service.ts';
import {
  consumeLinkToken, issueLinkToken, isLinkTokenError, peekLinkToken, revokeLinkTokens, type IssueLinkToken, type LinkPurpose,
} from '../../src/services/link-tokens.service.ts';
import { createTestDatabase, dropDatabase } from '../support/databases.ts';

async function failureOf(promise: Promise<unknown>): Promise<AppError> {
  const outcome = await promise.then(() => undefined, (error: unknown) => error);
  expect(outcome, 'expected a refusal').to.be.instanceOf(AppError);
  return outcome as AppError;
}

describe('single-use link tokens (issue 14 part 3)', function () {
  this.timeout(30_000);
  let database: { name: string; url: string };
  let orm: MikroORM;
  let organizationId: string;
  let userId: string;
  let otherUserId: string;

  async function issue(input: Partial<IssueLinkToken> = {}): Promise<string> {
    return orm.em.fork().transactional(async (em) => {
      const issued = issueLinkToken(em, { purpose: 'verify_email', userId, organizationId, ttlSeconds: 3600, ...input });
      await em.flush();
      return issued.token;
    });
  }

  function consume(token: unknown, purpose: LinkPurpose = 'verify_email') {
    return orm.em.fork().transactional((em) => consumeLinkToken(em, token, purpose));
  }

  function peek(token: unknown, purpose: LinkPurpose = 'verify_email') {
    return peekLinkToken(orm.em.fork(), token, purpose);
  }

  before(async () => {
    database = await createTestDatabase();
    orm = await MikroORM.init(ormOptions(database.url, { pool: { min: 0, max: 12 } }));
    await orm.em.fork().transactional(async (em: EntityManager) => {
      const organization = em.create(Organization, { slug: 'links', name: 'Links' });
      const user = em.create(User, { organization, email: 'ada@example.test', passwordHash: 'x' });
      const other = em.create(User, { organization, email: 'bob@example.test', passwordHash: 'x' });
      await em.flush();
      organizationId = organization.id;
      userId = user.id;
      otherUserId = other.id;
    });
  });
  after(async () => {
    await orm?.close();
    if (database) await dropDatabase(database.name);
  });

  it('issues 256 random bits as base64url and stores only their SHA-256', async () => {
    const token = await issue({ data: { email: 'ada@example.test' } });
    expect(token).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token, 'base64url')).to.have.length(32);
    const row = await queryOne<Record<string, unknown>>(orm.em, 'select * from link_token where token_hash = ?', [createHash('sha256').update(token).digest('hex')]);
    expect(row).to.include({ purpose: 'verify_email', user_id: userId, organization_id: organizationId, consumed_at: null, revoked_at: null });
    expect(row!.data).to.deep.equal({ email: 'ada@example.test' });
    expect(JSON.stringify(row)).not.to.include(token);
    expect(await issue()).not.to.equal(token);
  });

  it('peeks without using the link, then consumes it once and refuses the second use with link.used', async () => {
    const token = await issue({ data: { email: 'ada@example.test' } });
    expect(await peek(token)).to.include({ purpose: 'verify_email', userId, organizationId });
    expect(await peek(token)).to.include({ userId });

    const record = await consume(token);
    expect(record).to.include({ purpose: 'verify_email', userId, organizationId });
    expect(record.data).to.deep.equal({ email: 'ada@example.test' });
    expect(record.expiresAt.getTime()).to.be.greaterThan(Date.now() + 3500_000);

    const again = await failureOf(consume(token));
    expect(again).to.include({ code: 'link.used', status: 410 });
    expect((await failureOf(peek(token))).code).to.equal('link.used');
  });

  it('lets exactly one of ten concurrent consumes win', async () => {
    const token = await issue();
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => consume(token)));
    const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    const lost = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    expect(won).to.have.length(1);
    expect(lost).to.have.length(9);
    for (const each of lost) expect(each.reason).to.include({ code: 'link.used' });
  });

  it('makes the second click wait for the first one\'s transaction and lose once it commits', async () => {
    const token = await issue();
    let commitFirst!: () => void;
    const firstHolds = new Promise<void>((resolve) => { commitFirst = resolve; });
    let firstConsumed!: () => void;
    const consumedInFirst = new Promise<void>((resolve) => { firstConsumed = resolve; });
    const first = orm.em.fork().transactional(async (em) => {
      const record = await consumeLinkToken(em, token, 'verify_email');
      firstConsumed();
      await firstHolds;
      return record;
    });
    await consumedInFirst;
    let secondSettled = false;
    const second = consume(token).finally(() => { secondSettled = true; });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(secondSettled, 'the second consume waits on the first one\'s row lock').to.equal(false);
    commitFirst();
    expect((await first).userId).to.equal(userId);
    expect((await failureOf(second)).code).to.equal('link.used');
  });

  it('gives the link back when the consuming transaction rolls back', async () => {
    const token = await issue();
    const failure = new Error('the change failed');
    const outcome = await orm.em.fork().transactional(async (em) => {
      await consumeLinkToken(em, token, 'verify_email');
      throw failure;
    }).catch((error: unknown) => error);
    expect(outcome).to.equal(failure);
    expect((await consume(token)).userId).to.equal(userId);
  });

  it('never issues a token whose transaction rolls back', async () => {
    let token = '';
    await orm.em.fork().transactional(async (em) => {
      token = issueLinkToken(em, { purpose: 'verify_email', userId, ttlSeconds: 60 }).token;
      await em.flush();
      throw new Error('rolled back');
    }).catch(() => undefined);
    expect((await failureOf(peek(token))).code).to.equal('link.invalid');
  });

  it('answers link.expired past the expiry, for peek and consume alike', async () => {
    const token = await issue();
    await executeStatement(orm.em, `update link_token set expires_at = now() - interval '1 second' where token_hash = ?`, [createHash('sha256').update(token).digest('hex')]);
    expect(await failureOf(peek(token))).to.include({ code: 'link.expired', status: 410 });
    expect(await failureOf(consume(token))).to.include({ code: 'link.expired', status: 410 });
  });

  it('answers link.wrong_purpose for another kind of link, and leaves it usable for its own', async () => {
    const token = await issue({ purpose: 'reset_password' });
    expect(await failureOf(peek(token, 'verify_email'))).to.include({ code: 'link.wrong_purpose', status: 400 });
    expect(await failureOf(consume(token, 'verify_email'))).to.include({ code: 'link.wrong_purpose', status: 400 });
    expect((await consume(token, 'reset_password')).purpose).to.equal('reset_password');
  });

  it('answers link.invalid for a tampered, truncated, oversized, NUL-holding or non-string token', async () => {
    const token = await issue();
    const flipped = `${token.slice(0, 20)}${token[20] === 'A' ? 'B' : 'A'}${token.slice(21)}`;
    const candidates: unknown[] = [
      flipped, token.slice(0, 42), `${token}A`, `${token.slice(0, 42)}\u0000`, `${token}\u0000`, 'x'.repeat(100_000),
      '', `${token.slice(0, 42)}=`, `${token.slice(0, 42)}é`, 42, null, undefined, { token },
    ];
    for (const candidate of candidates) {
      expect(await failureOf(peek(candidate)), String(candidate).slice(0, 60)).to.include({ code: 'link.invalid', status: 400 });
      expect(await failureOf(consume(candidate))).to.include({ code: 'link.invalid', status: 400 });
    }
    expect((await consume(token)).userId).to.equal(userId);
  });

  it('revokes every live link of one purpose of one user, and only those', async () => {
    const older = await issue();
    const old = await issue();
    const reset = await issue({ purpose: 'reset_password' });
    const others = await issue({ userId: otherUserId });
    const used = await issue();
    await consume(used);

    const revoked = await orm.em.fork().transactional((em) => revokeLinkTokens(em, { userId, purpose: 'verify_email' }));
    expect(revoked).to.be.at.least(2);
    expect(await failureOf(peek(older))).to.include({ code: 'link.revoked', status: 410 });
    expect(await failureOf(consume(old))).to.include({ code: 'link.revoked', status: 410 });
    expect((await failureOf(consume(used))).code).to.equal('link.used');
    expect((await peek(reset, 'reset_password')).userId).to.equal(userId);
    expect((await peek(others)).userId).to.equal(otherUserId);
    expect((await consume(await issue())).userId).to.equal(userId);
  });

  it('tells its refusals apart from other errors', () => {
    expect(isLinkTokenError(new AppError('link.used'))).to.equal(true);
    expect(isLinkTokenError(new AppError('resource.not_found'))).to.equal(false);
    expect(isLinkTokenError(new Error('link.used'))).to.equal(false);
  });

  it('refuses to issue a link with no lifetime or with bulky data', async () => {
    const em = orm.em.fork();
    expect(() => issueLinkToken(em, { purpose: 'verify_email', ttlSeconds: 0 })).to.throw(RangeError);
    expect(() => issueLinkToken(em, { purpose: 'verify_email', ttlSeconds: 60, data: { blob: 'x'.repeat(5000) } })).to.throw(RangeError);
  });

  it('is deleted by the cleanup job a week after its expiry, not before', async () => {
    const recent = await issue({ userId: otherUserId, purpose: 'invitation' });
    const ancient = await issue({ userId: otherUserId, purpose: 'invitation' });
    const hash = (token: string) => createHash('sha256').update(token).digest('hex');
    await executeStatement(orm.em, `update link_token set expires_at = now() - interval '6 days' where token_hash = ?`, [hash(recent)]);
    await executeStatement(orm.em, `update link_token set expires_at = now() - interval '8 days' where token_hash = ?`, [hash(ancient)]);
    const target = CLEANUP_TARGETS.find((each) => each.table === 'link_token')!;
    expect(await executeStatement(orm.em, target.deleteBatch, [100])).to.equal(1);
    const left = await queryRows<{ token_hash: string }>(orm.em, 'select token_hash from link_token where token_hash in (?, ?)', [hash(recent), hash(ancient)]);
    expect(left.map((row) => row.token_hash)).to.deep.equal([hash(recent)]);
    expect((await failureOf(peek(recent, 'invitation'))).code).to.equal('link.expired');
  });
});
