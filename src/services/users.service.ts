import type { MikroORM } from '@mikro-orm/postgresql';

import { queryOne } from '../platform/database.ts';

export interface UserProfile {
  id: string;
  email: string;
  username: string | null;
  first_name: string;
  last_name: string;
  full_name: string;
  is_active: boolean;
  is_verified: boolean;
  roles: string[];
  organization: { id: string; slug: string; name: string };
  last_login_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface ProfileRow {
  id: string;
  email: string;
  username: string | null;
  first_name: string;
  last_name: string;
  is_active: boolean;
  is_verified: boolean;
  roles: string[];
  organization_id: string;
  organization_slug: string;
  organization_name: string;
  last_login_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const iso = (value: Date | null) => (value ? new Date(value).toISOString() : null);

/** Select list and joins of a profile; callers add `where ... group by u.id, o.id`. */
export const profileColumns = `select u.id, u.email, u.username, u.first_name, u.last_name, u.is_active, u.is_verified,
            u.last_login_at, u.created_at, u.updated_at,
            o.id as organization_id, o.slug as organization_slug, o.name as organization_name,
            coalesce(array_agg(r.key order by r.key) filter (where r.key is not null), '{}') as roles
       from app_user u
       join organization o on o.id = u.organization_id
       left join user_role ur on ur.user_id = u.id
       left join role r on r.id = ur.role_id`;

export function profileFrom(row: ProfileRow): UserProfile {
  return {
    id: row.id,
    email: row.email,
    username: row.username,
    first_name: row.first_name,
    last_name: row.last_name,
    full_name: [row.first_name, row.last_name].filter(Boolean).join(' '),
    is_active: row.is_active,
    is_verified: row.is_verified,
    roles: row.roles,
    organization: { id: row.organization_id, slug: row.organization_slug, name: row.organization_name },
    last_login_at: iso(row.last_login_at),
    created_at: iso(row.created_at)!,
    updated_at: iso(row.updated_at)!,
  };
}

/** A user's own profile, or undefined when the user no longer exists or is disabled. */
export async function findActiveProfile(orm: MikroORM, userId: string): Promise<UserProfile | undefined> {
  const row = await queryOne<ProfileRow>(
    orm.em,
    `${profileColumns} where u.id = ? and u.is_active and o.is_active group by u.id, o.id`,
    [userId],
  );
  return row ? profileFrom(row) : undefined;
}
