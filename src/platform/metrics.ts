// Prometheus metrics (API.md "Operations") through prom-client: requests by route, latency,
// tokens issued by grant, sign-in failures, the PostgreSQL pool and the event loop. Served on
// METRICS_PORT, bound to loopback, apart from the public listener.
import { createServer, type Server } from 'node:http';

import type { Context, Next } from 'koa';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface PoolStats {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'latchkey_http_requests_total', help: 'HTTP requests by method, route and status', labelNames: ['method', 'route', 'status'] as const, registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'latchkey_http_request_duration_seconds', help: 'HTTP request latency by method and route', labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [this.registry],
  });
  readonly tokensIssued = new Counter({
    name: 'latchkey_tokens_issued_total', help: 'Successful token endpoint answers by grant type', labelNames: ['grant_type'] as const, registers: [this.registry],
  });
  readonly replicaReads = new Counter({
    name: 'latchkey_db_read_queries_total',
    help: 'List and report queries by where they ran: replica, primary (no replica, or the caller just wrote) or fallback (the replica was unreachable)',
    labelNames: ['target'] as const, registers: [this.registry],
  });
  readonly cleanupDeletedRows = new Counter({
    name: 'latchkey_cleanup_deleted_rows_total', help: 'Expired rows the cleanup job deleted, by table', labelNames: ['table'] as const, registers: [this.registry],
  });
  readonly cleanupRuns = new Counter({
    name: 'latchkey_cleanup_runs_total',
    help: 'Runs of the cleanup job by outcome: done, budget (time ran out, rows left), busy (another process held the lock), stopped, failed',
    labelNames: ['outcome'] as const, registers: [this.registry],
  });
  readonly cleanupRunSeconds = new Gauge({
    name: 'latchkey_cleanup_last_run_seconds', help: 'How long the last run of the cleanup job in this process took', registers: [this.registry],
  });
  readonly outboxDeliveries = new Counter({
    name: 'latchkey_outbox_deliveries_total',
    help: 'Outbox delivery attempts by kind (mail) and outcome: sent, retry (failed, tried again later), failed (the last attempt failed)',
    labelNames: ['kind', 'outcome'] as const, registers: [this.registry],
  });
  readonly signInFailures = new Counter({
    name: 'latchkey_sign_in_failures_total', help: 'Failed sign-ins by path', labelNames: ['via'] as const, registers: [this.registry],
  });

  constructor(pool?: () => PoolStats | undefined) {
    collectDefaultMetrics({ register: this.registry, prefix: 'latchkey_' });
    if (pool) {
      for (const [name, field, help] of [
        ['latchkey_db_pool_connections', 'totalCount', 'Open PostgreSQL connections'],
        ['latchkey_db_pool_idle_connections', 'idleCount', 'Idle PostgreSQL connections'],
        ['latchkey_db_pool_waiting_requests', 'waitingCount', 'Queries waiting for a PostgreSQL connection'],
      ] as const) {
        new Gauge({ name, help, registers: [this.registry], collect() { this.set(pool()?.[field] ?? 0); } });
      }
    }
  }

  /** Records every request under its route template, never its raw path (ids would explode the labels). */
  middleware() {
    // prom-client hashes a label object on every observe; the few (method, route, status)
    // combinations a server sees are looked up once and their children kept (bounded by routes).
    const durations = new Map<string, { observe(seconds: number): void }>();
    const counts = new Map<string, { inc(): void }>();
    return async (ctx: Context, next: Next) => {
      const started = performance.now();
      try {
        await next();
      } finally {
        const { _matchedRoute: matched, oidc } = ctx as { _matchedRoute?: string; oidc?: { route?: string } };
        const route = matched ?? (oidc?.route ? `oidc:${oidc.route}` : ctx.path.startsWith('/interaction/') ? '/interaction/:uid' : 'unmatched');
        const { method } = ctx;
        const status = String(ctx.status);
        const routeKey = `${method} ${route}`;
        let duration = durations.get(routeKey);
        if (!duration) durations.set(routeKey, duration = this.httpDuration.labels({ method, route }));
        duration.observe((performance.now() - started) / 1000);
        const countKey = `${routeKey} ${status}`;
        let count = counts.get(countKey);
        if (!count) counts.set(countKey, count = this.httpRequests.labels({ method, route, status }));
        count.inc();
      }
    };
  }

  /** GET /metrics on its own loopback listener. */
  async serve(port: number, host = '127.0.0.1'): Promise<Server> {
    const server = createServer((request, response) => {
      if (request.method !== 'GET' || request.url !== '/metrics') {
        response.writeHead(404).end();
        return;
      }
      this.registry.metrics().then((body) => {
        response.writeHead(200, { 'content-type': this.registry.contentType }).end(body);
      }, () => response.writeHead(500).end());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return server;
  }
}
