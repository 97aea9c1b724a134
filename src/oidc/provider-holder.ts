import type Koa from 'koa';
import type { Context, Middleware, Next } from 'koa';
import mount from 'koa-mount';
import type { Provider } from 'oidc-provider';

import { RETRY_AFTER_SECONDS, isStoreOutage } from '../http/middleware.ts';

declare module 'koa' {
  interface DefaultState {
    providerStoreOutage?: boolean;
  }
}

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

  /** Storage outages inside the provider answer 503 + Retry-After instead of its generic 500. */
  middleware(): Middleware {
    return async (ctx: Context, next: Next) => {
      await this.#middleware(ctx, next);
      if (ctx.state.providerStoreOutage) {
        ctx.status = 503;
        ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { error: 'temporarily_unavailable', error_description: 'a backing store is unavailable; retry shortly' };
      }
    };
  }
}

export function markProviderOutage(ctx: Context, error: unknown): boolean {
  if (!isStoreOutage(error)) return false;
  ctx.state.providerStoreOutage = true;
  return true;
}
