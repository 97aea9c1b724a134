import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

/**
 * A message waiting to leave (a mail; webhooks later), written in the transaction of the change
 * that causes it and sent by the delivery worker (services/outbox.service.ts). `lastError` never
 * holds a secret: it is the transport's message, and the payload's link is not in it.
 */
export const OutboxMessage = defineEntity({
  name: 'OutboxMessage',
  tableName: 'outbox_message',
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    kind: p.string().length(32),
    payload: p.json<Record<string, unknown>>(),
    status: p.enum(['pending', 'sending', 'sent', 'failed'] as const),
    attempts: p.integer(),
    nextAttemptAt: p.datetime(),
    lastError: p.text().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    sentAt: p.datetime().nullable(),
  },
});
export type OutboxMessage = InferEntity<typeof OutboxMessage>;
