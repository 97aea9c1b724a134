// The consents a user has given (API.md "Auth": GET and DELETE /api/v1/me/consents, ASVS 10.7.3).
// A consent is what node-oidc-provider calls a Grant: the scopes an account allowed a client,
// kept in `oidc_artifact`. First-party clients never ask for consent, so they are not listed.
import type { MikroORM } from '@mikro-orm/postgresql';

import { queryRows } from '../platform/database.ts';
import { auditEntry, recordAudit } from './audit.service.ts';
import { actingUser, type GrantRevoker } from './self-service.service.ts';
import type { Actor } from './tenancy.ts';

/** The part of a provider Grant payload that says what was allowed and what was refused. */
export interface GrantPayload {
  openid?: { scope?: string; claims?: string[] };
  resources?: Record<string, string>;
  rejected?: { openid?: { scope?: string }; resources?: Record<string, string> };
}

export interface Consent {
  clientId: string;
  clientName: string;
  scopes: string[];
  createdAt: Date;
  updatedAt: Date;
}

interface GrantRow {
  id: string;
  client_id: string;
  client_name: string | null;
  payload: GrantPayload;
  created_at: Date;
  decided_at: Date | null;
}

const words = (value: string | undefined) => (value ?? '').split(' ').filter(Boolean);

/** Scopes a grant allows: granted minus refused, OIDC and every resource's together. */
export function grantedScopes(payload: GrantPayload): string[] {
  const refusedOidc = new Set(words(payload.rejected?.openid?.scope));
  // The provider never lets `openid` itself be refused (lib/models/grant.js getOIDCScope).
  const scopes = words(payload.openid?.scope).filter((scope) => scope === 'openid' || !refusedOidc.has(scope));
  for (const [resource, granted] of Object.entries(payload.resources ?? {})) {
    const refused = new Set(words(payload.rejected?.resources?.[resource]));
    scopes.push(...words(granted).filter((scope) => !refused.has(scope)));
  }
  return [...new Set(scopes)].sort();
}

export class ConsentsService {
  readonly #orm: MikroORM;
  readonly #revokeGrant: GrantRevoker;

  constructor(orm: MikroORM, revokeGrant: GrantRevoker) {
    this.#orm = orm;
    this.#revokeGrant = revokeGrant;
  }

  /** Live grants of third-party clients for a user, one entry per client, oldest consent first. */
  async list(userId: string): Promise<Consent[]> {
    // A grant row keeps its creation time only; the audit trail has the latest consent decision,
    // which is when a client last got something new.
    const rows = await queryRows<GrantRow>(
      this.#orm.em,
      `select g.id, g.client_id, c.metadata->>'client_name' as client_name, g.payload, g.created_at,
              (select max(a.occurred_at) from audit_log a
                where a.actor_id = ?::uuid and a.action = 'consent.grant' and a.resource_id = g.client_id) as decided_at
         from oidc_artifact g
         join oauth_client c on c.client_id = g.client_id
        where g.model = 'Grant' and g.account_id = ?
          and (g.expires_at is null or g.expires_at > now())
          and coalesce((c.metadata->>'first_party')::boolean, false) = false
        order by g.created_at, g.id`,
      [userId, userId],
    );
    const byClient = new Map<string, Consent>();
    for (const row of rows) {
      const scopes = grantedScopes(row.payload);
      if (scopes.length === 0) continue;
      const createdAt = new Date(row.created_at);
      const decidedAt = row.decided_at ? new Date(row.decided_at) : createdAt;
      const updatedAt = decidedAt > createdAt ? decidedAt : createdAt;
      const consent = byClient.get(row.client_id);
      if (!consent) {
        byClient.set(row.client_id, { clientId: row.client_id, clientName: row.client_name ?? row.client_id, scopes, createdAt, updatedAt });
        continue;
      }
      consent.scopes = [...new Set([...consent.scopes, ...scopes])].sort();
      if (updatedAt > consent.updatedAt) consent.updatedAt = updatedAt;
    }
    return [...byClient.values()];
  }

  /**
   * Withdraws every grant the user gave the client; their tokens stop at the next call on every
   * process. Answers false when the user never authorized that client.
   */
  async withdraw(actor: Actor, clientId: string): Promise<boolean> {
    const userId = actingUser(actor);
    const grants = await queryRows<{ id: string }>(
      this.#orm.em,
      `select g.id from oidc_artifact g join oauth_client c on c.client_id = g.client_id
        where g.model = 'Grant' and g.account_id = ? and g.client_id = ?
          and coalesce((c.metadata->>'first_party')::boolean, false) = false`,
      [userId, clientId],
    );
    if (grants.length === 0) return false;
    await this.#orm.em.fork().transactional(async (tx) => {
      // The revoker deletes the rows through the global entity manager, which joins this
      // transaction (MikroORM's TransactionContext), so the audit row commits with the deletion.
      for (const grant of grants) await this.#revokeGrant(grant.id);
      recordAudit(tx, auditEntry(actor, {
        action: 'consent.revoke', resource: 'client', resourceId: clientId, targetId: userId, organizationId: actor.organizationId,
        details: { grants: grants.length },
      }));
    });
    return true;
  }
}
