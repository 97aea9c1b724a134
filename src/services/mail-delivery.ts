// Mail through the outbox: enqueueMail() writes a mail in the caller's transaction, and
// MailDelivery (one per process) sends what was committed through the configured transport
// (platform/mail.ts), with the outbox's retries (services/outbox.service.ts).
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';

import type { Logger } from '../platform/logger.ts';
import type { MailMessage, MailTransport } from '../platform/mail.ts';
import { enqueue, OutboxWorker, type DeliveryOutcome, type RetryPolicy } from './outbox.service.ts';

export const MAIL_KIND = 'mail';

/** Queues a mail inside the caller's unit of work: it is sent once the caller's transaction commits, never if it rolls back. */
export function enqueueMail(em: EntityManager, mail: MailMessage): void {
  const payload: Record<string, unknown> = { to: mail.to, subject: mail.subject, text: mail.text };
  if (mail.html !== undefined) payload.html = mail.html;
  if (mail.link !== undefined) payload.link = mail.link;
  enqueue(em, { kind: MAIL_KIND, payload });
}

export interface MailDeliveryOptions {
  transport: MailTransport;
  logger?: Logger;
  batchSize?: number;
  leaseMs?: number;
  retry?: RetryPolicy;
  onDelivery?: (outcome: DeliveryOutcome) => void;
}

export class MailDelivery {
  readonly transport: MailTransport;
  readonly #worker: OutboxWorker;

  constructor(orm: MikroORM, options: MailDeliveryOptions) {
    this.transport = options.transport;
    this.#worker = new OutboxWorker(orm, {
      kind: MAIL_KIND,
      deliver: (message) => options.transport.send(message.payload as unknown as MailMessage),
      batchSize: options.batchSize,
      leaseMs: options.leaseMs,
      retry: options.retry,
      logger: options.logger,
      onDelivery: options.onDelivery,
    });
  }

  /** Polls the outbox every `intervalMs` (0: this process sends no mail). */
  start(intervalMs: number): void { this.#worker.start(intervalMs); }

  /** One delivery round now; answers how many mails it claimed. */
  run(): Promise<number> { return this.#worker.run(); }

  /** Stops polling, lets the mail being sent finish, closes the transport. */
  async stop(): Promise<void> {
    await this.#worker.stop();
    this.transport.close();
  }
}
