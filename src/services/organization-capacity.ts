// `max_users` (API.md "Organizations"): enforced on every path that adds a user, disabled users
// counted. Callers hold a lock on the organization row so two additions cannot take one place.
import type { MikroORM } from '@mikro-orm/postgresql';

import type { Organization } from '../db/entities/organization.entity.ts';
import { AppError } from '../platform/errors.ts';
import { queryOne } from '../platform/database.ts';

/** 409 when the organization already has `max_users` users (disabled ones count). */
export async function assertOrganizationHasRoom(em: MikroORM['em'], organization: Organization): Promise<void> {
  if (organization.maxUsers === null || organization.maxUsers === undefined) return;
  const row = await queryOne<{ users: number }>(em, 'select count(*)::int as users from app_user where organization_id = ?', [organization.id]);
  if ((row?.users ?? 0) >= organization.maxUsers) {
    throw new AppError('organization.max_users_reached', `Organization "${organization.slug}" has reached its limit of ${organization.maxUsers} users`);
  }
}
