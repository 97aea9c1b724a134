// The outbox as operators see it (API.md section 4, "Mail": a mail that keeps failing "shows in the
// admin console"). Until there is a console, two super-admin routes: the list of messages by status
// and a retry. A message shows its kind, recipient, subject, attempts, last error and times, never
// its link or body: the link is a live single-use token, and the body carries it too.
import type { MikroORM } from '@mikro-orm/postgresql';

import { queryOne, queryRows } from '../platform/database.ts';
import { AppError, assertThat } from '../platform/errors.ts';
import type { ReadReplicas } from '../platform/read-replicas.ts';
import { auditEntry, recordAudit } from './audit.service.ts';
import { isSuperAdmin, type Actor } from './tenancy.ts';

export const OUTBOX_STATUSES = ['pending', 'sending', 'sent', 'failed'] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

export interface OutboxFilters {
  status?: OutboxStatus;
  kind?: string;
}

export interface OutboxMessageView {
  id: string;
  kind: string;
  status: OutboxStatus;
  recipient: string | null;
  subject: string | null;
  attempts: number;
  last_error: string | null;
  created_at: string;
  next_attempt_at: string;
  sent_at: string | null;
}

interface OutboxRow {
  id: string;
  kind: string;
  status: OutboxStatus;
  recipient: string | null;
  subject: string | null;
  attempts: number;
  last_error: string | null;
  created_at: Date;
  next_attempt_at: Date;
  sent_at: Date | null;
}

// What a row shows: the payload's `to` and `subject` only, never its link, text or html.
const COLUMNS = `id, kind, status, payload->>'to' as recipient, payload->>'subject' as subject, attempts, last_error,
  created_at, next_attempt_at, sent_at`;

function view(row: OutboxRow): OutboxMessageView {
  return {
    id: row.id, kind: row.kind, status: row.status, recipient: row.recipient, subject: row.subject, attempts: row.attempts,
    last_error: row.last_error, created_at: new Date(row.created_at).toISOString(),
    next_attempt_at: new Date(row.next_attempt_at).toISOString(), sent_at: row.sent_at ? new Date(row.sent_at).toISOString() : null,
  };
}

function assertSuperAdmin(actor: Actor): void {
  if (!isSuperAdmin(actor)) throw new AppError('auth.forbidden', 'Only a super admin sees and retries the outbox');
}

export class OutboxAdminService {
  readonly #orm: MikroORM;
  readonly #reads: ReadReplicas;

  constructor(orm: MikroORM, reads: ReadReplicas) {
    this.#orm = orm;
    this.#reads = reads;
  }

  /** Messages, newest first, of one status and kind when asked. */
  async list(actor: Actor, filters: OutboxFilters, page: { limit: number; offset: number }): Promise<{ count: number; results: OutboxMessageView[] }> {
    assertSuperAdmin(actor);
    const conditions = ['true'];
    const params: unknown[] = [];
    if (filters.status) { conditions.push('status = ?'); params.push(filters.status); }
    if (filters.kind) { conditions.push('kind = ?'); params.push(filters.kind); }
    const where = conditions.join(' and ');
    const em = await this.#reads.for(actor);
    const [rows, total] = await Promise.all([
      queryRows<OutboxRow>(em, `select ${COLUMNS} from outbox_message where ${where} order by created_at desc, id limit ? offset ?`, [...params, page.limit, page.offset]),
      queryOne<{ count: number }>(em, `select count(*)::int as count from outbox_message where ${where}`, params),
    ]);
    return { count: total?.count ?? 0, results: rows.map(view) };
  }

  /**
   * Sends a failed message again (or a pending one now rather than after its backoff): back to
   * pending, due at once, with a fresh set of attempts. Audited in the same transaction. A message
   * being sent or sent already is a 409.
   */
  async retry(actor: Actor, id: string): Promise<OutboxMessageView> {
    assertSuperAdmin(actor);
    return this.#orm.em.fork().transactional(async (em) => {
      const before = await queryOne<OutboxRow>(em, `select ${COLUMNS} from outbox_message where id = ? for update`, [id]);
      assertThat(before, 'resource.not_found', 'No such outbox message');
      if (before.status !== 'failed' && before.status !== 'pending') {
        throw new AppError('outbox.not_retryable', `This message is ${before.status === 'sent' ? 'sent already' : 'being sent now'}; only a failed or pending one can be retried`);
      }
      const after = await queryOne<OutboxRow>(em,
        `update outbox_message set status = 'pending', attempts = 0, next_attempt_at = now() where id = ? returning ${COLUMNS}`, [id]);
      recordAudit(em, auditEntry(actor, {
        action: 'outbox.retry', resource: 'outbox_message', resourceId: id,
        details: { kind: before.kind, previous_status: before.status, attempts: before.attempts },
      }));
      return view(after!);
    });
  }
}
