// The transactional outbox (API.md section 4, "Mail"): a message that must leave the process (a
// mail; webhooks later) is a row of outbox_message written in the same transaction as the change
// that causes it, so it is sent exactly when that change commits and never when it rolls back.
// A worker in every process claims due rows with FOR UPDATE SKIP LOCKED, so N processes share the
// work and each row goes to one of them; a claimed row carries a lease (its next_attempt_at moves
// to now + lease), and a row still 'sending' past its lease (its process died mid-send) goes back
// to 'pending'. A failure is retried with exponential backoff and jitter; past the last attempt
// the row is marked 'failed' and stays for the operator (docs/operations.md "Mail and the outbox").
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';

import { OutboxMessage } from '../db/entities/outbox-message.entity.ts';
import { executeStatement, queryRows } from '../platform/database.ts';
import type { Logger } from '../platform/logger.ts';

export interface OutboxEntry {
  /** What delivers it: 'mail' now; each kind has its own worker. */
  kind: string;
  /** What the worker needs to deliver it; never a password (a single-use link is fine). */
  payload: Record<string, unknown>;
}

/**
 * Adds a message inside the caller's unit of work (as recordAudit adds an audit row): it is
 * written by the caller's flush, in the caller's transaction, and commits or rolls back with it.
 */
export function enqueue(em: EntityManager, entry: OutboxEntry): void {
  em.create(OutboxMessage, {
    kind: entry.kind, payload: entry.payload, status: 'pending', attempts: 0, nextAttemptAt: new Date(), lastError: null, sentAt: null,
  });
}

/**
 * An outbox row as SQL, for a change made in one raw statement (see auditRow()):
 * `insert into outbox_message (columns) select values from <the change's CTE>`.
 */
export function outboxRow(entry: OutboxEntry): { columns: string; values: string; params: unknown[] } {
  return {
    columns: 'id, kind, payload, status, attempts, next_attempt_at, created_at',
    values: `?, ?, ?::jsonb, 'pending', 0, now(), now()`,
    params: [crypto.randomUUID(), entry.kind, JSON.stringify(entry.payload)],
  };
}

export interface RetryPolicy {
  /** Attempts in all, the first included; a row that fails the last one is marked 'failed'. */
  maxAttempts: number;
  /** The wait after the first failure; each further failure doubles it. */
  baseDelayMs: number;
  /** The longest wait between two attempts. */
  maxDelayMs: number;
}

// 8 attempts over about an hour and a half: 30 s, 1, 2, 4, 8, 16, 32 min (each halved at worst by the jitter).
export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 8, baseDelayMs: 30_000, maxDelayMs: 3_600_000 };

/**
 * The wait before the next attempt after `attempts` failed ones: exponential, capped, with
 * "equal jitter" (half fixed, half random), so the rows that failed together (an SMTP server that
 * was down) do not all come back in the same instant, yet each waits at least half its step.
 */
export function retryDelayMs(attempts: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(step / 2 + random() * (step / 2));
}

/** A row the worker claimed: `attempts` counts this attempt. */
export interface ClaimedMessage {
  id: string;
  kind: string;
  payload: Record<string, unknown>;
  attempts: number;
}

/** Delivers one message; a throw means "not delivered", and its message becomes last_error. */
export type DeliverMessage = (message: ClaimedMessage) => Promise<void>;

export type DeliveryOutcome = 'sent' | 'retry' | 'failed';

export interface OutboxWorkerOptions {
  kind: string;
  deliver: DeliverMessage;
  /** Rows claimed per statement. */
  batchSize?: number;
  /** How long a claimed row may stay 'sending' before another process takes it back. */
  leaseMs?: number;
  retry?: RetryPolicy;
  logger?: Logger;
  onDelivery?: (outcome: DeliveryOutcome) => void;
}

export const DEFAULT_BATCH_SIZE = 10;
// Far longer than a send may take (the SMTP transport's own timeouts end one within a minute or two).
export const DEFAULT_LEASE_MS = 300_000;
const MAX_ERROR_LENGTH = 500;

export class OutboxWorker {
  readonly #orm: MikroORM;
  readonly #options: OutboxWorkerOptions;
  readonly #batchSize: number;
  readonly #leaseMs: number;
  readonly #retry: RetryPolicy;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;
  #stopping = false;

  constructor(orm: MikroORM, options: OutboxWorkerOptions) {
    this.#orm = orm;
    this.#options = options;
    this.#batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    this.#leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.#retry = options.retry ?? DEFAULT_RETRY_POLICY;
  }

  /** Polls every `intervalMs` (0: never); a full batch is followed by the next at once. */
  start(intervalMs: number): void {
    if (intervalMs === 0 || this.#timer) return;
    const tick = (delayMs: number) => {
      this.#timer = setTimeout(() => {
        void this.run().then((claimed) => { if (!this.#stopping) tick(claimed === this.#batchSize ? 0 : intervalMs); });
      }, delayMs).unref();
    };
    // A random first delay, so processes started together do not poll in step.
    tick(Math.floor(Math.random() * intervalMs));
  }

  /** Stops polling and waits for the message being sent (SIGTERM drain); the rest of its batch goes back to pending. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    await this.#running?.catch(() => undefined);
  }

  /** One round now (or the one under way): takes back expired leases, claims a batch, delivers it. Answers how many rows it claimed. */
  run(): Promise<number> {
    this.#running ??= this.#runOnce().finally(() => { this.#running = undefined; });
    return this.#running;
  }

  async #runOnce(): Promise<number> {
    try {
      await this.#releaseExpiredLeases();
      const claimed = await this.#claim();
      for (const [index, message] of claimed.entries()) {
        if (this.#stopping) {
          await this.#giveBack(claimed.slice(index));
          break;
        }
        await this.#deliver(message);
      }
      return claimed.length;
    } catch (error) {
      // The database is away, most likely: the next poll tries again, and claimed rows come back after their lease.
      this.#options.logger?.warn({ err: (error as Error).message, kind: this.#options.kind }, 'outbox delivery round failed; the next poll retries');
      return 0;
    }
  }

  /** Rows left 'sending' past their lease: back to pending, or failed when that was their last attempt. */
  async #releaseExpiredLeases(): Promise<void> {
    const released = await executeStatement(this.#orm.em,
      `update outbox_message set status = case when attempts >= ? then 'failed' else 'pending' end,
          last_error = 'delivery interrupted (its process stopped or the send outlasted the lease)'
        where status = 'sending' and next_attempt_at <= now() and kind = ?`,
      [this.#retry.maxAttempts, this.#options.kind]);
    if (released > 0) this.#options.logger?.warn({ kind: this.#options.kind, rows: released }, 'outbox messages taken back from an expired lease');
  }

  /** Shutdown: the claimed rows not yet tried go back as they were, due at once for another process. */
  async #giveBack(messages: ClaimedMessage[]): Promise<void> {
    await executeStatement(this.#orm.em,
      `update outbox_message set status = 'pending', attempts = attempts - 1, next_attempt_at = now()
        where id in (?) and status = 'sending'`, [messages.map((message) => message.id)]);
  }

  /** One statement claims due rows; SKIP LOCKED leaves the ones another process is claiming to it. */
  #claim(): Promise<ClaimedMessage[]> {
    return queryRows<ClaimedMessage>(this.#orm.em,
      `update outbox_message set status = 'sending', attempts = attempts + 1, next_attempt_at = now() + ? * interval '1 millisecond'
        where id in (select id from outbox_message where status = 'pending' and next_attempt_at <= now() and kind = ?
                      order by next_attempt_at limit ? for update skip locked)
        returning id, kind, payload, attempts`,
      [this.#leaseMs, this.#options.kind, this.#batchSize]);
  }

  async #deliver(message: ClaimedMessage): Promise<void> {
    let outcome: DeliveryOutcome;
    try {
      await this.#options.deliver(message);
      await executeStatement(this.#orm.em,
        `update outbox_message set status = 'sent', sent_at = now(), last_error = null where id = ? and status = 'sending'`, [message.id]);
      outcome = 'sent';
    } catch (error) {
      const lastError = String((error as Error).message ?? error).slice(0, MAX_ERROR_LENGTH);
      if (message.attempts >= this.#retry.maxAttempts) {
        await executeStatement(this.#orm.em,
          `update outbox_message set status = 'failed', last_error = ? where id = ? and status = 'sending'`, [lastError, message.id]);
        outcome = 'failed';
        this.#options.logger?.error({ kind: message.kind, id: message.id, attempts: message.attempts, err: lastError }, 'outbox message failed for good');
      } else {
        const delayMs = retryDelayMs(message.attempts, this.#retry);
        await executeStatement(this.#orm.em,
          `update outbox_message set status = 'pending', next_attempt_at = now() + ? * interval '1 millisecond', last_error = ?
            where id = ? and status = 'sending'`, [delayMs, lastError, message.id]);
        outcome = 'retry';
        this.#options.logger?.warn({ kind: message.kind, id: message.id, attempts: message.attempts, retryInMs: delayMs, err: lastError }, 'outbox message not delivered; retrying later');
      }
    }
    this.#options.onDelivery?.(outcome);
  }
}
