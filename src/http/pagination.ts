// Lists (API.md section 3, "Lists"): every list takes the same paging parameters. Page-numbered
// lists take ?page=1&page_size=20 (or ?skip=0&page_size=20) and answer
// { count, page, page_size, next, previous, results }; the audit trail, which grows without bound,
// takes page_size and a cursor and answers { results, next }. `limit` and `size` are accepted
// everywhere as other names for page_size, so that clients written for offset/limit or page/size
// APIs work unchanged.
import type { Context } from 'koa';
import { z } from 'zod';

import { fieldError } from '../platform/errors.ts';

const wholeNumber = () => z.coerce.number({ error: 'expected a whole number' }).int().min(1);
const pageSize = (fallback: number) => wholeNumber().max(100).default(fallback).describe('how many results a page holds (1..100)');
// Only documented and let through the unknown-parameter check: `queryWithAliases` renames them to
// page_size before the schema reads the query.
const pageSizeAlias = wholeNumber().max(100).optional().describe('another name for page_size');

export const PageQuery = z.object({
  // No default here: `page` and `skip` are two ways to say where a page starts, and `positionOf`
  // must know which of them the client gave.
  page: wholeNumber().optional().describe('which page, counted from 1 (default 1)'),
  skip: z.coerce.number({ error: 'expected a whole number' }).int().min(0).optional()
    .describe('how many results to pass over, instead of page; the page answered is then floor(skip / page_size) + 1'),
  page_size: pageSize(20),
  limit: pageSizeAlias,
  size: pageSizeAlias,
});
export type PageQuery = z.infer<typeof PageQuery>;

export const CursorPageQuery = z.object({
  page_size: pageSize(50),
  limit: pageSizeAlias,
  size: pageSizeAlias,
  cursor: z.string().min(1).max(512).optional().describe('the `next` value of the previous page'),
  page: wholeNumber().optional()
    .describe('only 1, for clients written for page-numbered lists: without a cursor this list answers its first page; the pages after it are reached through `cursor`'),
});
type CursorPageQuery = z.infer<typeof CursorPageQuery>;

const PAGE_SIZE_ALIASES = ['limit', 'size'] as const;

/**
 * The query as a route's schema reads it: an alias of page_size becomes page_size. Two of them
 * with different values is a 422 rather than a silent choice of one.
 */
export function queryWithAliases(query: Record<string, string | string[]>): Record<string, string | string[]> {
  const result = { ...query };
  for (const alias of PAGE_SIZE_ALIASES) {
    if (result[alias] === undefined) continue;
    if (result.page_size !== undefined && String(result.page_size) !== String(result[alias])) {
      throw fieldError(['query', alias], 'names another page size than page_size (or its other alias); give one of them', 'conflict');
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

type PagePosition = Pick<PageQuery, 'page' | 'skip' | 'page_size'>;

/**
 * Where the page starts. With `skip`, the offset is skip itself and the page answered is the one
 * that offset falls in; `page` beside it must name the same offset, or the request is a 422 (two
 * positions, and no way to know which one the client meant).
 */
function positionOf(query: PagePosition): { page: number; offset: number; skip?: number } {
  if (query.skip === undefined) {
    const page = query.page ?? 1;
    return { page, offset: (page - 1) * query.page_size };
  }
  if (query.page !== undefined && (query.page - 1) * query.page_size !== query.skip) {
    throw fieldError(['query', 'skip'], `starts at result ${query.skip}, but page ${query.page} of ${query.page_size} starts at ${(query.page - 1) * query.page_size}; give one of them`, 'conflict');
  }
  return { page: Math.floor(query.skip / query.page_size) + 1, offset: query.skip, skip: query.skip };
}

export function offsetOf(query: PagePosition): number {
  return positionOf(query).offset;
}

/** The same list, query and all, at another position: by `skip` if the client paged by skip, else by `page`. */
function linkTo(ctx: Context, baseUrl: string, position: { page: number } | { skip: number }): string {
  const url = new URL(ctx.path, baseUrl);
  for (const [name, value] of Object.entries(ctx.query)) if (typeof value === 'string') url.searchParams.set(name, value);
  if ('skip' in position) {
    url.searchParams.delete('page');
    url.searchParams.set('skip', String(position.skip));
  } else {
    url.searchParams.set('page', String(position.page));
  }
  return url.href;
}

export function pageEnvelope<T>(ctx: Context, baseUrl: string, query: PagePosition, count: number, results: T[]) {
  const { page, skip } = positionOf(query);
  const size = query.page_size;
  let next: string | null;
  let previous: string | null;
  if (skip === undefined) {
    const lastPage = Math.max(1, Math.ceil(count / size));
    next = page < lastPage ? linkTo(ctx, baseUrl, { page: page + 1 }) : null;
    previous = page > 1 ? linkTo(ctx, baseUrl, { page: Math.min(page - 1, lastPage) }) : null;
  } else {
    next = skip + size < count ? linkTo(ctx, baseUrl, { skip: skip + size }) : null;
    // The page_size results before this window, or, past the end, the last window that holds any.
    previous = skip > 0 ? linkTo(ctx, baseUrl, { skip: Math.max(0, Math.min(skip - size, count - size)) }) : null;
  }
  return { count, page, page_size: size, next, previous, results };
}

/**
 * The cursor of a cursor-paged list. `page=1` asks for the first page, as a client written for
 * page-numbered lists sends it; a later page number without a cursor is refused rather than
 * answered with the first page, since the client would then read the same rows again.
 */
export function cursorOf(query: Pick<CursorPageQuery, 'page' | 'cursor'>): string | undefined {
  if (query.page !== undefined && query.page > 1 && query.cursor === undefined) {
    throw fieldError(['query', 'page'], 'must be 1 without a cursor: this list pages by cursor, so pass the `next` value of the previous page as `cursor`', 'unsupported');
  }
  return query.cursor;
}
