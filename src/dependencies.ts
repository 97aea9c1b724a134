// Builds what the app needs from the config: stores, services, the provider. Every service the
// routes use is built here, once; routes are functions of these dependencies and take only what
// they use (each route file declares its narrow type). There is no container.
import type { MikroORM } from '@mikro-orm/postgresql';

import { AccessTokenVerifier } from './oidc/access-tokens.ts';
import { revokeGrantEverywhere } from './oidc/adapter.ts';
import { createProvider } from './oidc/provider.ts';
import { providerClientModels } from './oidc/registration.ts';
import { ProviderHolder, markProviderServerError } from './oidc/provider-holder.ts';
import type { Config } from './platform/config.ts';
import { migrate, openDatabase, type Database } from './db/orm.ts';
import type { Logger } from './platform/logger.ts';
import { createMailTransport } from './platform/mail.ts';
import { MemoryStore } from './platform/memory-store.ts';
import { RedisStore } from './platform/redis-store.ts';
import { Metrics, type PoolStats } from './platform/metrics.ts';
import { ReadReplicas } from './platform/read-replicas.ts';
import type { KeyValueStore } from './platform/store.ts';
import { AccountsService } from './services/accounts.service.ts';
import { MfaService } from './services/mfa.service.ts';
import { PasskeyService } from './services/passkeys.service.ts';
import { systemClock, type Clock } from './platform/clock.ts';
import { ApplicationsService } from './services/applications.service.ts';
import { AuditQueryService } from './services/audit-query.service.ts';
import { ExpiredRowsCleanup } from './services/cleanup.service.ts';
import { CrmStatisticsService } from './services/crm-statistics.service.ts';
import { CustomersService } from './services/customers.service.ts';
import { InteractionsService } from './services/crm-interactions.service.ts';
import { InvitationsService } from './services/invitations.service.ts';
import { LocationsService } from './services/locations.service.ts';
import { MailDelivery } from './services/mail-delivery.ts';
import { MailComposer } from './services/mail-templates.ts';
import { EmailVerificationService, VERIFICATION_RESEND_LIMITS } from './services/email-verification.service.ts';
import { PASSWORD_RESET_LIMITS, PasswordResetService } from './services/password-reset.service.ts';
import { RequestThrottle } from './services/request-throttle.ts';
import { OrganizationsService } from './services/organizations.service.ts';
import { OutboxAdminService } from './services/outbox-admin.service.ts';
import { createAdministrator, ensureFirstPartyClient, type CreatedAdmin } from './services/bootstrap.service.ts';
import { ClientAuthThrottle } from './services/client-auth-throttle.ts';
import { ClientRegistry } from './services/client-registry.service.ts';
import { ConsentsService } from './services/consents.service.ts';
import { RevocationService } from './services/revocation.service.ts';
import { PermissionsService } from './services/permissions.service.ts';
import { PermissionResolver } from './services/rbac.service.ts';
import { RolesService } from './services/roles.service.ts';
import { UsersAdminService } from './services/users-admin.service.ts';
import { SelfService } from './services/self-service.service.ts';
import { serverSecret } from './services/server-secrets.service.ts';
import { SignInThrottle } from './services/sign-in-throttle.ts';
import { ensureSigningKeys, loadSigningKeys } from './services/signing-keys.service.ts';

const KEYS_CHANNEL = 'signing-keys';
const KEY_REFRESH_INTERVAL_MS = 60_000;

export interface Dependencies {
  config: Config;
  logger: Logger;
  orm: MikroORM;
  databaseMode: Database['mode'];
  store: KeyValueStore;
  revocation: RevocationService;
  /** Every OAuth client in PostgreSQL (applications, personal and dynamic clients), cached. */
  clientRegistry: ClientRegistry;
  accounts: AccountsService;
  /** Second factors: TOTP, recovery codes, the mfa_token of a password sign-in waiting for one. */
  mfa: MfaService;
  /** Passkeys (WebAuthn): registration, sign-in alone or as the second factor, the user's list. */
  passkeys: PasskeyService;
  /** The time as TOTP and "recent sign-in" rules read it (tests move it). */
  clock: Clock;
  metrics: Metrics;
  /** Where list and report reads go: a read replica (DATABASE_REPLICA_URLS) or the primary. */
  reads: ReadReplicas;
  /** Deletes expired grants, refresh tokens and retired keys every CLEANUP_INTERVAL_SECONDS. */
  cleanup: ExpiredRowsCleanup;
  /** Sends the mail written to the outbox (SMTP_URL, or the log), polling every MAIL_POLL_INTERVAL_MS. */
  mailDelivery: MailDelivery;
  /** Renders mails from views/mail/ with links absolute from ISSUER; services enqueue what it composes. */
  mails: MailComposer;
  /** Verification links: sent on sign-up, admin creation and address changes; followed at /account/verify-email. */
  emailVerification: EmailVerificationService;
  /** Invitations to an organization: made and withdrawn through the API, accepted at /account/accept-invitation. */
  invitations: InvitationsService;
  /** Forgotten passwords: reset links mailed from /account/forgot-password and the API, followed at /account/reset-password. */
  passwordReset: PasswordResetService;
  /** The outbox for super admins: messages by status, and a retry (/api/v1/admin/outbox). */
  outboxAdmin: OutboxAdminService;
  /** Which permissions and API scopes a caller's roles give (cached, checked on every request). */
  permissionResolver: PermissionResolver;
  roles: RolesService;
  /** The permissions API: listing, creating and deleting permission names. */
  permissions: PermissionsService;
  usersAdmin: UsersAdminService;
  selfService: SelfService;
  /** OAuth clients as the /clients API manages them (RFC 7591 metadata, secrets, initial access tokens). */
  applications: ApplicationsService;
  /** The clients a user has authorized (/me/consents). */
  consents: ConsentsService;
  organizations: OrganizationsService;
  locations: LocationsService;
  customers: CustomersService;
  /** CRM interactions (calls, emails, meetings, notes), not the provider's sign-in interactions. */
  crmInteractions: InteractionsService;
  crmStatistics: CrmStatisticsService;
  auditQuery: AuditQueryService;
  /** Ends a grant and every token minted from it, on every process. */
  revokeGrant(grantId: string): Promise<void>;
  providers: ProviderHolder;
  cookieKeys: string[];
  verifier: AccessTokenVerifier;
  /** Reloads signing keys from the database and rebuilds the provider with them. */
  reloadSigningKeys(): Promise<void>;
  close(): Promise<void>;
}

export interface Stores {
  database: Database;
  store: KeyValueStore;
}

export async function openStores(config: Config, logger: Logger, options: { joinRunningServer?: boolean } = {}): Promise<Stores> {
  const database = await openDatabase(config, logger, options);
  try {
    const store = config.redis.connection
      ? await RedisStore.connect(config.redis.connection, config.redis.keyPrefix, logger)
      : new MemoryStore(config.redis.keyPrefix);
    return { database, store };
  } catch (error) {
    await database.close();
    throw error;
  }
}

export function describeStores({ database, store }: Stores): string {
  const db = database.mode === 'embedded' ? 'embedded PostgreSQL (PGlite)' : 'PostgreSQL';
  const kv = store.kind === 'redis' ? 'Redis' : 'in-process store (serves one process only; set REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES to run several)';
  return `${db}, ${kv}`;
}

/**
 * What the first process does before serving: schema migrations, signing keys, and on a fresh
 * database the first super admin. Safe when several processes start at once (advisory locks).
 */
export async function prepareDatabase(config: Config, stores: Stores, logger: Logger): Promise<CreatedAdmin | undefined> {
  const applied = await migrate(stores.database.orm);
  if (applied.length > 0) logger.info({ migrations: applied }, 'applied database migrations');
  await ensureSigningKeys(stores.database.orm);
  await ensureFirstPartyClient(stores.database.orm, config.issuer);
  const revocation = new RevocationService(stores.store, config.tokens.accessTokenTtl);
  const clientRegistry = new ClientRegistry(stores.database.orm, stores.store, revocation);
  return createAdministrator(stores.database.orm, clientRegistry, {
    email: config.admin.email ?? 'admin@latchkey.local',
    password: config.admin.password,
    source: 'first-start',
    onlyIfNoSuperAdmin: true,
  });
}

export async function createDependencies(config: Config, logger: Logger, stores: Stores): Promise<Dependencies> {
  const { database, store } = stores;
  const orm = database.orm;
  const revocation = new RevocationService(store, config.tokens.accessTokenTtl);
  const clientRegistry = new ClientRegistry(orm, store, revocation, { requireVerifiedEmail: config.requireVerifiedEmail });
  const pool = await (orm.em.getConnection() as unknown as { getNativeClient(): Promise<PoolStats> }).getNativeClient();
  const metrics = new Metrics(() => pool);
  const reads = new ReadReplicas(orm, store, {
    replicas: config.database.replicaUrls.length,
    stickySeconds: config.database.replicaStickySeconds,
    onRead: (target) => metrics.replicaReads.inc({ target }),
    onFallback: (error) => logger.warn({ err: (error as Error).message }, 'a read replica is unreachable; reading from the primary'),
  });
  const cleanup = new ExpiredRowsCleanup(orm, {
    logger,
    outboxRetention: config.outboxRetention,
    onDeleted: (table, rows) => metrics.cleanupDeletedRows.inc({ table }, rows),
    onRun: (outcome, seconds) => { metrics.cleanupRuns.inc({ outcome }); metrics.cleanupRunSeconds.set(seconds); },
  });
  const mailDelivery = new MailDelivery(orm, {
    transport: createMailTransport(config.mail, logger),
    logger,
    onDelivery: (outcome) => metrics.outboxDeliveries.inc({ kind: 'mail', outcome }),
  });
  const mails = new MailComposer({ issuer: config.issuer });
  const signInThrottle = new SignInThrottle(store);
  const clock = systemClock();
  const accounts = new AccountsService(orm, signInThrottle, {
    requireVerifiedEmail: config.requireVerifiedEmail, mfaRequiredForAdmins: config.mfaRequiredForAdmins,
    onFailure: (via) => metrics.signInFailures.inc({ via }),
  });
  const mfa = new MfaService({
    orm, store, throttle: signInThrottle, clock, issuerLabel: `Latchkey (${new URL(config.issuer).host})`, mfaRequiredForAdmins: config.mfaRequiredForAdmins,
  });
  const passkeys = new PasskeyService({
    orm, store, clock, mfa, issuer: config.issuer, rpName: 'Latchkey', requireVerifiedEmail: config.requireVerifiedEmail,
  });
  const emailVerification = new EmailVerificationService({
    orm, mails, clients: clientRegistry, throttle: new RequestThrottle(store, { name: 'verify-email-resend', ...VERIFICATION_RESEND_LIMITS }),
  });
  const revokeGrant = (grantId: string) => revokeGrantEverywhere({ store, orm, clientRegistry, revocation }, grantId);
  const passwordReset = new PasswordResetService({
    orm, mails, revocation, revokeGrant, clients: clientRegistry,
    throttle: new RequestThrottle(store, { name: 'password-reset', ...PASSWORD_RESET_LIMITS }),
  });
  const selfService = new SelfService(orm, revocation, revokeGrant, emailVerification);
  const permissionResolver = new PermissionResolver(orm, store);
  const roles = new RolesService(orm, permissionResolver);
  const permissions = new PermissionsService(orm, permissionResolver);
  const usersAdmin = new UsersAdminService({ orm, reads, clientRegistry, revocation, roles, revokeGrant, emailVerification });
  const invitations = new InvitationsService({ orm, reads, mails, roles });
  const organizations = new OrganizationsService({ orm, revocation, clientRegistry, permissionResolver, revokeGrant });
  const clientAuthThrottle = new ClientAuthThrottle(store, config.clientAuthThrottle);
  await Promise.all([revocation.start(), clientRegistry.start(), permissionResolver.start(), clientAuthThrottle.start()]);

  const cookieKeys = config.cookieKeys ?? [await serverSecret(orm, 'cookie-key')];
  let keys = await loadSigningKeys(orm);
  const buildProvider = () => {
    const provider = createProvider({
      config, orm, store, clientRegistry, accounts, mfa, clock, permissionResolver, revocation, clientAuthThrottle, logger, signingKeys: keys.privateKeys, cookieKeys,
    });
    provider.on('server_error', (ctx, error) => { markProviderServerError(ctx, error); });
    // A password sign-in answering mfa_required returns from its grant without tokens.
    provider.on('grant.success', (ctx) => { if (ctx.status === 200) metrics.tokensIssued.inc({ grant_type: String(ctx.oidc.params?.grant_type ?? 'unknown') }); });
    return provider;
  };
  const providers = new ProviderHolder(buildProvider());
  const verifier = new AccessTokenVerifier({
    provider: () => providers.current,
    revocation,
    store,
    issuer: config.issuer,
    audience: config.apiAudience,
    publicKeys: keys.publicKeys,
  });

  let loadedKids = keys.publicKeys.map((key) => key.kid).join(',');
  const reloadSigningKeys = async () => {
    keys = await loadSigningKeys(orm);
    const kids = keys.publicKeys.map((key) => key.kid).join(',');
    if (kids === loadedKids) return;
    loadedKids = kids;
    providers.replace(buildProvider());
    verifier.useKeys(keys.publicKeys);
    logger.info({ kids }, 'signing keys reloaded');
  };
  // A rotation is announced at once; the timer also retires old keys from JWKS on schedule.
  await store.subscribe(KEYS_CHANNEL, () => { reloadSigningKeys().catch((error) => logger.error({ err: error }, 'key reload failed')); });
  const refresher = setInterval(() => {
    reloadSigningKeys().catch((error) => logger.warn({ err: (error as Error).message }, 'key refresh failed'));
  }, KEY_REFRESH_INTERVAL_MS).unref();
  cleanup.start(config.cleanupIntervalSeconds);
  mailDelivery.start(config.mail.pollIntervalMs);

  return {
    config, logger, orm, databaseMode: database.mode, store, revocation, clientRegistry, accounts, mfa, passkeys, clock, metrics, reads, cleanup, mailDelivery, mails, emailVerification, invitations, passwordReset, permissionResolver, roles, permissions, usersAdmin, selfService, revokeGrant,
    organizations, locations: new LocationsService(orm, reads), customers: new CustomersService(orm, reads), crmInteractions: new InteractionsService(orm, reads),
    crmStatistics: new CrmStatisticsService(reads), outboxAdmin: new OutboxAdminService(orm, reads), auditQuery: new AuditQueryService(orm, reads), consents: new ConsentsService(orm, revokeGrant),
    applications: new ApplicationsService({ orm, clientRegistry, revokeGrant, provider: providerClientModels(() => providers.current) }), providers, cookieKeys, verifier, reloadSigningKeys,
    async close() {
      clearInterval(refresher);
      await Promise.all([cleanup.stop(), mailDelivery.stop()]);
      await store.close();
      await database.close();
    },
  };
}

export async function announceKeyRotation(store: KeyValueStore): Promise<void> {
  await store.publish(KEYS_CHANNEL, 'rotated');
}
