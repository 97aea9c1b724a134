// The outbox and mail delivery against real PostgreSQL and a real SMTP server (smtp-server on a
// loopback port, what it receives parsed with mailparser): a mail is sent when its transaction
// commits and never when it rolls back, a refusal is retried later and a mail that keeps failing is
// marked failed, a lease left by a dead process is taken back, two processes send each mail once,
// and without SMTP_URL the mail goes to the log.
import { Writable } from 'node:stream';

import { expect } from 'chai';
import { MikroORM } from '@mikro-orm/postgresql';

import { ormOptions } from '../../src/db/orm.ts';
import { executeStatement, queryOne } from '../../src/platform/database.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { createMailTransport, type MailMessage } from '../../src/platform/mail.ts';
import { enqueueMail, MailDelivery } from '../../src/services/mail-delivery.ts';
import { OutboxWorker, retryDelayMs, type DeliveryOutcome, type RetryPolicy } from '../../src/services/outbox.service.ts';
import { createTestDatabase, dropDatabase } from '../support/databases.ts';
import { MailCatcher, waitFor } from '../support/mail.ts';

const FROM = 'Latchkey <no-reply@latchkey.test>';
const silent = createLogger({ logLevel: 'silent', env: 'test' });
// Fast retries, so a test sees a second attempt within milliseconds.
const FAST_RETRY: RetryPolicy = { maxAttempts: 8, baseDelayMs: 40, maxDelayMs: 200 };

function mail(n: number | string, extra: Partial<MailMessage> = {}): MailMessage {
  return { to: `user${n}@example.test`, subject: `Mail ${n}`, text: `Hello ${n}`, ...extra };
}

describe('the outbox and mail delivery (API.md section 4, "Mail")', function () {
  this.timeout(60_000);
  let database: { name: string; url: string };
  let orm: MikroORM;
  let catcher: MailCatcher;
  const deliveries: MailDelivery[] = [];

  function delivery(options: { retry?: RetryPolicy; batchSize?: number; onDelivery?: (outcome: DeliveryOutcome) => void; on?: MikroORM } = {}): MailDelivery {
    const made = new MailDelivery(options.on ?? orm, {
      transport: createMailTransport({ smtpUrl: `smtp://127.0.0.1:${catcher.port}`, from: FROM }, silent),
      logger: silent,
      retry: options.retry ?? FAST_RETRY,
      batchSize: options.batchSize,
      onDelivery: options.onDelivery,
    });
    deliveries.push(made);
    return made;
  }

  async function commitMails(...mails: MailMessage[]): Promise<void> {
    await orm.em.fork().transactional(async (em) => { for (const each of mails) enqueueMail(em, each); });
  }

  async function row(): Promise<{ status: string; attempts: number; last_error: string | null; due_in_ms: number; has_sent_at: boolean } | undefined> {
    return queryOne(orm.em, `select status, attempts, last_error, sent_at is not null as has_sent_at,
        (extract(epoch from next_attempt_at - now()) * 1000)::int as due_in_ms from outbox_message`);
  }

  before(async () => {
    database = await createTestDatabase();
    orm = await MikroORM.init(ormOptions(database.url, { pool: { min: 0, max: 4 } }));
    catcher = new MailCatcher();
    await catcher.start();
  });
  beforeEach(async () => {
    await executeStatement(orm.em, 'delete from outbox_message');
    catcher.received.length = 0;
    catcher.refuse = false;
  });
  afterEach(async () => {
    await Promise.all(deliveries.splice(0).map((made) => made.stop()));
  });
  after(async () => {
    await catcher?.stop();
    await orm?.close();
    if (database) await dropDatabase(database.name);
  });

  it('sends a mail written in a transaction that commits, over SMTP from MAIL_FROM', async () => {
    await commitMails(mail(1, { text: 'Follow https://id.example.test/account/verify-email?token=abc', html: '<p>Follow the link</p>' }));

    expect(await delivery().run()).to.equal(1);

    expect(catcher.received).to.have.length(1);
    const [received] = catcher.received;
    expect(received!.to).to.deep.include({ text: 'user1@example.test' });
    expect(received!.from?.value[0]).to.deep.include({ address: 'no-reply@latchkey.test', name: 'Latchkey' });
    expect(received!.subject).to.equal('Mail 1');
    expect(received!.text?.trim()).to.equal('Follow https://id.example.test/account/verify-email?token=abc');
    expect(received!.html).to.include('<p>Follow the link</p>');
    const sent = await row();
    expect(sent).to.include({ status: 'sent', attempts: 1, last_error: null, has_sent_at: true });
  });

  it('never sends a mail whose transaction rolls back, even after it was flushed', async () => {
    const failure = new Error('the change failed');
    const outcome = await orm.em.fork().transactional(async (em) => {
      enqueueMail(em, mail('rolled-back'));
      await em.flush();
      throw failure;
    }).catch((error: unknown) => error);
    expect(outcome).to.equal(failure);

    expect(await delivery().run()).to.equal(0);
    expect(await row()).to.equal(undefined);
    expect(catcher.received).to.have.length(0);
  });

  it('retries a refused mail later and delivers it once the server accepts', async () => {
    catcher.refuse = true;
    await commitMails(mail(2));
    const outcomes: DeliveryOutcome[] = [];
    const worker = delivery({ onDelivery: (outcome) => outcomes.push(outcome), retry: { maxAttempts: 8, baseDelayMs: 400, maxDelayMs: 400 } });

    expect(await worker.run()).to.equal(1);
    const retried = await row();
    expect(retried).to.include({ status: 'pending', attempts: 1 });
    expect(retried!.last_error).to.include('450');
    // Equal jitter: at least half the step (200 ms) later.
    expect(retried!.due_in_ms).to.be.within(100, 450);
    // Not due yet: the next round claims nothing.
    expect(await worker.run()).to.equal(0);

    catcher.refuse = false;
    await waitFor(async () => (await worker.run()) === 1);
    expect(await row()).to.include({ status: 'sent', attempts: 2, last_error: null });
    expect(catcher.received.map((each) => each.subject)).to.deep.equal(['Mail 2']);
    expect(outcomes).to.deep.equal(['retry', 'sent']);
  });

  it('retries when the server is down, and sends once it is back', async () => {
    const down = new MailCatcher();
    await down.start();
    const port = down.port;
    await down.stop();
    await commitMails(mail(3));
    const worker = new MailDelivery(orm, {
      transport: createMailTransport({ smtpUrl: `smtp://127.0.0.1:${port}`, from: FROM }, silent), logger: silent, retry: FAST_RETRY,
    });
    deliveries.push(worker);

    await worker.run();
    const retried = await row();
    expect(retried).to.include({ status: 'pending', attempts: 1 });
    expect(retried!.last_error).to.match(/ECONNREFUSED|connect/i);
    // Nothing of the row's payload (its link, its body) is in the error.
    expect(retried!.last_error).not.to.include('Hello 3');

    const back = new MailCatcher();
    await back.start(port);
    try {
      await waitFor(async () => (await worker.run()) === 1);
      expect(back.received.map((each) => each.subject)).to.deep.equal(['Mail 3']);
      expect(await row()).to.include({ status: 'sent', attempts: 2 });
    } finally {
      await back.stop();
    }
  });

  it('marks a mail that keeps failing as failed after the last attempt', async () => {
    catcher.refuse = true;
    await commitMails(mail(4));
    const outcomes: DeliveryOutcome[] = [];
    const worker = delivery({ retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 }, onDelivery: (outcome) => outcomes.push(outcome) });

    await waitFor(async () => { await worker.run(); return (await row())!.status === 'failed'; });

    expect(await row()).to.include({ status: 'failed', attempts: 3 });
    expect(outcomes).to.deep.equal(['retry', 'retry', 'failed']);
    // A failed mail is never claimed again.
    catcher.refuse = false;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await worker.run()).to.equal(0);
    expect(catcher.received).to.have.length(0);
  });

  it('takes back a mail left "sending" by a process that died, once its lease is over', async () => {
    await commitMails(mail(5), mail(6));
    // Two claims as a dead process left them: one whose lease is over, one still within it.
    await executeStatement(orm.em, `update outbox_message set status = 'sending', attempts = 1,
        next_attempt_at = case when payload->>'subject' = 'Mail 5' then now() - interval '1 second' else now() + interval '1 hour' end`);

    expect(await delivery().run()).to.equal(1);

    expect(catcher.received.map((each) => each.subject)).to.deep.equal(['Mail 5']);
    const rows = await orm.em.getConnection().execute<{ subject: string; status: string; attempts: number }[]>(
      `select payload->>'subject' as subject, status, attempts from outbox_message order by subject`);
    expect(rows).to.deep.equal([{ subject: 'Mail 5', status: 'sent', attempts: 2 }, { subject: 'Mail 6', status: 'sending', attempts: 1 }]);
  });

  it('sends each of many mails exactly once with two processes polling the same database', async () => {
    const total = 40;
    await commitMails(...Array.from({ length: total }, (_, n) => mail(n)));
    const orms = await Promise.all([0, 1].map(() => MikroORM.init(ormOptions(database.url, { pool: { min: 0, max: 2 } }))));
    try {
      const claimed = [0, 0];
      const workers = orms.map((each) => delivery({ on: each, batchSize: 3 }));
      await Promise.all(workers.map(async (worker, index) => {
        for (let round = 0; round < 100; round += 1) {
          const count = await worker.run();
          claimed[index]! += count;
          if (count === 0 && (await queryOne<{ n: number }>(orm.em, `select count(*)::int as n from outbox_message where status <> 'sent'`))!.n === 0) return;
        }
      }));

      expect(claimed[0]! + claimed[1]!).to.equal(total);
      // Both took part: SKIP LOCKED let each claim rows the other had not.
      expect(claimed[0]).to.be.above(0);
      expect(claimed[1]).to.be.above(0);
      expect(catcher.received).to.have.length(total);
      expect(new Set(catcher.received.map((each) => each.subject)).size).to.equal(total);
      expect((await queryOne<{ n: number }>(orm.em, `select count(*)::int as n from outbox_message where status = 'sent' and attempts = 1`))!.n).to.equal(total);
    } finally {
      await Promise.all(deliveries.splice(0).map((made) => made.stop()));
      await Promise.all(orms.map((each) => each.close()));
    }
  });

  it('polls on its own once started, and stops cleanly', async () => {
    const worker = delivery();
    worker.start(20);
    await commitMails(mail(7));
    await waitFor(() => catcher.received.length === 1);
    await worker.stop();
    await commitMails(mail(8));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(catcher.received.map((each) => each.subject)).to.deep.equal(['Mail 7']);
  });

  it('on stop finishes the message being sent and gives the rest of its batch back, untried', async () => {
    await commitMails(mail(10), mail(11), mail(12));
    const delivered: string[] = [];
    let stopped: Promise<void> | undefined;
    const worker: OutboxWorker = new OutboxWorker(orm, {
      kind: 'mail',
      logger: silent,
      deliver: async (message) => {
        // SIGTERM arrives while the first mail is being sent.
        stopped ??= worker.stop();
        await new Promise((resolve) => setTimeout(resolve, 50));
        delivered.push(String(message.payload.subject));
      },
    });

    expect(await worker.run()).to.equal(3);
    await stopped;

    expect(delivered).to.have.length(1);
    const rows = await orm.em.getConnection().execute<{ status: string; attempts: number; due: boolean }[]>(
      `select status, attempts, next_attempt_at <= now() as due from outbox_message order by status`);
    expect(rows).to.deep.equal([
      { status: 'pending', attempts: 0, due: true }, { status: 'pending', attempts: 0, due: true }, { status: 'sent', attempts: 1, due: false },
    ]);
  });

  it('without SMTP_URL writes the recipient, subject and link to the log, not the body', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _encoding, done) { lines.push(String(chunk)); done(); } });
    const logger = createLogger({ logLevel: 'info', env: 'test' }, {}, sink);
    const transport = createMailTransport({ from: FROM }, logger);
    expect(transport.kind).to.equal('log');
    const worker = new MailDelivery(orm, { transport, logger: silent });
    deliveries.push(worker);
    const link = 'http://localhost:3000/account/reset-password?token=single-use';
    await commitMails(mail(9, { text: `Your code word is swordfish. ${link}`, link }));

    expect(await worker.run()).to.equal(1);

    const logged = lines.map((line) => JSON.parse(line) as { level: string; msg: string; mail?: Record<string, unknown> }).filter((line) => line.mail);
    expect(logged).to.have.length(1);
    expect(logged[0]!.level).to.equal('info');
    expect(logged[0]!.mail).to.deep.equal({ to: 'user9@example.test', subject: 'Mail 9', link });
    expect(lines.join('')).not.to.include('swordfish');
    expect(await row()).to.include({ status: 'sent', attempts: 1 });
  });

  it('backs off exponentially, with jitter, up to a cap', () => {
    const policy: RetryPolicy = { maxAttempts: 8, baseDelayMs: 1000, maxDelayMs: 10_000 };
    expect([1, 2, 3, 4, 5].map((attempts) => retryDelayMs(attempts, policy, () => 1))).to.deep.equal([1000, 2000, 4000, 8000, 10_000]);
    expect([1, 2, 3, 4, 5].map((attempts) => retryDelayMs(attempts, policy, () => 0))).to.deep.equal([500, 1000, 2000, 4000, 5000]);
    expect(retryDelayMs(3, policy, () => 0.5)).to.equal(3000);
  });
});
