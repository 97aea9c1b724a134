import type { MikroORM } from '@mikro-orm/postgresql';
import type { Account } from 'oidc-provider';

import { queryOne } from '../platform/database.ts';

interface AccountRow {
  id: string;
  email: string;
  username: string | null;
  first_name: string;
  last_name: string;
  is_verified: boolean;
  updated_at: Date;
}

/** The provider's view of a user: inactive or deleted users are no account at all. */
export async function findAccount(orm: MikroORM, sub: string): Promise<Account | undefined> {
  if (!/^[0-9a-f-]{36}$/i.test(sub)) return undefined;
  const row = await queryOne<AccountRow>(
    orm.em,
    `select u.id, u.email, u.username, u.first_name, u.last_name, u.is_verified, u.updated_at
       from app_user u join organization o on o.id = u.organization_id
      where u.id = ? and u.is_active and o.is_active`,
    [sub],
  );
  if (!row) return undefined;
  return {
    accountId: row.id,
    async claims() {
      const name = [row.first_name, row.last_name].filter(Boolean).join(' ');
      return {
        sub: row.id,
        email: row.email,
        email_verified: row.is_verified,
        ...(name ? { name } : {}),
        ...(row.first_name ? { given_name: row.first_name } : {}),
        ...(row.last_name ? { family_name: row.last_name } : {}),
        ...(row.username ? { preferred_username: row.username } : {}),
        updated_at: Math.floor(new Date(row.updated_at).getTime() / 1000),
      };
    },
  };
}
