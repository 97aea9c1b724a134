// Page-numbered lists (API.md section 3, "Lists"): ?page=1&page_size=20, answered as
// { count, page, page_size, next, previous, results }.
import type { Context } from 'koa';
import { z } from 'zod';

export const PageQuery = z.object({
  page: z.coerce.number({ error: 'expected a whole number' }).int().min(1).default(1),
  page_size: z.coerce.number({ error: 'expected a whole number' }).int().min(1).max(100).default(20),
});
export type PageQuery = z.infer<typeof PageQuery>;

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

export function offsetOf(query: PageQuery): number {
  return (query.page - 1) * query.page_size;
}

function pageLink(ctx: Context, baseUrl: string, page: number): string {
  const url = new URL(ctx.path, baseUrl);
  for (const [name, value] of Object.entries(ctx.query)) if (typeof value === 'string') url.searchParams.set(name, value);
  url.searchParams.set('page', String(page));
  return url.href;
}

export function pageEnvelope<T>(ctx: Context, baseUrl: string, query: PageQuery, count: number, results: T[]) {
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
