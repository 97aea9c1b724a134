// What every server-rendered page with forms shares: the sign-in and consent pages
// (interactions/) and the account pages (account/). A failure becomes a page (the outer
// problem+json handler is for the JSON API), and forms are read with a small size limit.
import type { Context, Middleware, Next } from 'koa';
import { koaBody } from 'koa-body';
import { errors } from 'oidc-provider';

import { RETRY_AFTER_SECONDS, isStoreOutage } from '../http/middleware.ts';
import { renderPage } from '../http/pages.ts';
import { isUnstorableText } from '../platform/database.ts';

const FORM_LIMIT = '16kb';

/** Where a page of failure can send the user on: a link on this server. */
export interface PageLink {
  href: string;
  label: string;
}

/** A failure the user sees as a page with this status, title and explanation (and maybe a way on). */
export class PageError extends Error {
  readonly status: number;
  readonly title: string;
  readonly headers: Record<string, string>;
  readonly next?: PageLink;
  constructor(status: number, title: string, message: string, headers: Record<string, string> = {}, next?: PageLink) {
    super(message);
    this.name = 'PageError';
    this.status = status;
    this.title = title;
    this.headers = headers;
    this.next = next;
  }
}

export const expiredInteraction = () => new PageError(400, 'This sign-in has expired',
  'Go back to the application and start signing in again.');

/** Errors become pages here: the outer problem+json handler is for the JSON API. */
export async function showErrorsAsPages(ctx: Context, next: Next) {
  try {
    await next();
  } catch (error) {
    const page = asPageError(ctx, error);
    renderPage(ctx, 'error', { title: page.title, message: page.message, next: page.next }, { status: page.status, headers: page.headers });
  }
}

function asPageError(ctx: Context, error: unknown): PageError {
  if (error instanceof PageError) return error;
  if (error instanceof errors.SessionNotFound) return expiredInteraction();
  if (isStoreOutage(error)) {
    ctx.state.log.warn({ err: (error as Error).message }, 'backing store unavailable');
    return new PageError(503, 'Latchkey is briefly unavailable', 'Please try again in a few seconds.',
      { 'Retry-After': String(RETRY_AFTER_SECONDS) });
  }
  if (isUnstorableText(error)) {
    return new PageError(400, 'The form could not be read', 'It holds a character that is not allowed (such as NUL). Go back and try again.');
  }
  // koa-body refusals (a form over the limit, a malformed body) carry their own 4xx status.
  const status = (error as { status?: number }).status;
  if (status === 413) return new PageError(413, 'The form was too large', 'Go back and try again.');
  if (status && status >= 400 && status < 500) return new PageError(400, 'The form could not be read', 'Go back and try again.');
  ctx.state.log.error({ err: error }, 'page failed');
  return new PageError(500, 'Something went wrong', 'Go back to the application and try again.');
}

/** Reads an urlencoded form; one that cannot be read (zlib's errors for a body that is not the gzip it claims, carrying no status) is the client's: 400. */
export function formParser(): Middleware {
  const readForm = koaBody({ json: false, urlencoded: true, text: false, multipart: false, formLimit: FORM_LIMIT });
  return async (ctx, next) => {
    let read = false;
    try {
      await readForm(ctx, () => {
        read = true;
        return next();
      });
    } catch (error) {
      if (read || typeof (error as { status?: unknown }).status === 'number') throw error;
      throw new PageError(400, 'The form could not be read', 'Go back and try again.');
    }
  };
}

/** The form's body, as parsed by formParser. */
export function formBody(ctx: Context): Record<string, unknown> {
  return (ctx.request as { body?: Record<string, unknown> }).body ?? {};
}

/** A text field of a form; anything else (absent, repeated) is empty. */
export function formField(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  return typeof value === 'string' ? value : '';
}
