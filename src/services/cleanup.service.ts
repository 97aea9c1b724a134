// Bounded growth (issue 13): what expires in PostgreSQL is deleted by this job, so a long-running
// store does not grow without end. What lives where:
//
//   PostgreSQL oidc_artifact  grants, refresh tokens, initial and registration access tokens: each
//                             has expires_at (set from the provider's TTLs); a row past it is
//                             invisible to the adapter already and is deleted here. A consumed
//                             refresh token stays until its own expiry, because its replay must
//                             still revoke the grant (RFC 9700 section 4.14.2).
//   PostgreSQL signing_key    keys rotated out: past retire_at they are neither published nor used,
//                             and a private key nobody uses is better gone.
//   Redis (or the in-process  access and client-credentials tokens, sessions, interactions, codes
//   store)                    and their consumption markers, device codes, PAR requests, sign-in
//                             and client-authentication throttle keys, the revocation marks: all
//                             written with a TTL, so the store expires them by itself.
//   PostgreSQL link_token     single-use links (link-tokens.service.ts): kept a week past expires_at,
//                             so an old link still reads "expired" rather than "invalid", then deleted.
//   PostgreSQL outbox_message mails (later webhooks) once delivered: a sent row is deleted
//                             OUTBOX_SENT_RETENTION_DAYS (7) after it was sent; a failed one stays
//                             for the operator (GET /api/v1/admin/outbox) until retried, or
//                             OUTBOX_FAILED_RETENTION_DAYS (30) after it was written. Pending and
//                             sending rows are never touched.
//   PostgreSQL audit_log      kept: it is the record, not an artefact (retention is the operator's).
//
// Every process runs the job on an interval; a transaction-scoped advisory lock around each batch
// means only one process deletes at a time, and a process that finds the lock taken leaves this
// round to the one holding it. Each batch is its own short transaction (a bounded DELETE through a
// ctid subselect on the expiry index), so no long transaction holds locks or keeps VACUUM from
// reclaiming what the earlier batches deleted. Between batches the job pauses nine times as long
// as the batch took, so it never takes more than a tenth of a connection's time from the requests;
// a run that used its time budget with rows left is followed by the next one a second later.
import type { MikroORM } from '@mikro-orm/postgresql';

import { executeStatement, queryOne } from '../platform/database.ts';
import type { Logger } from '../platform/logger.ts';

/** The advisory lock id of the job; other ids in use: signing keys 7_001_001. */
const CLEANUP_LOCK = 7_001_013;

export interface CleanupTarget {
  /** The table, as logs and metrics name it. */
  table: string;
  /** Deletes at most `?` rows that are expired and answers how many it deleted. */
  deleteBatch: string;
}

/** How long delivered and failed outbox rows stay (OUTBOX_SENT_RETENTION_DAYS, OUTBOX_FAILED_RETENTION_DAYS). */
export interface OutboxRetention {
  sentDays: number;
  failedDays: number;
}

export const DEFAULT_OUTBOX_RETENTION: OutboxRetention = { sentDays: 7, failedDays: 30 };

// The outer condition repeats the inner one: a row updated (its expiry extended) between the
// subselect and the delete has a new ctid and a new expires_at, and is left alone. Oldest first,
// by the expiry index: a plain LIMIT would let the planner pick a sequential scan when most rows
// are expired, and each batch would then read past every row the batches before it deleted
// (dead until VACUUM), which grows quadratically over a million rows; the index scan skips index
// entries already known dead. The outbox's two targets walk its two partial indexes (sent rows by
// sent_at, failed ones by created_at); a failed row retried meanwhile is pending again, and left.
/** What the job deletes, in order; the outbox's ages come from the configuration. */
export function cleanupTargets(outbox: OutboxRetention = DEFAULT_OUTBOX_RETENTION): CleanupTarget[] {
  for (const days of [outbox.sentDays, outbox.failedDays]) {
    // Whole numbers only: they are written into the statements.
    if (!Number.isInteger(days) || days < 1) throw new RangeError('outbox retention must be a whole number of days, at least 1');
  }
  const sentBefore = `now() - interval '${outbox.sentDays} days'`;
  const failedBefore = `now() - interval '${outbox.failedDays} days'`;
  return [
    {
      table: 'oidc_artifact',
      deleteBatch: `delete from oidc_artifact where ctid = any(array(
          select ctid from oidc_artifact where expires_at < now() order by expires_at limit ?)) and expires_at < now()`,
    },
    {
      table: 'signing_key',
      deleteBatch: `delete from signing_key where ctid = any(array(
          select ctid from signing_key where retire_at < now() limit ?)) and retire_at < now()`,
    },
    {
      table: 'link_token',
      deleteBatch: `delete from link_token where ctid = any(array(
          select ctid from link_token where expires_at < now() - interval '7 days' order by expires_at limit ?))
          and expires_at < now() - interval '7 days'`,
    },
    {
      table: 'outbox_message',
      deleteBatch: `delete from outbox_message where ctid = any(array(
          select ctid from outbox_message where status = 'sent' and sent_at < ${sentBefore} order by sent_at limit ?))
          and status = 'sent' and sent_at < ${sentBefore}`,
    },
    {
      table: 'outbox_message',
      deleteBatch: `delete from outbox_message where ctid = any(array(
          select ctid from outbox_message where status = 'failed' and created_at < ${failedBefore} order by created_at limit ?))
          and status = 'failed' and created_at < ${failedBefore}`,
    },
  ];
}

export const CLEANUP_TARGETS: readonly CleanupTarget[] = cleanupTargets();

export interface CleanupOptions {
  /** Rows per DELETE statement. */
  batchSize?: number;
  /** A run stops starting batches after this long; the next run goes on where it stopped. */
  budgetMs?: number;
  /** After each batch that leaves rows behind, a pause of this many times the batch's duration. */
  pauseRatio?: number;
  logger?: Logger;
  onDeleted?: (table: string, rows: number) => void;
  onRun?: (outcome: CleanupOutcome, seconds: number) => void;
  /** Told of each batch while the lock is held (tests check that batches of two processes never overlap). */
  onBatch?: (batch: { table: string; rows: number; startedAt: number; endedAt: number }) => void;
  /** How long sent and failed outbox rows stay; DEFAULT_OUTBOX_RETENTION when absent. */
  outboxRetention?: OutboxRetention;
}

/** done: nothing expired is left; budget: time ran out first; busy: another process holds the lock; stopped: shutdown. */
export type CleanupOutcome = 'done' | 'budget' | 'busy' | 'stopped' | 'failed';

export interface CleanupResult {
  outcome: CleanupOutcome;
  deleted: Record<string, number>;
}

export const DEFAULT_BATCH_SIZE = 2000;
const DEFAULT_BUDGET_MS = 30_000;
// The job works at most a tenth of the time: a backlog goes at a few thousand rows a second, far
// more than tokens expire, while the requests keep the database (bench/CLEANUP.md).
const DEFAULT_PAUSE_RATIO = 9;
// After a run that ran out of budget with rows left, the next comes this soon, not an interval later.
const CATCH_UP_DELAY_MS = 1000;

export class ExpiredRowsCleanup {
  readonly #orm: MikroORM;
  readonly #batchSize: number;
  readonly #budgetMs: number;
  readonly #pauseRatio: number;
  readonly #options: CleanupOptions;
  readonly #targets: readonly CleanupTarget[];
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #running: Promise<CleanupResult> | undefined;
  #stopping = false;

  constructor(orm: MikroORM, options: CleanupOptions = {}) {
    this.#orm = orm;
    this.#batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    this.#budgetMs = options.budgetMs ?? DEFAULT_BUDGET_MS;
    this.#pauseRatio = options.pauseRatio ?? DEFAULT_PAUSE_RATIO;
    this.#options = options;
    this.#targets = options.outboxRetention ? cleanupTargets(options.outboxRetention) : CLEANUP_TARGETS;
  }

  /**
   * Runs every `intervalSeconds` (0: never). The first run comes after a random part of the
   * interval, so processes started together do not all reach for the lock at once.
   */
  start(intervalSeconds: number): void {
    if (intervalSeconds === 0 || this.#timer) return;
    const intervalMs = intervalSeconds * 1000;
    const tick = (delayMs: number) => {
      this.#timer = setTimeout(() => {
        void this.run().then(({ outcome }) => { if (!this.#stopping) tick(outcome === 'budget' ? CATCH_UP_DELAY_MS : intervalMs); });
      }, delayMs).unref();
    };
    tick(Math.floor(Math.random() * intervalMs));
  }

  /** Stops the timer and waits for a batch in progress to commit (SIGTERM drain). */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    this.#wake?.();
    await this.#running?.catch(() => undefined);
  }

  /** One run now (or the one already under way): batches until nothing is left, the budget is spent, or another process holds the lock. */
  run(): Promise<CleanupResult> {
    this.#running ??= this.#runOnce().finally(() => { this.#running = undefined; });
    return this.#running;
  }

  async #runOnce(): Promise<CleanupResult> {
    const started = Date.now();
    const deleted: Record<string, number> = {};
    let outcome: CleanupOutcome = 'done';
    try {
      for (const target of this.#targets) {
        // Two targets may share a table (the outbox's sent and failed rows): their counts add up.
        deleted[target.table] ??= 0;
        for (;;) {
          if (this.#stopping) { outcome = 'stopped'; break; }
          if (Date.now() - started > this.#budgetMs) { outcome = 'budget'; break; }
          const batchStarted = Date.now();
          const rows = await this.#batch(target);
          if (rows === undefined) { outcome = 'busy'; break; }
          deleted[target.table]! += rows;
          if (rows > 0) this.#options.onDeleted?.(target.table, rows);
          if (rows < this.#batchSize) break;
          await this.#pause((Date.now() - batchStarted) * this.#pauseRatio);
        }
        if (outcome !== 'done') break;
      }
    } catch (error) {
      outcome = 'failed';
      this.#options.logger?.warn({ err: (error as Error).message, deleted }, 'cleanup of expired rows failed; the next run retries');
    }
    const seconds = (Date.now() - started) / 1000;
    this.#options.onRun?.(outcome, seconds);
    const total = Object.values(deleted).reduce((sum, rows) => sum + rows, 0);
    if (total > 0 || outcome === 'budget') this.#options.logger?.info({ deleted, outcome, seconds }, 'deleted expired rows');
    return { outcome, deleted };
  }

  /** Waits between batches; shutdown cuts it short. */
  #pause(ms: number): Promise<void> {
    if (ms <= 0 || this.#stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.#wake = undefined; resolve(); }, ms);
      this.#wake = () => { clearTimeout(timer); this.#wake = undefined; resolve(); };
    });
  }

  /** One bounded DELETE under the lock; undefined when another process holds it. */
  async #batch(target: CleanupTarget): Promise<number | undefined> {
    return this.#orm.em.fork().transactional(async (em) => {
      const lock = await queryOne<{ locked: boolean }>(em, 'select pg_try_advisory_xact_lock(?) as locked', [CLEANUP_LOCK]);
      if (!lock?.locked) return undefined;
      const startedAt = performance.now();
      const rows = await executeStatement(em, target.deleteBatch, [this.#batchSize]);
      this.#options.onBatch?.({ table: target.table, rows, startedAt, endedAt: performance.now() });
      return rows;
    });
  }
}
