// Forgotten password (API.md section 4, "E-mail verification, password reset, invitations"; issue
// 14 part 5). Asking for a reset mails a link to /account/reset-password?token=... (1 h) to each
// active account with the address, in one transaction with its audit row; following the link sets
// a new password under the policy, consumes the link and withdraws the user's other reset links in
// one transaction (audited), and then ends every token and grant of the user on every process.
//
// No enumeration: a request answers the same, in the same time, whatever the address names (an
// active account, a disabled one, none). The work differs (an account means a link, a mail and an
// audit row written), so every request is answered no sooner than RESET_REQUEST_FLOOR_MS after it
// started; the work is far shorter than that, so the floor is what the caller measures. Requests
// are throttled per address and per IP for any address alike (services/request-throttle.ts).
//
// The link's token carries the address it was sent to: a link for an address the account no longer
// has is refused (link.revoked), as is a link of an account disabled since. Following a link also
// marks the address verified: whoever follows it has just read mail sent to that address.
import { setTimeout as sleep } from 'node:timers/promises';

import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';

import { executeStatement, queryOne, queryRows } from '../platform/database.ts';
import { AppError } from '../platform/errors.ts';
import { auditEntry, recordAudit, type AuditActor } from './audit.service.ts';
import type { ClientRegistry } from './client-registry.service.ts';
import { consumeLinkToken, issueLinkToken, peekLinkToken, revokeLinkTokens, type LinkTokenRecord } from './link-tokens.service.ts';
import { enqueueMail } from './mail-delivery.ts';
import type { MailComposer, MailTemplate } from './mail-templates.ts';
import { hashPassword } from './passwords.ts';
import { assertPasswordPolicy } from './password-policy.ts';
import type { RequestThrottle } from './request-throttle.ts';
import type { RevocationService } from './revocation.service.ts';
import type { GrantRevoker } from './self-service.service.ts';

export const FORGOT_PASSWORD_PATH = '/account/forgot-password';
export const RESET_PASSWORD_PATH = '/account/reset-password';
export const RESET_PASSWORD_TTL_SECONDS = 60 * 60;
/** Reset requests: 5 an hour for one address, 30 an hour from one IP (any addresses). */
export const PASSWORD_RESET_LIMITS = {
  perAddress: { points: 5, windowSeconds: 3600 },
  perIp: { points: 30, windowSeconds: 3600 },
} as const;
/** The least time a reset request takes to answer, whatever it finds (see the header). */
export const RESET_REQUEST_FLOOR_MS = 300;
/** More accounts than this behind one address (one per organization) get no mail from one request. */
const MAX_RESET_ACCOUNTS = 5;

export const RESET_PASSWORD_MAIL: MailTemplate<{ name: string; organizationName: string; expiresIn: string }> = {
  view: 'reset-password',
  subject: (_data, { productName }) => `Reset your ${productName} password`,
};

export interface ResetRequest {
  email: string;
  /** Where the address has accounts in several organizations: only this one's. */
  organizationSlug?: string;
  ip: string;
  userAgent?: string;
}

/** The account a reset link is for, as its page shows it. */
export interface ResetTarget {
  email: string;
  organizationName: string;
}

interface AccountRow {
  id: string;
  email: string;
  username: string | null;
  first_name: string;
  last_name: string;
  organization_id: string;
  organization_name: string;
  is_verified: boolean;
  active: boolean;
}

export interface PasswordResetDependencies {
  orm: MikroORM;
  mails: MailComposer;
  throttle: RequestThrottle;
  revocation: Pick<RevocationService, 'revokeUserTokens' | 'endUserSessions'>;
  revokeGrant: GrantRevoker;
  clients: Pick<ClientRegistry, 'invalidate'>;
}

export class PasswordResetService {
  readonly #deps: PasswordResetDependencies;

  constructor(deps: PasswordResetDependencies) {
    this.#deps = deps;
  }

  /**
   * "Forgot your password?": a link to each active account with the address (one per organization
   * when no slug is given). Nothing tells the caller what was found; past the limits it throws
   * RequestThrottled, whatever the address.
   */
  async request(request: ResetRequest): Promise<void> {
    const email = request.email.trim().toLowerCase();
    await this.#deps.throttle.consume(email, request.ip);
    const started = performance.now();
    try {
      await this.#deps.orm.em.fork().transactional(async (em) => {
        const accounts = await queryRows<AccountRow>(em,
          `select u.id, u.email, u.username, u.first_name, u.last_name, u.organization_id, o.name as organization_name,
                  u.is_verified, u.is_active and o.is_active as active
             from app_user u join organization o on o.id = u.organization_id
            where lower(u.email) = ? and (?::text is null or o.slug = ?)
            order by u.created_at limit ?`,
          [email, request.organizationSlug ?? null, request.organizationSlug ?? null, MAX_RESET_ACCOUNTS]);
        for (const account of accounts) await this.#sendLink(em, account, { ip: request.ip, userAgent: request.userAgent });
      });
    } finally {
      const left = RESET_REQUEST_FLOOR_MS - (performance.now() - started);
      if (left > 0) await sleep(left);
    }
  }

  /** For the page a GET renders: whose password the link resets, without using the link. */
  async inspect(token: unknown): Promise<ResetTarget> {
    const em = this.#deps.orm.em.fork();
    const account = await this.#linkedAccount(em, await peekLinkToken(em, token, 'reset_password'));
    return { email: account.email, organizationName: account.organization_name };
  }

  /**
   * Uses the link: checks the new password against the policy first (a refused password uses
   * nothing up: 422 request.validation_failed on `new_password`), then in one transaction consumes
   * the link, sets the password, withdraws the user's other reset links and writes the audit row.
   * Once that has committed, every token and grant of the user ends on every process.
   */
  async reset(token: unknown, newPassword: string, actor: Pick<AuditActor, 'ip' | 'userAgent'>): Promise<{ userId: string }> {
    const em = this.#deps.orm.em.fork();
    const account = await this.#linkedAccount(em, await peekLinkToken(em, token, 'reset_password'));
    await assertPasswordPolicy(newPassword, {
      email: account.email, username: account.username, firstName: account.first_name, lastName: account.last_name,
    }, 'new_password');
    const passwordHash = await hashPassword(newPassword);
    const userId = await em.transactional(async (tx) => {
      const link = await consumeLinkToken(tx, token, 'reset_password');
      // Read again, under the row's lock: the account may have changed since the peek.
      const current = await this.#linkedAccount(tx, link, { lock: true });
      await executeStatement(tx, 'update app_user set password_hash = ?, is_verified = true, updated_at = now() where id = ?', [passwordHash, current.id]);
      await revokeLinkTokens(tx, { userId: current.id, purpose: 'reset_password' });
      recordAudit(tx, auditEntry({ userId: current.id, ip: actor.ip, userAgent: actor.userAgent }, {
        action: 'auth.password_reset', resource: 'user', resourceId: current.id, targetId: current.id, organizationId: current.organization_id,
        details: { via: 'link', ...(current.is_verified ? {} : { email_verified: true }) },
      }));
      return current.id;
    });
    await this.#endEverything(userId);
    return { userId };
  }

  /** Inside the request's transaction: the link, its mail and its audit row for one account (none for a disabled one). */
  async #sendLink(em: EntityManager, account: AccountRow, actor: AuditActor): Promise<void> {
    if (!account.active) {
      recordAudit(em, auditEntry(actor, {
        action: 'auth.password_reset_requested', resource: 'user', resourceId: account.id, targetId: account.id,
        organizationId: account.organization_id, status: 'failure', details: { reason: 'account_disabled' },
      }));
      return;
    }
    await revokeLinkTokens(em, { userId: account.id, purpose: 'reset_password' });
    const { token } = issueLinkToken(em, {
      purpose: 'reset_password', userId: account.id, organizationId: account.organization_id,
      data: { email: account.email }, ttlSeconds: RESET_PASSWORD_TTL_SECONDS,
    });
    enqueueMail(em, this.#deps.mails.compose(RESET_PASSWORD_MAIL, {
      to: account.email,
      link: { path: RESET_PASSWORD_PATH, query: { token } },
      data: { name: account.first_name, organizationName: account.organization_name, expiresIn: '1 hour' },
    }));
    recordAudit(em, auditEntry(actor, {
      action: 'auth.password_reset_requested', resource: 'user', resourceId: account.id, targetId: account.id,
      organizationId: account.organization_id, details: { email: account.email },
    }));
  }

  /** The link's account, as long as it is active and still has the address the link was sent to. */
  async #linkedAccount(em: EntityManager, link: LinkTokenRecord, options: { lock?: boolean } = {}): Promise<AccountRow> {
    const account = link.userId ? await queryOne<AccountRow>(em,
      `select u.id, u.email, u.username, u.first_name, u.last_name, u.organization_id, o.name as organization_name,
              u.is_verified, u.is_active and o.is_active as active
         from app_user u join organization o on o.id = u.organization_id
        where u.id = ?${options.lock ? ' for update of u' : ''}`, [link.userId]) : undefined;
    // A deleted user takes its links along (on delete cascade): only a corrupt row gets here.
    if (!account) throw new AppError('link.invalid', 'This link is not valid.');
    if (!account.active) throw new AppError('link.revoked', 'The account this link was sent for is not active.');
    if (account.email !== link.data.email) throw new AppError('link.revoked', 'This link was sent to an address the account no longer has.');
    return account;
  }

  /**
   * After the reset committed: tokens refused at their next call, grants and their refresh tokens
   * gone, sign-in sessions at the provider asking for the password again, personal clients re-read.
   */
  async #endEverything(userId: string): Promise<void> {
    await this.#deps.revocation.revokeUserTokens(userId);
    await this.#deps.revocation.endUserSessions(userId);
    await this.#deps.clients.invalidate();
    const grants = await queryRows<{ id: string }>(this.#deps.orm.em, `select id from oidc_artifact where model = 'Grant' and account_id = ?`, [userId]);
    for (const grant of grants) await this.#deps.revokeGrant(grant.id);
  }
}
