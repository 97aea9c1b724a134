import { expect } from 'chai';

import { ConfigError, loadConfig } from '../../src/platform/config.ts';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('configuration (API.md section 1)', () => {
  it('defaults to the zero-setup embedded mode on port 3000', () => {
    const config = loadConfig({});
    expect(config).to.include({ port: 3000, issuer: 'http://localhost:3000', apiAudience: 'http://localhost:3000/api', webConcurrency: 1 });
    expect(config.database.url).to.equal(undefined);
    expect(config.redis.connection).to.equal(undefined);
    expect(config.tokens).to.deep.equal({ accessTokenTtl: 3600, refreshTokenTtl: 1_209_600, deviceCodeTtl: 600, accessTokenFormat: 'opaque' });
    expect(config.secureCookies).to.equal(false);
  });

  it('names the variable and the problem for each bad value', () => {
    const problems = problemsOf({ PORT: '70000', ACCESS_TOKEN_FORMAT: 'paseto', DATABASE_URL: 'mysql://x', TRUST_PROXY: 'maybe' });
    expect(problems).to.have.length(4);
    expect(problems.join('\n')).to.include('PORT: expected at most 65535')
      .and.include('ACCESS_TOKEN_FORMAT: expected opaque or jwt')
      .and.include('DATABASE_URL: expected a PostgreSQL URL')
      .and.include('TRUST_PROXY: expected true or false');
  });

  it('reads the mail settings: no SMTP_URL (mail goes to the log), a From on the issuer\'s host, a poll every second', () => {
    expect(loadConfig({}).mail).to.deep.equal({ smtpUrl: undefined, from: 'Latchkey <no-reply@localhost>', pollIntervalMs: 1000 });
    expect(loadConfig({ ISSUER: 'https://id.example.com' }).mail.from).to.equal('Latchkey <no-reply@id.example.com>');
    const config = loadConfig({ SMTP_URL: 'smtps://user:pass@smtp.example.com:465', MAIL_FROM: 'Acme <accounts@acme.example>', MAIL_POLL_INTERVAL_MS: '250' });
    expect(config.mail).to.deep.equal({ smtpUrl: 'smtps://user:pass@smtp.example.com:465', from: 'Acme <accounts@acme.example>', pollIntervalMs: 250 });
    expect(loadConfig({ SMTP_URL: 'smtp://mailpit:1025', MAIL_FROM: 'accounts@acme.example' }).mail.from).to.equal('accounts@acme.example');
  });

  it('refuses an SMTP_URL that is not smtp:// or smtps:// without echoing it (it may hold a password), and a MAIL_FROM that is not an address', () => {
    expect(problemsOf({ SMTP_URL: 'http://user:hunter2@smtp.example.com' })).to.deep.equal(['SMTP_URL: expected a SMTP URL (smtp: or smtps://...)']);
    expect(problemsOf({ MAIL_FROM: 'Acme <not-an-address>' })).to.deep.equal(
      ['MAIL_FROM: expected an address, or a name and an address: Latchkey <no-reply@example.com> (got "Acme <not-an-address>")']);
    expect(problemsOf({ MAIL_POLL_INTERVAL_MS: '-1' })).to.have.length(1);
  });

  it('reads REQUIRE_VERIFIED_EMAIL, off by default', () => {
    expect(loadConfig({}).requireVerifiedEmail).to.equal(false);
    expect(loadConfig({ REQUIRE_VERIFIED_EMAIL: 'true' }).requireVerifiedEmail).to.equal(true);
    expect(problemsOf({ REQUIRE_VERIFIED_EMAIL: 'sometimes' })).to.deep.equal(['REQUIRE_VERIFIED_EMAIL: expected true or false (got "sometimes")']);
  });

  it('reads the limits on failed client authentication, with defaults', () => {
    expect(loadConfig({}).clientAuthThrottle).to.deep.equal({ perAddress: 30, perClient: 100, windowSeconds: 60 });
    expect(loadConfig({ CLIENT_AUTH_FAILURES_PER_ADDRESS: '0', CLIENT_AUTH_FAILURES_PER_CLIENT: '500', CLIENT_AUTH_FAILURE_WINDOW: '300' }).clientAuthThrottle)
      .to.deep.equal({ perAddress: 0, perClient: 500, windowSeconds: 300 });
    expect(problemsOf({ CLIENT_AUTH_FAILURE_WINDOW: '0' })).to.deep.equal(['CLIENT_AUTH_FAILURE_WINDOW: expected at least 1 (got "0")']);
  });

  it('requires a second factor of super admins only when MFA_REQUIRED_FOR_ADMINS says so', () => {
    expect(loadConfig({}).mfaRequiredForAdmins).to.equal(false);
    expect(loadConfig({ MFA_REQUIRED_FOR_ADMINS: 'true' }).mfaRequiredForAdmins).to.equal(true);
    expect(problemsOf({ MFA_REQUIRED_FOR_ADMINS: 'always' })).to.deep.equal(['MFA_REQUIRED_FOR_ADMINS: expected true or false (got "always")']);
  });

  it('never echoes a password back in its message', () => {
    const [problem] = problemsOf({ ADMIN_PASSWORD: 'short' });
    expect(problem).to.equal('ADMIN_PASSWORD: expected at least 12 characters');
  });

  it('accepts plain http only for a loopback issuer, even in production', () => {
    expect(loadConfig({ NODE_ENV: 'production', ISSUER: 'http://127.0.0.1:8080' }).issuer).to.equal('http://127.0.0.1:8080');
    expect(problemsOf({ ISSUER: 'http://auth.example.com' })[0]).to.include('must use https');
    expect(problemsOf({ ISSUER: 'https://auth.example.com/' })[0]).to.include('must not end with a slash');
    expect(loadConfig({ ISSUER: 'https://auth.example.com' }).secureCookies).to.equal(true);
  });

  it('needs Redis for more than one worker process', () => {
    expect(problemsOf({ WEB_CONCURRENCY: '2' })[0]).to.include('WEB_CONCURRENCY: more than one process needs REDIS_URL');
    expect(loadConfig({ WEB_CONCURRENCY: '2', REDIS_URL: 'redis://127.0.0.1:6379' }).webConcurrency).to.equal(2);
    expect(loadConfig({ WEB_CONCURRENCY: '2', REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'latchkey' }).webConcurrency).to.equal(2);
  });

  it('reaches Redis through one URL, a set of sentinels or a cluster\'s nodes', () => {
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).redis.connection).to.deep.equal({ mode: 'standalone', url: 'redis://127.0.0.1:6379' });
    expect(loadConfig({ REDIS_SENTINELS: '10.0.0.1:26379, 10.0.0.2:26379,[::1]:26380', REDIS_SENTINEL_NAME: 'latchkey' }).redis.connection).to.deep.equal({
      mode: 'sentinel',
      name: 'latchkey',
      sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: '10.0.0.2', port: 26379 }, { host: '::1', port: 26380 }],
    });
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'redis-a:7000,redis-b:7001', WEB_CONCURRENCY: '4' }).redis.connection).to.deep.equal({
      mode: 'cluster', nodes: [{ host: 'redis-a', port: 7000 }, { host: 'redis-b', port: 7001 }],
    });
  });

  it('takes exactly one way to Redis, and a sentinel master name with sentinels only', () => {
    expect(problemsOf({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' })).to.deep.equal([
      'REDIS_URL, REDIS_CLUSTER_NODES: set only one of them (one Redis, a Sentinel-managed one, or a Cluster)',
    ]);
    expect(problemsOf({ REDIS_SENTINELS: '127.0.0.1:26379' })[0]).to.match(/^REDIS_SENTINEL_NAME: required with REDIS_SENTINELS/);
    expect(problemsOf({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_SENTINEL_NAME: 'latchkey' })).to.deep.equal(['REDIS_SENTINEL_NAME: only used with REDIS_SENTINELS']);
    expect(problemsOf({ REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1', WEB_CONCURRENCY: '2' })[0])
      .to.match(/^REDIS_CLUSTER_NODES: expected host:port pairs separated by commas.*\("127\.0\.0\.1" is not one\)/);
    expect(problemsOf({ REDIS_SENTINELS: '127.0.0.1:70000', REDIS_SENTINEL_NAME: 'latchkey' })[0]).to.include('REDIS_SENTINELS: expected host:port pairs');
    expect(problemsOf({ REDIS_CLUSTER_NODES: ',' })[0]).to.include('REDIS_CLUSTER_NODES: expected at least one host:port');
    expect(problemsOf({ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'has space' })[0]).to.include('REDIS_SENTINEL_NAME: expected the master name');
  });

  it('takes credentials for the servers of a Sentinel or a Cluster, and the sentinels\' own password', () => {
    expect(loadConfig({ REDIS_SENTINELS: '10.0.0.1:26379', REDIS_SENTINEL_NAME: 'latchkey', REDIS_PASSWORD: 'node-secret', REDIS_SENTINEL_PASSWORD: 'sentinel-secret' })
      .redis.connection).to.deep.equal({
      mode: 'sentinel', name: 'latchkey', sentinels: [{ host: '10.0.0.1', port: 26379 }],
      auth: { username: undefined, password: 'node-secret' }, sentinelPassword: 'sentinel-secret',
    });
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'redis-a:7000', REDIS_USERNAME: 'latchkey', REDIS_PASSWORD: 'acl-secret' }).redis.connection).to.deep.equal({
      mode: 'cluster', nodes: [{ host: 'redis-a', port: 7000 }], auth: { username: 'latchkey', password: 'acl-secret' },
    });
    expect(problemsOf({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_PASSWORD: 'secret' })[0])
      .to.equal('REDIS_PASSWORD: only used with REDIS_SENTINELS or REDIS_CLUSTER_NODES (put a single Redis\'s credentials in REDIS_URL: redis://user:password@host:6379)');
    expect(problemsOf({ REDIS_CLUSTER_NODES: 'redis-a:7000', REDIS_SENTINEL_PASSWORD: 'secret' })).to.deep.equal(['REDIS_SENTINEL_PASSWORD: only used with REDIS_SENTINELS']);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' }).port).to.equal(3000);
  });

  it('bounds slow clients by default, and refuses a headers timeout longer than the request timeout', () => {
    expect(loadConfig({}).http).to.deep.equal({ headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 65_000 });
    expect(loadConfig({}).database.acquireTimeoutMs).to.equal(5000);
    expect(problemsOf({ HTTP_HEADERS_TIMEOUT_MS: '20000', HTTP_REQUEST_TIMEOUT_MS: '10000' })[0])
      .to.equal('HTTP_HEADERS_TIMEOUT_MS: must not exceed HTTP_REQUEST_TIMEOUT_MS (10000)');
  });

  it('takes read replicas beside DATABASE_URL only, and never echoes their URLs in an error', () => {
    const primary = 'postgresql://app@db-1:5432/latchkey';
    const config = loadConfig({ DATABASE_URL: primary, DATABASE_REPLICA_URLS: 'postgresql://app@db-2:5432/latchkey, postgres://app@db-3/latchkey' });
    expect(config.database.replicaUrls).to.deep.equal(['postgresql://app@db-2:5432/latchkey', 'postgres://app@db-3/latchkey']);
    expect(config.database.replicaStickySeconds).to.equal(5);
    expect(loadConfig({ DATABASE_URL: primary }).database.replicaUrls).to.deep.equal([]);
    expect(problemsOf({ DATABASE_REPLICA_URLS: 'postgresql://app@db-2/latchkey' }))
      .to.deep.equal(['DATABASE_REPLICA_URLS: needs DATABASE_URL (the embedded database has no replicas)']);
    expect(problemsOf({ DATABASE_URL: primary, DATABASE_REPLICA_URLS: 'postgresql://app:s3cret@db-2/x,mysql://db-3' }))
      .to.deep.equal(['DATABASE_REPLICA_URLS: expected a comma-separated list of PostgreSQL URLs (postgresql://...)']);
  });

  it('runs the cleanup job every 300 s unless told otherwise (0 turns it off)', () => {
    expect(loadConfig({}).cleanupIntervalSeconds).to.equal(300);
    expect(loadConfig({ CLEANUP_INTERVAL_SECONDS: '0' }).cleanupIntervalSeconds).to.equal(0);
  });

  it('keeps sent outbox rows 7 days and failed ones 30 unless told otherwise, in whole days from 1', () => {
    expect(loadConfig({}).outboxRetention).to.deep.equal({ sentDays: 7, failedDays: 30 });
    expect(loadConfig({ OUTBOX_SENT_RETENTION_DAYS: '1', OUTBOX_FAILED_RETENTION_DAYS: '90' }).outboxRetention).to.deep.equal({ sentDays: 1, failedDays: 90 });
    expect(problemsOf({ OUTBOX_SENT_RETENTION_DAYS: '0' })).to.have.length(1);
    expect(problemsOf({ OUTBOX_FAILED_RETENTION_DAYS: '2.5' })).to.have.length(1);
  });

  it('splits and checks COOKIE_KEYS', () => {
    expect(loadConfig({ COOKIE_KEYS: `${'a'.repeat(32)}, ${'b'.repeat(40)}` }).cookieKeys).to.have.length(2);
    expect(problemsOf({ COOKIE_KEYS: 'tooshort' })[0]).to.include('COOKIE_KEYS: expected a comma-separated list');
  });
});
