import type { MikroORM } from '@mikro-orm/postgresql';

import type { User } from '../db/entities/user.entity.ts';
import { queryOne } from '../platform/database.ts';

/**
 * Profile attributes of a user (seed 002), as the API names them and as the entity does.
 * `organisation` is the company a user names, free text, not the organization they belong to.
 */
export const PROFILE_ATTRIBUTES = {
  organisation: 'organisation',
  contact_name: 'contactName',
  contact_phone: 'contactPhone',
  contact_email: 'contactEmail',
  address: 'address',
  industry: 'industry',
  use_case: 'useCase',
} as const satisfies Record<string, keyof User>;

export type ProfileAttributes = { -readonly [K in keyof typeof PROFILE_ATTRIBUTES]?: string | null };

/** Sets the attributes given; an empty string clears one, like null. */
export function applyProfileAttributes(user: User, attributes: ProfileAttributes): void {
  for (const [field, property] of Object.entries(PROFILE_ATTRIBUTES) as [keyof ProfileAttributes, (typeof PROFILE_ATTRIBUTES)[keyof ProfileAttributes]][]) {
    const value = attributes[field];
    if (value !== undefined) user[property] = value === '' ? null : value;
  }
}

/** A person's name as bodies give it: whole, or in its two parts. */
export interface PersonName {
  full_name?: string;
  first_name?: string;
  last_name?: string;
}

/** "Ada King Lovelace" is first name "Ada", last name "King Lovelace"; the view joins them back. */
export function splitFullName(fullName: string): { firstName: string; lastName: string } {
  const [first, ...rest] = fullName.trim().split(/\s+/);
  return { firstName: first ?? '', lastName: rest.join(' ') };
}

/**
 * A user's whole name as a create or a PUT sets it: the name given, else the profile's contact
 * name (seed 002 names people there only), else empty.
 */
export function wholeName(input: PersonName & { contact_name?: string | null }): { firstName: string; lastName: string } {
  const given = nameChanges(input);
  if (given.firstName === undefined && given.lastName === undefined && input.contact_name) return splitFullName(input.contact_name);
  return { firstName: given.firstName ?? '', lastName: given.lastName ?? '' };
}

/** Every profile attribute as a PUT sets them: the ones given, the others cleared. */
export function replacedProfileAttributes(input: ProfileAttributes): Required<ProfileAttributes> {
  const attributes = Object.fromEntries(Object.keys(PROFILE_ATTRIBUTES).map((field) => [field, null])) as Required<ProfileAttributes>;
  for (const field of Object.keys(PROFILE_ATTRIBUTES) as (keyof ProfileAttributes)[]) {
    if (input[field] !== undefined) attributes[field] = input[field];
  }
  return attributes;
}

/** The first and last names a body sets: both from full_name, else the parts it gives. */
export function nameChanges(input: PersonName): { firstName?: string; lastName?: string } {
  if (input.full_name !== undefined) return splitFullName(input.full_name);
  return {
    ...(input.first_name !== undefined ? { firstName: input.first_name } : {}),
    ...(input.last_name !== undefined ? { lastName: input.last_name } : {}),
  };
}

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
  organisation: string | null;
  contact_name: string | null;
  contact_phone: string | null;
  contact_email: string | null;
  address: string | null;
  industry: string | null;
  use_case: string | null;
  last_login_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface ProfileRow extends Required<ProfileAttributes> {
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
            u.organisation, u.contact_name, u.contact_phone, u.contact_email, u.address, u.industry, u.use_case,
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
    organisation: row.organisation,
    contact_name: row.contact_name,
    contact_phone: row.contact_phone,
    contact_email: row.contact_email,
    address: row.address,
    industry: row.industry,
    use_case: row.use_case,
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
