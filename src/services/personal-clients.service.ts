// A user's own API clients (API.md "me"): `client_credentials` only, their tokens act as their
// owner, so they may carry no scope beyond what the owner's roles allow today.
import type { MikroORM } from '@mikro-orm/postgresql';

import { AppError, assertThat, fieldError } from '../platform/errors.ts';
import { auditEntry, recordAudit } from './audit.service.ts';
import { personalClientMetadata } from './bootstrap.service.ts';
import type { ClientRecord, ClientRegistry } from './client-registry.service.ts';
import type { PermissionResolver } from './rbac.service.ts';
import { actingUser } from './self-service.service.ts';
import type { Actor } from './tenancy.ts';
import { findActiveProfile } from './users.service.ts';

/** Keeps one user from filling the client registry. */
export const MAX_PERSONAL_CLIENTS = 25;

export interface PersonalClientsDependencies {
  orm: MikroORM;
  clientRegistry: ClientRegistry;
  permissionResolver: Pick<PermissionResolver, 'apiScopesOf'>;
}

function personalClientAudit(actor: Actor, action: string, clientId: string) {
  return auditEntry(actor, { action, resource: 'client', resourceId: clientId, organizationId: actor.organizationId, details: { kind: 'personal' } });
}

/** The actor's own personal client, or 404: another user's client is as invisible as a missing one. */
async function ownedClient(deps: PersonalClientsDependencies, actor: Actor, clientId: string): Promise<ClientRecord> {
  const record = await deps.clientRegistry.find(clientId);
  assertThat(record && record.kind === 'personal' && record.owner?.id === actingUser(actor), 'resource.not_found', 'No such personal client');
  return record;
}

/** Creates a personal client with the scopes asked for (all the owner's roles allow, by default); its secret is returned once. */
export async function createPersonalClient(
  deps: PersonalClientsDependencies, actor: Actor, input: { client_name: string; scope?: string },
): Promise<{ clientId: string; clientSecret: string; scope: string }> {
  const userId = actingUser(actor);
  const profile = await findActiveProfile(deps.orm, userId);
  assertThat(profile, 'resource.not_found', 'The user of this token no longer exists or is disabled');
  const allowed = [...await deps.permissionResolver.apiScopesOf(profile.organization.id, profile.roles)];
  const scope = input.scope ? input.scope.split(/\s+/) : allowed;
  const beyond = scope.filter((value) => !allowed.includes(value));
  if (beyond.length > 0) throw fieldError(['body', 'scope'], `includes scopes your roles do not allow: ${beyond.join(' ')}`, 'invalid_scope');
  const { count } = await deps.clientRegistry.listOwned(userId, { limit: 1, offset: 0 });
  if (count >= MAX_PERSONAL_CLIENTS) throw new AppError('request.conflict', `You have the maximum of ${MAX_PERSONAL_CLIENTS} personal clients`);
  const created = await deps.orm.em.fork().transactional(async (tx) => {
    const client = await deps.clientRegistry.create({
      kind: 'personal', ownerId: userId, organizationId: profile.organization.id,
      metadata: { ...personalClientMetadata(input.client_name), scope: scope.join(' ') },
    }, tx);
    recordAudit(tx, personalClientAudit(actor, 'client.create', client.clientId));
    return client;
  });
  return { clientId: created.clientId, clientSecret: created.clientSecret!, scope: scope.join(' ') };
}

export async function removePersonalClient(deps: PersonalClientsDependencies, actor: Actor, clientId: string): Promise<void> {
  await ownedClient(deps, actor, clientId);
  await deps.clientRegistry.remove(clientId, personalClientAudit(actor, 'client.delete', clientId));
}

export async function rotatePersonalClientSecret(deps: PersonalClientsDependencies, actor: Actor, clientId: string): Promise<string> {
  await ownedClient(deps, actor, clientId);
  return deps.clientRegistry.rotateSecret(clientId, personalClientAudit(actor, 'client.rotate_secret', clientId));
}
