import { z } from 'zod';

import { PageQuery } from '../../http/pagination.ts';
import { OUTBOX_STATUSES } from '../../services/outbox-admin.service.ts';

export const OutboxIdParams = z.object({ id: z.uuid({ error: 'expected a UUID' }) });

export const OutboxListQuery = z.object({
  ...PageQuery.shape,
  status: z.enum(OUTBOX_STATUSES, { error: `expected one of ${OUTBOX_STATUSES.join(', ')}` }).optional(),
  kind: z.string().regex(/^[a-z_]{1,32}$/, { error: 'expected a message kind, such as mail' }).optional(),
});

/** A message of the outbox without its payload's link or body. */
export const OutboxMessageResponse = z.object({
  id: z.uuid(),
  kind: z.string(),
  status: z.enum(OUTBOX_STATUSES),
  recipient: z.string().nullable(),
  subject: z.string().nullable(),
  attempts: z.number().int(),
  last_error: z.string().nullable(),
  created_at: z.iso.datetime(),
  next_attempt_at: z.iso.datetime(),
  sent_at: z.iso.datetime().nullable(),
}).meta({ id: 'OutboxMessage' });
