import type Koa from 'koa';
import type { Context, Middleware, Next } from 'koa';
import mount from 'koa-mount';
import type { Provider } from 'oidc-provider';

import { isStoreOutage } from '../http/middleware.ts';
import { writeOAuthError, writeOAuthUnavailable } from '../http/oauth-errors.ts';
import { isUnstorableText } from '../platform/database.ts';

declare module 'koa' {
  interface DefaultState {
    providerStoreOutage?: boolean;
    providerRefusedText?: boolean;
  }
}

// node-oidc-provider reads bodies itself and refuses past 56 KiB (lib/shared/selective_body.js),
// but as a 400 "failed to parse the request body". A declared length past it gets the 413 it is.
const PROVIDER_BODY_LIMIT_BYTES = 56 * 1024;
const PROVIDER_PREFIX = '/oauth/';

/** Holds the live provider; a key rotation swaps in one built with the new keys. */
export class ProviderHolder {
  #provider: Provider;
  #middleware: Middleware;

  constructor(provider: Provider) {
    this.#provider = provider;
    this.#middleware = ProviderHolder.#mountable(provider);
  }

  static #mountable(provider: Provider): Middleware {
    return mount(provider as unknown as Koa) as unknown as Middleware;
  }

  get current(): Provider { return this.#provider; }

  replace(provider: Provider): void {
    this.#provider = provider;
    this.#middleware = ProviderHolder.#mountable(provider);
  }

  /**
   * Storage outages inside the provider answer 503 + Retry-After instead of its generic 500, and
   * text PostgreSQL cannot store (a NUL in a client_id) 400; a body declared too large, 413.
   */
  middleware(): Middleware {
    return async (ctx: Context, next: Next) => {
      if (ctx.path.startsWith(PROVIDER_PREFIX) && (ctx.request.length ?? 0) > PROVIDER_BODY_LIMIT_BYTES) {
        ctx.set('Connection', 'close');
        return writeOAuthError(ctx, 413, 'invalid_request', 'the request body exceeds the limit of 56 KiB');
      }
      try {
        await this.#middleware(ctx, next);
      } catch (error) {
        if (!isUnsavedSessionError(error)) throw error;
        return writeOAuthError(ctx, 400, 'invalid_request', 'This page has expired. Open it again from the start.');
      }
      if (ctx.state.providerStoreOutage) {
        writeOAuthUnavailable(ctx);
      } else if (ctx.state.providerRefusedText) {
        writeOAuthError(ctx, 400, 'invalid_request', 'the request holds text that cannot be stored (a NUL character or an unpaired surrogate)');
      }
    };
  }
}

/**
 * node-oidc-provider 9 renders the device-code page's errors after its session middleware has
 * run, then saves that session with `persist()`, which throws for a session never saved: every
 * device form posted without a live session (an expired or blocked cookie) became a 500.
 */
function isUnsavedSessionError(error: unknown): boolean {
  return error instanceof TypeError && error.message === 'persist can only be called on previously persisted Sessions';
}

/** Classifies a provider `server_error`: an outage or refused text is answered by `middleware()` above. */
export function markProviderServerError(ctx: Context, error: unknown): boolean {
  if (isUnstorableText(error)) {
    ctx.state.providerRefusedText = true;
    return true;
  }
  if (!isStoreOutage(error)) return false;
  ctx.state.providerStoreOutage = true;
  return true;
}
