// Signing out at /api/v1/auth/logout (API.md "Auth"): the grant behind the presented access token
// ends, and so does the grant of a refresh token the same user and client present with it.
import type { MikroORM } from '@mikro-orm/postgresql';

import { auditEntry, recordAudit } from './audit.service.ts';
import type { RevocationService } from './revocation.service.ts';
import type { GrantRevoker } from './self-service.service.ts';
import type { Actor } from './tenancy.ts';

/** What signing out needs of node-oidc-provider's token store (wired in the route). */
export interface ProviderTokenStore {
  /** A live refresh token's grant, account and client; undefined when unknown or expired. */
  findRefreshToken(value: string): Promise<{ grantId?: string; accountId?: string; clientId?: string } | undefined>;
  /** Drops a stored client-credentials token by its id. */
  destroyClientCredentials(id: string): Promise<void>;
}

export interface SignOutDependencies {
  orm: MikroORM;
  revocation: Pick<RevocationService, 'revokeTokenId'>;
  revokeGrant: GrantRevoker;
  tokens: ProviderTokenStore;
}

/** The presented access token, as verified. */
export interface PresentedSession {
  grantId?: string;
  /** The token's id; an opaque token's id is its value. */
  jti?: string;
}

export async function signOut(deps: SignOutDependencies, actor: Actor, session: PresentedSession, refreshToken?: string): Promise<void> {
  const grants = new Set<string>();
  if (session.grantId) grants.add(session.grantId);
  if (refreshToken) {
    const found = await deps.tokens.findRefreshToken(refreshToken);
    // Only a refresh token of the same user and client can be ended this way.
    if (found?.grantId && found.accountId === actor.userId && found.clientId === actor.clientId) grants.add(found.grantId);
  }
  for (const grantId of grants) await deps.revokeGrant(grantId);
  if (grants.size === 0 && session.jti) {
    // A machine token has no grant: end the token itself.
    await deps.revocation.revokeTokenId(session.jti);
    await deps.tokens.destroyClientCredentials(session.jti);
  }
  const em = deps.orm.em.fork();
  recordAudit(em, auditEntry(actor, {
    action: 'auth.logout', resource: 'session', targetId: actor.userId, organizationId: actor.organizationId, details: { grants: grants.size },
  }));
  await em.flush();
}
