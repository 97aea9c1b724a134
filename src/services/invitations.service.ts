// Invitations to an organization (API.md section 4, "E-mail verification, password reset,
// invitations"; issue 14 part 6). An admin invites an address with a role; the mail links to
// /account/accept-invitation?token=... (7 days), where the invitee chooses a name and a password
// and the account is made in that organization with that role, its address verified (the mail
// proved it).
//
// An invitation is a link token of purpose 'invitation' (services/link-tokens.service.ts), with no
// user yet: organization_id is the organization, data holds the address, the role's id and who
// invited. Its id is the invitation's id in the API. Pending means neither consumed (accepted) nor
// revoked (replaced or withdrawn) nor expired; one address has at most one pending invitation per
// organization (a partial unique index, migrations/Migration20261202300000Invitations.ts).
//
// The rules, each the same as where users are made today:
// - who: org admins for their own organization (another one is 404), super admins for any
//   (users:write; the list needs users:read);
// - which role: one the inviter may give (RolesService.assertMayAssign, as POST /users and
//   /promote: nobody gives a role holding a permission they lack, only a super admin makes a
//   super admin), checked at invitation time;
// - max_users: checked when the invitation is accepted, under the organization's row lock, as
//   every path that adds a user does (services/organization-capacity.ts); a full organization
//   refuses the accept and the link stays unused.
//
// A user belongs to one organization, and one address may have accounts in several (sign-in asks
// for the organization where it repeats). So accepting always makes a new account in the inviting
// organization; an account of the same address elsewhere is left as it is. An address that already
// has an account in the inviting organization cannot be invited (409), and if it got one between
// the invitation and the accept, the accept is refused the same way.
import { LockMode, type EntityManager, type MikroORM } from '@mikro-orm/postgresql';

import { Organization } from '../db/entities/organization.entity.ts';
import { Role } from '../db/entities/role.entity.ts';
import { User } from '../db/entities/user.entity.ts';
import { executeStatement, queryOne, queryRows } from '../platform/database.ts';
import { AppError, fieldError } from '../platform/errors.ts';
import type { ReadReplicas } from '../platform/read-replicas.ts';
import { auditEntry, recordAudit, type AuditActor } from './audit.service.ts';
import { consumeLinkToken, hashLinkToken, issueLinkToken, peekLinkToken, type LinkTokenRecord } from './link-tokens.service.ts';
import { enqueueMail } from './mail-delivery.ts';
import type { MailComposer, MailTemplate } from './mail-templates.ts';
import { assertOrganizationHasRoom } from './organization-capacity.ts';
import { hashPassword } from './passwords.ts';
import { assertPasswordPolicy, PASSWORD_MAX_LENGTH } from './password-policy.ts';
import type { RolesService } from './roles.service.ts';
import { assertVisible, type Actor } from './tenancy.ts';

export const ACCEPT_INVITATION_PATH = '/account/accept-invitation';
export const INVITATION_TTL_SECONDS = 7 * 24 * 60 * 60;
const NAME_MAX_LENGTH = 100;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const INVITATION_MAIL: MailTemplate<{ organizationName: string; roleName: string; inviterName: string; expiresIn: string }> = {
  view: 'invitation',
  subject: (data, { productName }) => `You are invited to join ${data.organizationName} on ${productName}`,
};

/** What an invitation's link token keeps in its data (never a secret). */
interface InvitationData {
  email: string;
  role_id: string;
  invited_by: string | null;
  /** Set when an admin withdrew it, so the link can say so rather than "replaced". */
  withdrawn?: true;
}

export interface NewInvitation {
  email: string;
  /** The role's key, its name (any case) or its id, as the users API names roles. */
  role: string;
}

export interface InvitationView {
  id: string;
  organization_id: string;
  email: string;
  role: { id: string; key: string; name: string } | null;
  invited_by: string | null;
  created_at: string;
  expires_at: string;
}

/** What the accept page shows before anything is used. */
export interface InvitationDetails {
  email: string;
  organizationName: string;
  organizationSlug: string;
  roleName: string;
  expiresAt: Date;
}

export interface Acceptance {
  firstName: string;
  lastName: string;
  password: string;
}

export interface AcceptedInvitation {
  userId: string;
  email: string;
  organizationSlug: string;
}

interface InvitationRow {
  id: string;
  organization_id: string;
  email: string;
  invited_by: string | null;
  created_at: Date;
  expires_at: Date;
  role_id: string | null;
  role_key: string | null;
  role_name: string | null;
}

const PENDING = `t.purpose = 'invitation' and t.consumed_at is null and t.revoked_at is null and t.expires_at > now()`;

function viewOf(row: InvitationRow): InvitationView {
  return {
    id: row.id,
    organization_id: row.organization_id,
    email: row.email,
    role: row.role_id ? { id: row.role_id, key: row.role_key!, name: row.role_name! } : null,
    invited_by: row.invited_by,
    created_at: new Date(row.created_at).toISOString(),
    expires_at: new Date(row.expires_at).toISOString(),
  };
}

const ROW_COLUMNS = `t.id, t.organization_id, t.data ->> 'email' as email, t.data ->> 'invited_by' as invited_by, t.created_at, t.expires_at,
  r.id as role_id, r.key as role_key, r.name as role_name`;
const ROW_SOURCE = `link_token t left join role r on r.id::text = t.data ->> 'role_id'`;

/** A name typed on the accept page: trimmed, 1 to 100 characters, no control characters. */
function personName(value: string, field: 'first_name' | 'last_name'): string {
  const name = value.trim();
  if (name === '') throw fieldError(['form', field], 'is required', 'required');
  if (name.length > NAME_MAX_LENGTH) throw fieldError(['form', field], `must be at most ${NAME_MAX_LENGTH} characters`, 'too_big');
  if (/\p{Cc}/u.test(name) || !name.isWellFormed()) throw fieldError(['form', field], 'must not contain control characters', 'invalid_characters');
  return name;
}

export class InvitationsService {
  readonly #orm: MikroORM;
  readonly #reads: ReadReplicas;
  readonly #mails: MailComposer;
  readonly #roles: Pick<RolesService, 'assertMayAssign'>;

  constructor(deps: { orm: MikroORM; reads: ReadReplicas; mails: MailComposer; roles: Pick<RolesService, 'assertMayAssign'> }) {
    this.#orm = deps.orm;
    this.#reads = deps.reads;
    this.#mails = deps.mails;
    this.#roles = deps.roles;
  }

  /**
   * Invites an address: the earlier pending invitation of the address (if any) is revoked, a new
   * link is issued, the mail queued and the audit row written, all in one transaction.
   */
  async create(actor: Actor, organizationId: string, input: NewInvitation): Promise<InvitationView> {
    const email = input.email.trim().toLowerCase();
    const id = await this.#orm.em.fork().transactional(async (em) => {
      // The row lock of user creation: invitations of one organization are made one at a time,
      // so two invitations of one address cannot both be pending.
      const organization = await InvitationsService.#organization(em, actor, organizationId, { lock: true });
      if (!organization.isActive) throw new AppError('organization.inactive', `Organization "${organization.slug}" is disabled`);
      const role = await InvitationsService.#roleOf(em, organization.id, input.role);
      await this.#roles.assertMayAssign(actor, { key: role.key, name: role.name, permissions: role.permissions.getItems().map((permission) => permission.name) });
      if (await em.findOne(User, { organization, email })) {
        throw new AppError('invitation.already_member', `${email} has an account in organization "${organization.slug}" already`);
      }
      const replaced = await executeStatement(em,
        `update link_token set revoked_at = now()
          where purpose = 'invitation' and organization_id = ? and data ->> 'email' = ? and consumed_at is null and revoked_at is null`,
        [organization.id, email]);
      const data: InvitationData = { email, role_id: role.id, invited_by: actor.userId ?? null };
      const issued = issueLinkToken(em, { purpose: 'invitation', organizationId: organization.id, data: { ...data }, ttlSeconds: INVITATION_TTL_SECONDS });
      const inviter = actor.userId ? await em.findOne(User, { id: actor.userId }) : null;
      enqueueMail(em, this.#mails.compose(INVITATION_MAIL, {
        to: email,
        link: { path: ACCEPT_INVITATION_PATH, query: { token: issued.token } },
        data: {
          organizationName: organization.name, roleName: role.name, expiresIn: '7 days',
          inviterName: inviter ? `${inviter.firstName} ${inviter.lastName}`.trim() || inviter.email : '',
        },
      }));
      recordAudit(em, auditEntry(actor, {
        action: 'invitation.create', resource: 'invitation', resourceId: issued.id, organizationId: organization.id,
        details: { email, role: role.key, ...(replaced > 0 ? { replaced } : {}) },
      }));
      return issued.id;
    });
    const row = await queryOne<InvitationRow>(this.#orm.em, `select ${ROW_COLUMNS} from ${ROW_SOURCE} where t.id = ?`, [id]);
    return viewOf(row!);
  }

  /** The pending invitations of an organization, newest first; never their tokens. */
  async list(actor: Actor, organizationId: string, page: { limit: number; offset: number }): Promise<{ count: number; results: InvitationView[] }> {
    await InvitationsService.#organization(this.#orm.em.fork(), actor, organizationId, { lock: false });
    const reads = await this.#reads.for(actor);
    const [rows, total] = await Promise.all([
      queryRows<InvitationRow>(reads, `select ${ROW_COLUMNS} from ${ROW_SOURCE} where t.organization_id = ? and ${PENDING}
        order by t.created_at desc, t.id limit ? offset ?`, [organizationId, page.limit, page.offset]),
      queryOne<{ count: number }>(reads, `select count(*)::int as count from link_token t where t.organization_id = ? and ${PENDING}`, [organizationId]),
    ]);
    return { count: total?.count ?? 0, results: rows.map(viewOf) };
  }

  /** Withdraws a pending invitation: its link then says so. 404 when it is not pending (accepted, withdrawn, replaced or expired). */
  async withdraw(actor: Actor, organizationId: string, invitationId: string): Promise<void> {
    await this.#orm.em.fork().transactional(async (em) => {
      await InvitationsService.#organization(em, actor, organizationId, { lock: false });
      const row = await queryOne<{ email: string }>(em,
        `update link_token t set revoked_at = now(), data = t.data || '{"withdrawn": true}'::jsonb
          where t.id = ? and t.organization_id = ? and ${PENDING}
          returning t.data ->> 'email' as email`, [invitationId, organizationId]);
      if (!row) throw new AppError('resource.not_found', 'No such pending invitation');
      recordAudit(em, auditEntry(actor, {
        action: 'invitation.withdraw', resource: 'invitation', resourceId: invitationId, organizationId, details: { email: row.email },
      }));
    });
  }

  /** For the page a GET renders: what the invitation is, without using it. */
  async inspect(token: unknown): Promise<InvitationDetails> {
    const em = this.#orm.em.fork();
    const link = await InvitationsService.#explained(em, token, () => peekLinkToken(em, token, 'invitation'));
    const found = await queryOne<{ email: string; organization_name: string; organization_slug: string; role_name: string | null; role_active: boolean | null }>(em,
      `select t.data ->> 'email' as email, o.name as organization_name, o.slug as organization_slug, r.name as role_name, r.is_active as role_active
         from ${ROW_SOURCE} join organization o on o.id = t.organization_id where t.id = ?`, [link.id]);
    if (!found) throw new AppError('link.invalid', 'This link is not valid.');
    if (!found.role_name || !found.role_active) throw InvitationsService.#roleGone();
    return {
      email: found.email, organizationName: found.organization_name, organizationSlug: found.organization_slug, roleName: found.role_name,
      expiresAt: link.expiresAt,
    };
  }

  /**
   * Uses the invitation: the account is made in the organization with the role, its address
   * verified, under the organization's row lock (max_users), and the link consumed with the audit
   * row, in one transaction. Any refusal leaves the link unused.
   */
  async accept(token: unknown, acceptance: Acceptance, actor: Pick<AuditActor, 'ip' | 'userAgent'>): Promise<AcceptedInvitation> {
    const firstName = personName(acceptance.firstName, 'first_name');
    const lastName = personName(acceptance.lastName, 'last_name');
    const peekEm = this.#orm.em.fork();
    const peeked = await InvitationsService.#explained(peekEm, token, () => peekLinkToken(peekEm, token, 'invitation'));
    const email = String(peeked.data.email);
    if (acceptance.password.length > PASSWORD_MAX_LENGTH || acceptance.password.includes('\u0000')) {
      throw fieldError(['form', 'password'], `must be at most ${PASSWORD_MAX_LENGTH} characters, without NUL characters`, 'invalid');
    }
    await assertPasswordPolicy(acceptance.password, { email, firstName, lastName }, 'password');
    const passwordHash = await hashPassword(acceptance.password);

    return this.#orm.em.fork().transactional(async (em) => {
      // Locked before the link is used, as user creation locks it: of two accepts at the last
      // place, the second waits here and then finds the organization full.
      const organization = await em.findOne(Organization, { id: peeked.organizationId! }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!organization) throw new AppError('link.invalid', 'This link is not valid.');
      const link = await InvitationsService.#explained(em, token, () => consumeLinkToken(em, token, 'invitation'));
      const data = link.data as unknown as InvitationData;
      if (!organization.isActive) throw new AppError('organization.inactive', `Organization "${organization.name}" is disabled`);
      await assertOrganizationHasRoom(em, organization);
      const role = await em.findOne(Role, { id: data.role_id, isActive: true, $or: [{ organization: organization.id }, { organization: null }] });
      if (!role) throw InvitationsService.#roleGone();
      if (await em.findOne(User, { organization, email: data.email })) {
        throw new AppError('invitation.already_member', `${data.email} has an account in "${organization.name}" already`);
      }
      const user = em.create(User, { organization, email: data.email, firstName, lastName, passwordHash, isVerified: true });
      user.roles.add(role);
      await em.flush();
      recordAudit(em, auditEntry({ userId: user.id, ip: actor.ip, userAgent: actor.userAgent }, {
        action: 'invitation.accept', resource: 'invitation', resourceId: link.id, targetId: user.id, organizationId: organization.id,
        details: { email: data.email, role: role.key, invited_by: data.invited_by },
      }));
      return { userId: user.id, email: data.email, organizationSlug: organization.slug };
    });
  }

  /** The organization, when the actor may see it (404 otherwise, another organization included). */
  static async #organization(em: EntityManager, actor: Actor, organizationId: string, options: { lock: boolean }): Promise<Organization> {
    assertVisible(actor, organizationId, 'organization');
    const organization = await em.findOne(Organization, { id: organizationId }, options.lock ? { lockMode: LockMode.PESSIMISTIC_WRITE } : {});
    if (!organization) throw new AppError('resource.not_found', 'No such organization');
    return organization;
  }

  /** An active role of the organization (or the global super_admin) by id, key or name, as the users API names roles. */
  static async #roleOf(em: EntityManager, organizationId: string, written: string): Promise<Role> {
    const found = await queryOne<{ id: string }>(em,
      `select id from role where is_active and (organization_id = ? or organization_id is null)
          and (${UUID.test(written) ? 'id = ?::uuid' : 'key = lower(?) or lower(name) = lower(?)'}) limit 1`,
      UUID.test(written) ? [organizationId, written] : [organizationId, written, written]);
    const role = found && await em.findOne(Role, { id: found.id }, { populate: ['permissions'] });
    if (!role) throw fieldError(['body', 'role'], 'names no role of the organization', 'not_found');
    return role;
  }

  static #roleGone(): AppError {
    return new AppError('request.conflict', 'The role this invitation gives no longer exists or was switched off. Ask the organization for a new invitation.');
  }

  /** A revoked invitation link that an admin withdrew says so (invitation.withdrawn), rather than "replaced". */
  static async #explained(em: EntityManager, token: unknown, use: () => Promise<LinkTokenRecord>): Promise<LinkTokenRecord> {
    try {
      return await use();
    } catch (error) {
      if (error instanceof AppError && error.code === 'link.revoked' && typeof token === 'string') {
        const row = await queryOne<{ withdrawn: boolean }>(em,
          `select coalesce((data ->> 'withdrawn')::boolean, false) as withdrawn from link_token where token_hash = ?`, [hashLinkToken(token)]);
        if (row?.withdrawn) throw new AppError('invitation.withdrawn', 'This invitation was withdrawn by the organization.');
      }
      throw error;
    }
  }
}
