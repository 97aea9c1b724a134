// Sign-up, user self-registration (API.md "Auth" register): a basic_user and a personal OAuth client, answered once.
// Not RFC 7591 dynamic client registration, which is src/oidc/registration.ts.
import { LockMode, type MikroORM } from '@mikro-orm/postgresql';

import { DEFAULT_ORGANIZATION_SLUG, Organization } from '../db/entities/organization.entity.ts';
import { Role } from '../db/entities/role.entity.ts';
import { User } from '../db/entities/user.entity.ts';
import { AppError, fieldError } from '../platform/errors.ts';
import { auditEntry, recordAudit } from './audit.service.ts';
import { ensureBuiltinRoles, personalClientMetadata } from './bootstrap.service.ts';
import type { ClientRegistry } from './client-registry.service.ts';
import type { EmailVerificationService } from './email-verification.service.ts';
import { assertOrganizationHasRoom } from './organization-capacity.ts';
import { hashPassword } from './passwords.ts';
import { assertPasswordPolicy } from './password-policy.ts';
import { applyProfileAttributes, findActiveProfile, type ProfileAttributes, type UserProfile } from './users.service.ts';

export interface SignUp {
  email: string;
  password: string;
  username?: string;
  firstName: string;
  lastName: string;
  attributes?: ProfileAttributes;
  /** The organization to join, by slug or by id; when both are given they must name the same one. */
  organizationSlug?: string;
  organizationId?: string;
  ip?: string;
  userAgent?: string;
}

/** The organization asked for (the default one when none is named), locked, active and with room for one more user. */
async function joinableOrganization(em: MikroORM['em'], input: Pick<SignUp, 'organizationId' | 'organizationSlug'>): Promise<Organization> {
  // Rows are locked so two sign-ups cannot both take the last free place.
  const organization = input.organizationId
    ? await em.findOne(Organization, { id: input.organizationId }, { lockMode: LockMode.PESSIMISTIC_WRITE })
    : await em.findOne(Organization, { slug: input.organizationSlug ?? DEFAULT_ORGANIZATION_SLUG }, { lockMode: LockMode.PESSIMISTIC_WRITE });
  if (!organization) throw fieldError(['body', input.organizationId ? 'organization_id' : 'organization_slug'], 'names no organization', 'not_found');
  if (input.organizationId && input.organizationSlug !== undefined && input.organizationSlug !== organization.slug) {
    throw fieldError(['body', 'organization_slug'], 'names another organization than organization_id', 'conflict');
  }
  if (!organization.isActive) throw new AppError('organization.inactive', `Organization "${organization.slug}" does not accept sign-ups`);
  await assertOrganizationHasRoom(em, organization);
  return organization;
}

/** A new account starts unverified; its verification link is mailed in the sign-up's transaction. */
export async function signUp(orm: MikroORM, clients: ClientRegistry, emailVerification: EmailVerificationService, input: SignUp): Promise<{ user: UserProfile; clientId: string; clientSecret: string }> {
  const email = input.email.trim().toLowerCase();
  await assertPasswordPolicy(input.password, { email, username: input.username, firstName: input.firstName, lastName: input.lastName }, 'password');
  const passwordHash = await hashPassword(input.password);

  const created = await orm.em.fork().transactional(async (em) => {
    const organization = await joinableOrganization(em, input);
    if (await em.findOne(User, { organization, email })) throw new AppError('user.email_taken', 'An account with this email exists already');
    if (input.username && await em.findOne(User, { organization, username: input.username })) {
      throw new AppError('user.username_taken', 'This username is taken');
    }
    await ensureBuiltinRoles(em, organization);
    const user = em.create(User, {
      organization, email, username: input.username ?? null, firstName: input.firstName, lastName: input.lastName, passwordHash,
    });
    applyProfileAttributes(user, input.attributes ?? {});
    user.roles.add(await em.findOneOrFail(Role, { key: 'basic_user', organization: organization.id }));
    await em.flush();
    const client = await clients.create({
      kind: 'personal', ownerId: user.id, organizationId: organization.id,
      metadata: personalClientMetadata(`Personal client of ${email}`),
    }, em);
    recordAudit(em, auditEntry({ userId: user.id, ip: input.ip, userAgent: input.userAgent }, {
      action: 'user.register', resource: 'user', resourceId: user.id, organizationId: organization.id,
      targetId: user.id, details: { client_id: client.clientId },
    }));
    await emailVerification.sendLink(em, { id: user.id, email, organizationId: organization.id, firstName: input.firstName },
      { userId: user.id, ip: input.ip, userAgent: input.userAgent });
    await em.flush();
    return { userId: user.id, clientId: client.clientId, clientSecret: client.clientSecret! };
  });
  const user = await findActiveProfile(orm, created.userId);
  return { user: user!, clientId: created.clientId, clientSecret: created.clientSecret };
}
