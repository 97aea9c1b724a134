// /api/v1 takes JSON bodies only (API.md "Operations"), read strictly: every body that is not
// exactly UTF-8 JSON text is refused with a 4xx, never decoded by guesswork and never a 500.
import type { Context, Next } from 'koa';
import getRawBody from 'raw-body';
import { createBrotliDecompress, createUnzip } from 'node:zlib';
import type { Readable } from 'node:stream';

import { AppError } from '../platform/errors.ts';

export const JSON_BODY_LIMIT_BYTES = 100 * 1024;

/** The 413 of a body past JSON_BODY_LIMIT_BYTES, with the limit it broke. */
export function bodyTooLarge(): AppError {
  return new AppError('request.too_large', `The request body exceeds the limit of ${JSON_BODY_LIMIT_BYTES / 1024} kB`);
}
const PARSED_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
// RFC 8259 section 8.1: JSON exchanged between systems that are not part of a closed ecosystem MUST be UTF-8.
const UTF8_CHARSETS = new Set(['utf-8', 'utf8']);
// koa-body's rule, kept: a body is an object or an array, not a bare scalar.
const OBJECT_OR_ARRAY = /^[ \t\n\r]*[[{]/;

function hasBody(ctx: Context): boolean {
  return Number(ctx.get('content-length') || 0) > 0 || ctx.get('transfer-encoding') !== '';
}

/** RFC 9110 section 8.4.1: an unsupported content coding is a 415. */
function decodedStream(ctx: Context): Readable {
  const coding = ctx.get('content-encoding').trim().toLowerCase();
  switch (coding) {
    case '':
    case 'identity':
      return ctx.req;
    case 'gzip':
    case 'x-gzip':
    case 'deflate':
      return ctx.req.pipe(createUnzip());
    case 'br':
      return ctx.req.pipe(createBrotliDecompress());
    default:
      throw new AppError('request.unsupported_media_type', `Content-Encoding "${coding}" is not supported; use gzip, deflate, br or none`);
  }
}

async function readBytes(ctx: Context, stream: Readable): Promise<Buffer> {
  try {
    // The limit counts decoded bytes, so a small compressed body cannot expand past it.
    return await getRawBody(stream, {
      limit: JSON_BODY_LIMIT_BYTES,
      length: stream === ctx.req ? ctx.request.length : undefined,
    });
  } catch (error) {
    // The rest of the body is not read: the connection cannot be reused.
    ctx.set('Connection', 'close');
    const { type, status } = error as { type?: string; status?: number };
    if (status === 413) throw bodyTooLarge();
    if (type === 'request.aborted' || type === 'request.size.invalid') throw new AppError('request.malformed', 'The request body ended before its Content-Length');
    // zlib's own errors: the body is not what its Content-Encoding says.
    throw new AppError('request.malformed', `The request body is not valid ${ctx.get('content-encoding')} data`);
  }
}

function decodeUtf8(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new AppError('request.malformed', 'The request body is not valid UTF-8');
  }
}

function parseJson(text: string): unknown {
  if (!OBJECT_OR_ARRAY.test(text)) throw new AppError('request.malformed', 'The request body must be a JSON object or array');
  let parsed: unknown;
  let prototypeKey = false;
  try {
    parsed = JSON.parse(text, (key, value: unknown) => {
      // Refused outright: it would become an object's prototype if the body were ever copied by assignment.
      if (key === '__proto__') prototypeKey = true;
      return value;
    });
  } catch {
    throw new AppError('request.malformed', 'The request body is not valid JSON');
  }
  if (prototypeKey) throw new AppError('request.malformed', 'The request body must not have a "__proto__" key');
  return parsed;
}

/** 415 for anything but UTF-8 JSON in a supported coding; 413 past 100 kB; 400 for bytes that are not what they claim. */
export async function parseJsonBody(ctx: Context, next: Next): Promise<void> {
  if (!hasBody(ctx)) return next();
  if (!ctx.is('application/json', 'application/*+json')) {
    throw new AppError('request.unsupported_media_type', 'Request bodies must be application/json');
  }
  const charset = ctx.request.charset.toLowerCase();
  if (charset && !UTF8_CHARSETS.has(charset)) {
    throw new AppError('request.unsupported_media_type', `JSON bodies must be UTF-8 (RFC 8259 section 8.1), not charset "${charset}"`);
  }
  if (PARSED_METHODS.has(ctx.method)) {
    const text = decodeUtf8(await readBytes(ctx, decodedStream(ctx)));
    (ctx.request as { body?: unknown }).body = text.trim() === '' ? undefined : parseJson(text);
  }
  await next();
}
