// Lists (API.md section 3, "Lists"): every list takes the same paging parameters. Page-numbered
// lists take ?page=1&page_size=20 and answer { count, page, page_size, next, previous, results };
// the audit trail, which grows without bound, takes page_size and a cursor and answers
// { results, next }. `limit` is accepted everywhere as another name for page_size.
import type { Context } from 'koa';
import { z } from 'zod';

import { fieldError } from '../platform/errors.ts';

const wholeNumber = () => z.coerce.number({ error: 'expected a whole number' }).int().min(1);
const pageSize = (fallback: number) => wholeNumber().max(100).default(fallback).describe('how many results a page holds (1..100)');
// Only documented and let through the unknown-parameter check: `queryWithAliases` renames it to
// page_size before the schema reads the query.
const limitAlias = wholeNumber().max(100).optional().describe('another name for page_size');

export const PageQuery = z.object({
  page: wholeNumber().default(1),
  page_size: pageSize(20),
  limit: limitAlias,
});
export type PageQuery = z.infer<typeof PageQuery>;

export const CursorPageQuery = z.object({
  page_size: pageSize(50),
  limit: limitAlias,
  cursor: z.string().min(1).max(512).optional().describe('the `next` value of the previous page'),
});

const PAGE_SIZE_ALIASES = ['limit'] as const;

/**
 * The query as a route's schema reads it: an alias of page_size becomes page_size. Both given
 * with different values is a 422 rather than a silent choice of one.
 */
export function queryWithAliases(query: Record<string, string | string[]>): Record<string, string | string[]> {
  const result = { ...query };
  for (const alias of PAGE_SIZE_ALIASES) {
    if (result[alias] === undefined) continue;
    if (result.page_size !== undefined && String(result.page_size) !== String(result[alias])) {
      throw fieldError(['query', alias], 'names another page size than page_size; give one of them', 'conflict');
    }
    result.page_size = result[alias];
    delete result[alias];
  }
  return result;
}

export function pageEnvelopeSchema<T extends z.ZodType>(item: T) {
  return z.object({
    count: z.number().int(),
    page: z.number().int(),
    page_size: z.number().int(),
    next: z.string().nullable(),
    previous: z.string().nullable(),
    results: z.array(item),
  });
}

export function offsetOf(query: Pick<PageQuery, 'page' | 'page_size'>): number {
  return (query.page - 1) * query.page_size;
}

function pageLink(ctx: Context, baseUrl: string, page: number): string {
  const url = new URL(ctx.path, baseUrl);
  for (const [name, value] of Object.entries(ctx.query)) if (typeof value === 'string') url.searchParams.set(name, value);
  url.searchParams.set('page', String(page));
  return url.href;
}

export function pageEnvelope<T>(ctx: Context, baseUrl: string, query: Pick<PageQuery, 'page' | 'page_size'>, count: number, results: T[]) {
  const lastPage = Math.max(1, Math.ceil(count / query.page_size));
  return {
    count,
    page: query.page,
    page_size: query.page_size,
    next: query.page < lastPage ? pageLink(ctx, baseUrl, query.page + 1) : null,
    previous: query.page > 1 ? pageLink(ctx, baseUrl, Math.min(query.page - 1, lastPage)) : null,
    results,
  };
}
