// E-mail verification (API.md section 4, "E-mail verification, password reset, invitations"; issue
// 14 part 4). Registration, a user created by an admin and a change of address send a link to
// /account/verify-email?token=... (24 h), in the transaction of the change: the old links of the
// user are revoked, a new single-use token is issued (services/link-tokens.service.ts) and the mail
// is written to the outbox. Following the link sets is_verified, audited in the same transaction.
//
// The token's data holds the address it was sent to: a link for an address the account no longer
// has is refused (link.revoked), even in the instant before the change revoked it.
// With REQUIRE_VERIFIED_EMAIL=true, sign-in refuses an unverified account (services/accounts.service.ts)
// and the sign-in page offers resend(), which answers the same whether or not the address has an
// account, throttled per address and per IP.
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';

import { User } from '../db/entities/user.entity.ts';
import { queryRows } from '../platform/database.ts';
import { AppError } from '../platform/errors.ts';
import { auditEntry, recordAudit, type AuditActor } from './audit.service.ts';
import type { ClientRegistry } from './client-registry.service.ts';
import { consumeLinkToken, issueLinkToken, peekLinkToken, revokeLinkTokens, type LinkTokenRecord } from './link-tokens.service.ts';
import { enqueueMail } from './mail-delivery.ts';
import type { MailComposer, MailTemplate } from './mail-templates.ts';
import type { RequestThrottle } from './request-throttle.ts';

export const VERIFY_EMAIL_PATH = '/account/verify-email';
export const VERIFY_EMAIL_TTL_SECONDS = 24 * 60 * 60;
/** "Send the link again": 3 an hour for one address, 30 an hour from one IP (any addresses). */
export const VERIFICATION_RESEND_LIMITS = {
  perAddress: { points: 3, windowSeconds: 3600 },
  perIp: { points: 30, windowSeconds: 3600 },
} as const;
/** More accounts than this behind one address (one per organization) get no mail from one resend. */
const MAX_RESEND_ACCOUNTS = 5;

export const VERIFY_EMAIL_MAIL: MailTemplate<{ name: string; expiresIn: string }> = {
  view: 'verify-email',
  subject: (_data, { productName }) => `Confirm your e-mail address for ${productName}`,
};

/** The account a link goes to, with the address it goes to (a new one, on a change). */
export interface VerificationRecipient {
  id: string;
  email: string;
  organizationId: string;
  firstName?: string;
}

export interface VerifiedEmail {
  userId: string;
  email: string;
  organizationId: string;
}

export interface ResendRequest {
  /** The address (or, from the sign-in page, the username) typed. */
  identifier: string;
  organizationSlug?: string;
  ip: string;
  userAgent?: string;
}

export class EmailVerificationService {
  readonly #orm: MikroORM;
  readonly #mails: MailComposer;
  readonly #throttle: RequestThrottle;
  readonly #clients: Pick<ClientRegistry, 'invalidate'>;

  constructor(deps: { orm: MikroORM; mails: MailComposer; throttle: RequestThrottle; clients: Pick<ClientRegistry, 'invalidate'> }) {
    this.#orm = deps.orm;
    this.#mails = deps.mails;
    this.#throttle = deps.throttle;
    this.#clients = deps.clients;
  }

  /**
   * After a change of address has committed: personal clients are cached with their owner's
   * standing, which (with REQUIRE_VERIFIED_EMAIL) includes a verified address.
   */
  async addressChanged(): Promise<void> {
    await this.#clients.invalidate();
  }

  /**
   * Inside the caller's transaction (the user row exists or is in the unit of work): revokes the
   * user's earlier links, issues a new one, queues the mail and its audit row. The caller flushes.
   */
  async sendLink(em: EntityManager, user: VerificationRecipient, actor: AuditActor | null): Promise<void> {
    await revokeLinkTokens(em, { userId: user.id, purpose: 'verify_email' });
    const { token } = issueLinkToken(em, {
      purpose: 'verify_email', userId: user.id, organizationId: user.organizationId, data: { email: user.email }, ttlSeconds: VERIFY_EMAIL_TTL_SECONDS,
    });
    enqueueMail(em, this.#mails.compose(VERIFY_EMAIL_MAIL, {
      to: user.email,
      link: { path: VERIFY_EMAIL_PATH, query: { token } },
      data: { name: user.firstName ?? '', expiresIn: '24 hours' },
    }));
    recordAudit(em, auditEntry(actor, {
      action: 'user.verification_sent', resource: 'user', resourceId: user.id, targetId: user.id, organizationId: user.organizationId,
      details: { email: user.email },
    }));
  }

  /** For the page a GET renders: the address the link confirms, without using the link. */
  async inspect(token: unknown): Promise<{ email: string }> {
    const em = this.#orm.em.fork();
    const link = await peekLinkToken(em, token, 'verify_email');
    const user = await this.#linkedUser(em, link);
    return { email: user.email };
  }

  /** Uses the link: the account's address is verified, with its audit row, in one transaction. */
  async verify(token: unknown, actor: Pick<AuditActor, 'ip' | 'userAgent'>): Promise<VerifiedEmail> {
    const verified = await this.#orm.em.fork().transactional(async (em) => {
      const link = await consumeLinkToken(em, token, 'verify_email');
      const user = await this.#linkedUser(em, link);
      const wasVerified = user.isVerified;
      user.isVerified = true;
      recordAudit(em, auditEntry({ userId: user.id, ip: actor.ip, userAgent: actor.userAgent }, {
        action: 'user.verify_email', resource: 'user', resourceId: user.id, targetId: user.id, organizationId: user.organization.id,
        details: { email: user.email, ...(wasVerified ? { already_verified: true } : {}) },
      }));
      return { userId: user.id, email: user.email, organizationId: user.organization.id };
    });
    await this.addressChanged();
    return verified;
  }

  /**
   * "Send the link again": a new link to each active, unverified account the identifier names
   * (one per organization when no slug is given). The same outcome, nothing or a mail, is never
   * told to the caller; past the limits it throws RequestThrottled, whatever the address.
   */
  async resend(request: ResendRequest): Promise<void> {
    const identifier = request.identifier.trim().toLowerCase();
    await this.#throttle.consume(identifier, request.ip);
    await this.#orm.em.fork().transactional(async (em) => {
      const accounts = await queryRows<{ id: string; email: string; organization_id: string; first_name: string }>(em,
        `select u.id, u.email, u.organization_id, u.first_name
           from app_user u join organization o on o.id = u.organization_id
          where (lower(u.email) = ? or lower(u.username) = ?) and (?::text is null or o.slug = ?)
            and not u.is_verified and u.is_active and o.is_active
          order by u.created_at limit ?`,
        [identifier, identifier, request.organizationSlug ?? null, request.organizationSlug ?? null, MAX_RESEND_ACCOUNTS]);
      for (const account of accounts) {
        await this.sendLink(em, { id: account.id, email: account.email, organizationId: account.organization_id, firstName: account.first_name },
          { ip: request.ip, userAgent: request.userAgent });
      }
    });
  }

  /** The link's account, as long as it still has the address the link was sent to. */
  async #linkedUser(em: EntityManager, link: LinkTokenRecord): Promise<User> {
    const user = link.userId ? await em.findOne(User, { id: link.userId }) : null;
    // A deleted user takes its links along (on delete cascade): only a corrupt row gets here.
    if (!user) throw new AppError('link.invalid', 'This link is not valid.');
    if (user.email !== link.data.email) throw new AppError('link.revoked', 'This link was sent to an address the account no longer has.');
    return user;
  }
}
