// Opaque, tamper-proof cursors for lists that grow without bound (API.md section 3, "Lists").
// A cursor carries the keyset position of the last row a page showed, (occurred_at, id), and an
// HMAC over that position and the list it belongs to (the caller's organization scope and the
// query's filters). So a client cannot move it, forge one, or replay one against another list:
// any of those is a 400, and nothing from a cursor reaches SQL before its MAC has been checked.
import { createHmac, timingSafeEqual } from 'node:crypto';

import type { MikroORM } from '@mikro-orm/postgresql';
import { z } from 'zod';

import { AppError } from '../platform/errors.ts';
import { serverSecret } from './server-secrets.service.ts';

export interface KeysetPosition {
  /** occurred_at to the microsecond (PostgreSQL's precision; a JS Date would lose rows on ties). */
  at: string;
  id: string;
}

const VERSION = 'v1';
const SECRET_NAME = 'cursor-key';
const Position = z.tuple([z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/), z.uuid()]);

export class KeysetCursors {
  readonly #orm: MikroORM;
  #key: Promise<string> | undefined;

  constructor(orm: MikroORM) {
    this.#orm = orm;
  }

  /** `binding` names the list: the same position in another list is another cursor. */
  async encode(position: KeysetPosition, binding: string): Promise<string> {
    const payload = Buffer.from(JSON.stringify([position.at, position.id])).toString('base64url');
    return `${payload}.${(await this.#mac(payload, binding)).toString('base64url')}`;
  }

  async decode(cursor: string, binding: string): Promise<KeysetPosition> {
    const [payload, mac, ...rest] = cursor.split('.');
    if (!payload || !mac || rest.length > 0) throw badCursor();
    const expected = await this.#mac(payload, binding);
    const given = Buffer.from(mac, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw badCursor();
    const parsed = Position.safeParse(parseJson(Buffer.from(payload, 'base64url').toString('utf8')));
    if (!parsed.success) throw badCursor();
    return { at: parsed.data[0], id: parsed.data[1] };
  }

  async #mac(payload: string, binding: string): Promise<Buffer> {
    return createHmac('sha256', await this.#secret()).update(`${VERSION}\n${binding}\n${payload}`).digest();
  }

  #secret(): Promise<string> {
    this.#key ??= serverSecret(this.#orm, SECRET_NAME).catch((error: unknown) => {
      this.#key = undefined;
      throw error;
    });
    return this.#key;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function badCursor(): AppError {
  return new AppError('request.bad_cursor', 'The cursor is not one this list issued; start again without it');
}
