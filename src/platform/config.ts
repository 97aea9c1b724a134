// The one place that reads the environment (API.md section 1). Everything else receives a Config.
import { z } from 'zod';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'expected true or false' })
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

function integer(min: number, max: number) {
  return z
    .string()
    .regex(/^\d+$/, { error: `expected a whole number from ${min} to ${max}` })
    .transform(Number)
    .pipe(z.number().int().min(min, { error: `expected at least ${min}` }).max(max, { error: `expected at most ${max}` }));
}

function urlWithProtocols(protocols: string[], label: string) {
  return z.string().refine((value) => {
    try {
      return protocols.includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, { error: `expected a ${label} URL (${protocols.join(' or ')}//...)` });
}

export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || hostname === '::1' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

const issuerSchema = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected an absolute URL such as https://auth.example.com' });
    return;
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    ctx.addIssue({ code: 'custom', message: 'must use https (plain http is allowed only for a loopback host)' });
  }
  if (url.search || url.hash) ctx.addIssue({ code: 'custom', message: 'must not have a query or fragment (RFC 8414 section 2)' });
  if (value.endsWith('/')) ctx.addIssue({ code: 'custom', message: 'must not end with a slash' });
});

const cookieKeysSchema = z
  .string()
  .transform((value) => value.split(',').map((key) => key.trim()).filter(Boolean))
  .refine((keys) => keys.length > 0 && keys.every((key) => key.length >= 32), {
    error: 'expected a comma-separated list of keys, each at least 32 characters',
  });

export interface RedisEndpoint { host: string; port: number }

/** One Redis (a URL), a Sentinel-managed primary with its replicas, or a Redis Cluster. */
export type RedisConnection =
  | { mode: 'standalone'; url: string }
  | { mode: 'sentinel'; sentinels: RedisEndpoint[]; name: string; auth?: RedisAuth; sentinelPassword?: string }
  | { mode: 'cluster'; nodes: RedisEndpoint[]; auth?: RedisAuth };

/** AUTH for the Redis servers of a Sentinel or Cluster setup (`requirepass`, or an ACL user). */
export interface RedisAuth { username?: string; password?: string }

/** `host:port,host:port`, as Sentinel and Cluster settings are written (an IPv6 host in brackets). */
const endpointList = z.string().transform((value, ctx) => {
  const endpoints: RedisEndpoint[] = [];
  for (const item of value.split(',').map((part) => part.trim()).filter(Boolean)) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(item);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `expected host:port pairs separated by commas, such as 10.0.0.1:26379,10.0.0.2:26379 ("${item}" is not one)` });
      return z.NEVER;
    }
    endpoints.push({ host: match[1]!.replace(/^\[|\]$/g, ''), port });
  }
  if (endpoints.length === 0) ctx.addIssue({ code: 'custom', message: 'expected at least one host:port' });
  return endpoints;
});

const replicaUrlsSchema = z
  .string()
  .transform((value) => value.split(',').map((url) => url.trim()).filter(Boolean))
  .refine((urls) => urls.length > 0 && urls.every((url) => urlWithProtocols(['postgres:', 'postgresql:'], 'PostgreSQL').safeParse(url).success), {
    error: 'expected a comma-separated list of PostgreSQL URLs (postgresql://...)',
  });

// `no-reply@example.com` or `Latchkey <no-reply@example.com>`: what a From header holds.
const mailFromSchema = z.string().max(320).refine((value) => {
  const address = /^[^<>]*<([^<>]+)>$/.exec(value.trim())?.[1] ?? value.trim();
  return z.email().safeParse(address).success;
}, { error: 'expected an address, or a name and an address: Latchkey <no-reply@example.com>' });

const environmentSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: integer(0, 65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  ISSUER: issuerSchema.optional(),
  DATABASE_URL: urlWithProtocols(['postgres:', 'postgresql:'], 'PostgreSQL').optional(),
  DATABASE_REPLICA_URLS: replicaUrlsSchema.optional(),
  DATABASE_REPLICA_STICKY_SECONDS: integer(0, 3600).default(5),
  CLEANUP_INTERVAL_SECONDS: integer(0, 86_400).default(300),
  OUTBOX_SENT_RETENTION_DAYS: integer(1, 3650).default(7),
  OUTBOX_FAILED_RETENTION_DAYS: integer(1, 3650).default(30),
  DATA_DIR: z.string().min(1).default('./data'),
  REDIS_URL: urlWithProtocols(['redis:', 'rediss:'], 'Redis').optional(),
  REDIS_SENTINELS: endpointList.optional(),
  REDIS_SENTINEL_NAME: z.string().regex(/^[\w.-]{1,128}$/, { error: 'expected the master name the sentinels monitor (letters, digits, ".", "_" or "-")' }).optional(),
  REDIS_CLUSTER_NODES: endpointList.optional(),
  // With REDIS_SENTINELS or REDIS_CLUSTER_NODES (a REDIS_URL carries its own credentials).
  REDIS_USERNAME: z.string().min(1).max(256).optional(),
  REDIS_PASSWORD: z.string().min(1).max(1024).optional(),
  REDIS_SENTINEL_PASSWORD: z.string().min(1).max(1024).optional(),
  REDIS_KEY_PREFIX: z.string().regex(/^[\w:.-]{1,64}$/, { error: 'expected up to 64 letters, digits, ":", ".", "_" or "-"' }).default('latchkey:'),
  ADMIN_EMAIL: z.email({ error: 'expected an email address' }).optional(),
  ADMIN_PASSWORD: z.string().min(12, { error: 'expected at least 12 characters' }).max(128, { error: 'expected at most 128 characters' }).optional(),
  ACCESS_TOKEN_TTL: integer(60, 86_400).default(3600),
  REFRESH_TOKEN_TTL: integer(300, 31_536_000).default(1_209_600),
  DEVICE_CODE_TTL: integer(60, 3600).default(600),
  ACCESS_TOKEN_FORMAT: z.enum(['opaque', 'jwt'], { error: 'expected opaque or jwt' }).default('opaque'),
  METRICS_PORT: integer(0, 65535).default(9464),
  WEB_CONCURRENCY: integer(1, 64).default(1),
  COOKIE_KEYS: cookieKeysSchema.optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  TRUST_PROXY: booleanFlag.default(false),
  OUTBOUND_ALLOW_PRIVATE: booleanFlag.default(false),
  AUDIT_TOKEN_ISSUES: booleanFlag.default(false),
  MFA_REQUIRED_FOR_ADMINS: booleanFlag.default(false),
  SEED_PASSWORD: z.string().min(12, { error: 'expected at least 12 characters' }).max(128, { error: 'expected at most 128 characters' }).optional(),
  SHUTDOWN_TIMEOUT_MS: integer(0, 600_000).default(10_000),
  DATABASE_ACQUIRE_TIMEOUT_MS: integer(100, 600_000).default(5000),
  HTTP_HEADERS_TIMEOUT_MS: integer(1000, 600_000).default(10_000),
  HTTP_REQUEST_TIMEOUT_MS: integer(1000, 3_600_000).default(30_000),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: integer(1000, 600_000).default(65_000),
  TOKEN_RATE_LIMIT: integer(0, 1_000_000).default(1200),
  // Set by the cluster primary for each worker it forks; not for people to set.
  LATCHKEY_WORKER_INDEX: integer(0, 63).default(0),
  LOGIN_RATE_LIMIT: integer(0, 1_000_000).default(120),
  CLIENT_AUTH_FAILURES_PER_ADDRESS: integer(0, 1_000_000).default(30),
  CLIENT_AUTH_FAILURES_PER_CLIENT: integer(0, 1_000_000).default(100),
  CLIENT_AUTH_FAILURE_WINDOW: integer(1, 86_400).default(60),
  SMTP_URL: urlWithProtocols(['smtp:', 'smtps:'], 'SMTP').optional(),
  MAIL_FROM: mailFromSchema.optional(),
  MAIL_POLL_INTERVAL_MS: integer(0, 600_000).default(1000),
  REQUIRE_VERIFIED_EMAIL: booleanFlag.default(false),
});

type Environment = z.infer<typeof environmentSchema>;

export interface Config {
  env: Environment['NODE_ENV'];
  port: number;
  host: string;
  issuer: string;
  /** The built-in resource server (API.md section 2: `ISSUER/api`). */
  apiAudience: string;
  /**
   * `acquireTimeoutMs`: how long a query waits for a pooled connection before it fails (503).
   * `replicaUrls`: streaming replicas for list and report reads; `replicaStickySeconds`: how long
   * after a caller's write its reads stay on the primary (read-your-writes).
   */
  database: { url?: string; dataDir: string; acquireTimeoutMs: number; replicaUrls: string[]; replicaStickySeconds: number };
  /** Seconds between runs of the job deleting expired rows (0 turns it off in this process). */
  cleanupIntervalSeconds: number;
  /** Days the cleanup job keeps outbox rows: sent ones after sending, failed ones after they were written. */
  outboxRetention: { sentDays: number; failedDays: number };
  /** Absent: the in-process store (one process only). */
  redis: { connection?: RedisConnection; keyPrefix: string };
  admin: { email?: string; password?: string };
  seedPassword?: string;
  tokens: { accessTokenTtl: number; refreshTokenTtl: number; deviceCodeTtl: number; accessTokenFormat: 'opaque' | 'jwt' };
  /** 0 turns the metrics listener off. */
  metricsPort: number;
  /** Which worker of a cluster this process is (0 for a single process). */
  workerIndex: number;
  webConcurrency: number;
  cookieKeys?: string[];
  logLevel: Environment['LOG_LEVEL'];
  trustProxy: boolean;
  outboundAllowPrivate: boolean;
  auditTokenIssues: boolean;
  /** Every super admin must have a second factor: one without enrols right after the password (API.md "Multi-factor authentication"). */
  mfaRequiredForAdmins: boolean;
  shutdownTimeoutMs: number;
  /** Node's http server limits: a slow or silent client is cut off with 408 (see docs/operations.md). */
  http: { headersTimeoutMs: number; requestTimeoutMs: number; keepAliveTimeoutMs: number };
  /** Requests per client IP per minute; 0 turns a limit off. */
  rateLimits: { token: number; login: number };
  /** Failed client authentications allowed per address and per client id in a window (seconds); 0 turns a limit off. */
  clientAuthThrottle: { perAddress: number; perClient: number; windowSeconds: number };
  /** Cookies get the Secure flag whenever the issuer is https (API.md section 1). */
  secureCookies: boolean;
  /**
   * `smtpUrl`: where mail goes (absent: into the log); `from`: the From of every mail;
   * `pollIntervalMs`: how often each process looks for mail to send (0: never).
   */
  mail: { smtpUrl?: string; from: string; pollIntervalMs: number };
  /** Sign-in (login page, JSON login, password grant) is refused until the user's e-mail address is verified. */
  requireVerifiedEmail: boolean;
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Parses the environment once. Empty strings count as unset, as shells and compose files often leave them. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const relevant = Object.fromEntries(
    Object.keys(environmentSchema.shape)
      .map((name) => [name, source[name]] as const)
      .filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = environmentSchema.safeParse(relevant);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? 'environment');
      const raw = relevant[name];
      const shown = raw === undefined || /PASSWORD|KEYS|SECRET|URLS|SMTP_URL/.test(name) ? '' : ` (got "${raw}")`;
      return `${name}: ${issue.message}${shown}`;
    }));
  }
  const env = parsed.data;
  const redisConnection = redisConnectionOf(env);
  if (env.WEB_CONCURRENCY > 1 && !redisConnection) {
    throw new ConfigError(['WEB_CONCURRENCY: more than one process needs REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES (the embedded store serves one process only)']);
  }
  if (env.DATABASE_REPLICA_URLS && !env.DATABASE_URL) {
    throw new ConfigError(['DATABASE_REPLICA_URLS: needs DATABASE_URL (the embedded database has no replicas)']);
  }
  // Node refuses a headers timeout longer than the request timeout (both count from the request's start).
  if (env.HTTP_HEADERS_TIMEOUT_MS > env.HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError([`HTTP_HEADERS_TIMEOUT_MS: must not exceed HTTP_REQUEST_TIMEOUT_MS (${env.HTTP_REQUEST_TIMEOUT_MS})`]);
  }
  const issuer = env.ISSUER ?? `http://localhost:${env.PORT}`;
  return {
    env: env.NODE_ENV,
    port: env.PORT,
    host: env.HOST,
    issuer,
    apiAudience: `${issuer}/api`,
    database: {
      url: env.DATABASE_URL, dataDir: env.DATA_DIR, acquireTimeoutMs: env.DATABASE_ACQUIRE_TIMEOUT_MS,
      replicaUrls: env.DATABASE_REPLICA_URLS ?? [], replicaStickySeconds: env.DATABASE_REPLICA_STICKY_SECONDS,
    },
    cleanupIntervalSeconds: env.CLEANUP_INTERVAL_SECONDS,
    outboxRetention: { sentDays: env.OUTBOX_SENT_RETENTION_DAYS, failedDays: env.OUTBOX_FAILED_RETENTION_DAYS },
    redis: { connection: redisConnection, keyPrefix: env.REDIS_KEY_PREFIX },
    admin: { email: env.ADMIN_EMAIL, password: env.ADMIN_PASSWORD },
    seedPassword: env.SEED_PASSWORD,
    tokens: {
      accessTokenTtl: env.ACCESS_TOKEN_TTL,
      refreshTokenTtl: env.REFRESH_TOKEN_TTL,
      deviceCodeTtl: env.DEVICE_CODE_TTL,
      accessTokenFormat: env.ACCESS_TOKEN_FORMAT,
    },
    metricsPort: env.METRICS_PORT,
    workerIndex: env.LATCHKEY_WORKER_INDEX,
    webConcurrency: env.WEB_CONCURRENCY,
    cookieKeys: env.COOKIE_KEYS,
    logLevel: env.LOG_LEVEL,
    trustProxy: env.TRUST_PROXY,
    outboundAllowPrivate: env.OUTBOUND_ALLOW_PRIVATE,
    auditTokenIssues: env.AUDIT_TOKEN_ISSUES,
    mfaRequiredForAdmins: env.MFA_REQUIRED_FOR_ADMINS,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    http: { headersTimeoutMs: env.HTTP_HEADERS_TIMEOUT_MS, requestTimeoutMs: env.HTTP_REQUEST_TIMEOUT_MS, keepAliveTimeoutMs: env.HTTP_KEEP_ALIVE_TIMEOUT_MS },
    rateLimits: { token: env.TOKEN_RATE_LIMIT, login: env.LOGIN_RATE_LIMIT },
    clientAuthThrottle: {
      perAddress: env.CLIENT_AUTH_FAILURES_PER_ADDRESS,
      perClient: env.CLIENT_AUTH_FAILURES_PER_CLIENT,
      windowSeconds: env.CLIENT_AUTH_FAILURE_WINDOW,
    },
    secureCookies: issuer.startsWith('https:'),
    mail: {
      smtpUrl: env.SMTP_URL,
      from: env.MAIL_FROM ?? `Latchkey <no-reply@${new URL(issuer).hostname}>`,
      pollIntervalMs: env.MAIL_POLL_INTERVAL_MS,
    },
    requireVerifiedEmail: env.REQUIRE_VERIFIED_EMAIL,
  };
}

/** Exactly one way to reach Redis, or none (the in-process store). */
function redisConnectionOf(env: Environment): RedisConnection | undefined {
  const given = (['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const).filter((name) => env[name] !== undefined);
  if (given.length > 1) throw new ConfigError([`${given.join(', ')}: set only one of them (one Redis, a Sentinel-managed one, or a Cluster)`]);
  if (env.REDIS_SENTINELS && !env.REDIS_SENTINEL_NAME) {
    throw new ConfigError(['REDIS_SENTINEL_NAME: required with REDIS_SENTINELS (the master name the sentinels monitor, as in "sentinel monitor <name> ...")']);
  }
  if (env.REDIS_SENTINEL_NAME && !env.REDIS_SENTINELS) throw new ConfigError(['REDIS_SENTINEL_NAME: only used with REDIS_SENTINELS']);
  if (env.REDIS_SENTINEL_PASSWORD && !env.REDIS_SENTINELS) throw new ConfigError(['REDIS_SENTINEL_PASSWORD: only used with REDIS_SENTINELS']);
  const credentials = (['REDIS_USERNAME', 'REDIS_PASSWORD'] as const).filter((name) => env[name] !== undefined);
  if (credentials.length > 0 && !env.REDIS_SENTINELS && !env.REDIS_CLUSTER_NODES) {
    throw new ConfigError([`${credentials.join(', ')}: only used with REDIS_SENTINELS or REDIS_CLUSTER_NODES (put a single Redis's credentials in REDIS_URL: redis://user:password@host:6379)`]);
  }
  const auth = credentials.length > 0 ? { auth: { username: env.REDIS_USERNAME, password: env.REDIS_PASSWORD } } : {};
  if (env.REDIS_URL) return { mode: 'standalone', url: env.REDIS_URL };
  if (env.REDIS_SENTINELS) {
    const sentinelAuth = env.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: env.REDIS_SENTINEL_PASSWORD } : {};
    return { mode: 'sentinel', sentinels: env.REDIS_SENTINELS, name: env.REDIS_SENTINEL_NAME!, ...auth, ...sentinelAuth };
  }
  if (env.REDIS_CLUSTER_NODES) return { mode: 'cluster', nodes: env.REDIS_CLUSTER_NODES, ...auth };
  return undefined;
}
