// The organization boundary (API.md "Organizations, users, RBAC"): everyone but a super admin
// acts inside their own organization, and anything outside it is as invisible as a missing row.
import type { Actor } from '../platform/actor.ts';
import { AppError } from '../platform/errors.ts';
import { SUPER_ADMIN } from './rbac.service.ts';

// Services import the Actor from here, beside the rules that read it.
export type { Actor };

export function isSuperAdmin(actor: Pick<Actor, 'roles'>): boolean {
  return actor.roles.includes(SUPER_ADMIN);
}

/**
 * The actor's own organization; a token of none (an application's machine token) is refused with
 * 403 auth.forbidden, the same answer everywhere: it is authenticated but may not act in one.
 */
export function ownOrganization(actor: Actor): string {
  if (!actor.organizationId) throw new AppError('auth.forbidden', 'This token belongs to no organization');
  return actor.organizationId;
}

/** The organization every query of this actor is limited to; undefined for a super admin (all). */
export function organizationFilter(actor: Actor): string | undefined {
  return isSuperAdmin(actor) ? undefined : ownOrganization(actor);
}

/** 404, never 403, for a row of another organization: existence must not leak across tenants. */
export function assertVisible(actor: Actor, organizationId: string | null | undefined, what = 'resource'): void {
  const scope = organizationFilter(actor);
  if (scope !== undefined && organizationId !== scope) throw new AppError('resource.not_found', `No such ${what}`);
}
