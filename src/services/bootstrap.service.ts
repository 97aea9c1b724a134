// First start and `npm run admin:create`: the default organization, the built-in roles, and an
// administrator with a personal OAuth client whose secret is returned exactly once.
import { LockMode, type EntityManager, type MikroORM } from '@mikro-orm/postgresql';

import { DEFAULT_ORGANIZATION_SLUG, Organization } from '../db/entities/organization.entity.ts';
import { Permission } from '../db/entities/permission.entity.ts';
import { BUILTIN_ROLES, Role, type BuiltinRoleName } from '../db/entities/role.entity.ts';
import { User } from '../db/entities/user.entity.ts';
import { executeStatement, queryOne } from '../platform/database.ts';
import { auditEntry, recordAudit } from './audit.service.ts';
import type { ClientRegistry } from './client-registry.service.ts';
import { assertOrganizationHasRoom } from './organization-capacity.ts';
import { generatePassword, hashPassword } from './passwords.ts';
import { BUILTIN_ROLE_PERMISSIONS, ensureBuiltinPermissions } from './rbac.service.ts';
import { API_SCOPES, OIDC_SCOPES } from './scopes.ts';

const BOOTSTRAP_LOCK = 7_001_002;

const ROLE_DESCRIPTIONS: Record<BuiltinRoleName, string> = {
  super_admin: 'Every organization and every permission',
  admin: 'Administers one organization',
  backoffice: 'Sees every CRM record of the organization',
  agent: 'Creates and works its own and assigned CRM records',
  premium_user: 'Creates CRM records; sees its own and assigned ones',
  basic_user: 'Reads its own and assigned CRM records',
  guest: 'No CRM access',
};

/** Metadata of a personal API client: confidential, client_credentials only, every API scope. */
export function personalClientMetadata(name: string): Record<string, unknown> {
  return {
    client_name: name,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: API_SCOPES.join(' '),
  };
}

export async function ensureOrganization(em: EntityManager, slug: string, name: string): Promise<Organization> {
  const existing = await em.findOne(Organization, { slug });
  if (existing) return existing;
  const organization = em.create(Organization, { slug, name });
  await em.flush();
  return organization;
}

/** Built-in roles of an organization with their default permissions, plus the global super_admin role. */
export async function ensureBuiltinRoles(em: EntityManager, organization: Organization): Promise<void> {
  await ensureBuiltinPermissions(em);
  const permissions = new Map((await em.find(Permission, {})).map((permission) => [permission.name, permission]));
  for (const key of BUILTIN_ROLES) {
    const scope = key === 'super_admin' ? null : organization.id;
    const existing = await em.findOne(Role, { key, organization: scope }, { populate: ['permissions'] });
    const role = existing ?? em.create(Role, { key, name: key, organization: scope, isBuiltin: true, description: ROLE_DESCRIPTIONS[key] });
    // Roles made before permissions existed (or just now) get their defaults once.
    if (!existing || existing.permissions.length === 0) {
      for (const permission of BUILTIN_ROLE_PERMISSIONS[key]) role.permissions.add(permissions.get(permission)!);
    }
  }
  await em.flush();
}

export interface CreatedAdmin {
  userId: string;
  email: string;
  organizationSlug: string;
  role: 'super_admin' | 'admin';
  /** Present only when generated here; shown once. */
  generatedPassword?: string;
  clientId: string;
  clientSecret: string;
}

export class AdminExistsError extends Error {}

/** The organization the administrator joins (the default one is made on first use), locked and with room for one more user. */
async function organizationWithRoom(em: MikroORM['em'], slug: string): Promise<Organization> {
  const organization = slug === DEFAULT_ORGANIZATION_SLUG
    ? await ensureOrganization(em, DEFAULT_ORGANIZATION_SLUG, 'Default organization')
    : await em.findOne(Organization, { slug });
  if (!organization) throw new Error(`No organization with slug "${slug}"`);
  await ensureBuiltinRoles(em, organization);
  // Locked like every other path that adds a user, so max_users holds under concurrent additions.
  await em.lock(organization, LockMode.PESSIMISTIC_WRITE);
  await assertOrganizationHasRoom(em, organization);
  return organization;
}

export async function createAdministrator(
  orm: MikroORM,
  clients: ClientRegistry,
  input: { email: string; password?: string; organizationSlug?: string; source: string; onlyIfNoSuperAdmin?: boolean },
): Promise<CreatedAdmin | undefined> {
  const password = input.password ?? generatePassword();
  const passwordHash = await hashPassword(password);
  const email = input.email.trim().toLowerCase();
  return orm.em.fork().transactional(async (em) => {
    await em.getConnection().execute('select pg_advisory_xact_lock(?)', [BOOTSTRAP_LOCK], 'all', em.getTransactionContext());
    // Several processes may start together: only the first one in creates the first admin.
    if (input.onlyIfNoSuperAdmin && await hasSuperAdmin(em)) return undefined;
    const organization = await organizationWithRoom(em, input.organizationSlug ?? DEFAULT_ORGANIZATION_SLUG);
    if (await em.findOne(User, { organization, email })) throw new AdminExistsError(`A user with email ${email} already exists in ${organization.slug}`);

    // Without --org the administrator is a super admin; with one, that organization's admin.
    const roleKey = input.organizationSlug ? 'admin' : 'super_admin';
    const role = await em.findOneOrFail(Role, { key: roleKey, organization: roleKey === 'super_admin' ? null : organization.id });
    const user = em.create(User, { organization, email, passwordHash, isVerified: true, firstName: '', lastName: roleKey === 'super_admin' ? 'Administrator' : '' });
    user.roles.add(role);
    await em.flush();

    const { clientId, clientSecret } = await clients.create({
      kind: 'personal',
      ownerId: user.id,
      organizationId: organization.id,
      metadata: personalClientMetadata(`Personal client of ${email}`),
    }, em);
    // No request asked for this: the command line did, so the row names no actor.
    recordAudit(em, auditEntry(null, {
      action: 'admin.create', resource: 'user', resourceId: user.id, targetId: user.id, organizationId: organization.id,
      details: { role: roleKey, source: input.source, client_id: clientId },
    }));
    await em.flush();
    return {
      userId: user.id, email, organizationSlug: organization.slug, role: roleKey,
      generatedPassword: input.password ? undefined : password, clientId, clientSecret: clientSecret!,
    };
  });
}

/** True once any super admin exists, i.e. after the first start. */
export async function hasSuperAdmin(em: EntityManager): Promise<boolean> {
  const row = await queryOne<{ found: number }>(
    em,
    `select 1 as found from app_user u join user_role ur on ur.user_id = u.id
       join role r on r.id = ur.role_id where r.key = 'super_admin' and r.organization_id is null limit 1`,
  );
  return !!row;
}

/** The built-in first-party client the JSON login uses when the caller names none (API.md "Auth"). */
export const FIRST_PARTY_CLIENT_ID = 'latchkey';
/** Where the built-in client's code flow returns: the account pages' sign-in (oidc/account/account-session.ts). */
export const ACCOUNT_CALLBACK_PATH = '/account/callback';

/**
 * The built-in client, written on every start: its redirect URI follows ISSUER, and nobody else
 * may change it (the API refuses, `client.builtin`). Public, with PKCE: the password grant of the
 * JSON login, and the code flow of Latchkey's own pages.
 */
export async function ensureFirstPartyClient(orm: MikroORM, issuer: string): Promise<void> {
  const metadata = {
    client_id: FIRST_PARTY_CLIENT_ID,
    client_name: 'Latchkey',
    application_type: 'web',
    grant_types: ['password', 'refresh_token', 'authorization_code'],
    response_types: ['code'],
    redirect_uris: [`${issuer}${ACCOUNT_CALLBACK_PATH}`],
    token_endpoint_auth_method: 'none',
    first_party: true,
    scope: [...OIDC_SCOPES, ...API_SCOPES].join(' '),
  };
  await executeStatement(
    orm.em,
    `insert into oauth_client (client_id, kind, first_party, metadata, created_at, updated_at)
     values (?, 'application', true, ?, now(), now())
     on conflict (client_id) do update set metadata = excluded.metadata, updated_at = now() where oauth_client.metadata <> excluded.metadata`,
    [FIRST_PARTY_CLIENT_ID, JSON.stringify(metadata)],
  );
}
