import type Router from '@koa/router';

import type { MikroORM } from '@mikro-orm/postgresql';

import type { DatabaseMode } from '../platform/database.ts';
import type { KeyValueStore } from '../platform/store.ts';
import { VERSION } from '../platform/version.ts';

/** What the readiness probe looks at. */
export interface OperationsDependencies {
  orm: MikroORM;
  databaseMode: DatabaseMode;
  store: Pick<KeyValueStore, 'ping' | 'kind'>;
}

const CHECK_TIMEOUT_MS = 2000;

async function probe(check: () => Promise<unknown>): Promise<'up' | 'down'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('timeout')), CHECK_TIMEOUT_MS); }),
    ]);
    return 'up';
  } catch {
    return 'down';
  } finally {
    clearTimeout(timer);
  }
}

/** Liveness and readiness (API.md "Operations"). */
export function operationsRoutes(router: Router, deps: OperationsDependencies): void {
  router.get('/health', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok', version: VERSION };
  });

  router.get('/ready', async (ctx) => {
    const [database, store] = await Promise.all([
      probe(() => deps.orm.em.getConnection().execute('select 1')),
      probe(() => deps.store.ping()),
    ]);
    const ready = database === 'up' && store === 'up';
    ctx.set('Cache-Control', 'no-store');
    if (!ready) ctx.set('Retry-After', '5');
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'unavailable', database, store, database_mode: deps.databaseMode, store_mode: deps.store.kind };
  });
}
