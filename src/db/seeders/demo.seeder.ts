// Demo data for `npm run db:seed`: an organization with one user of every organization role.
import type { EntityManager } from '@mikro-orm/postgresql';

import { Organization } from '../entities/organization.entity.ts';
import { Role } from '../entities/role.entity.ts';
import { User } from '../entities/user.entity.ts';
import { ensureBuiltinRoles, ensureOrganization } from '../../services/bootstrap.service.ts';
import { generatePassword, hashPassword } from '../../services/passwords.ts';

export const DEMO_ORGANIZATION = { slug: 'demo', name: 'Demo Company' };

const DEMO_USERS = [
  { username: 'admin1', firstName: 'Ada', lastName: 'Admin', role: 'admin' },
  { username: 'backoffice1', firstName: 'Bea', lastName: 'Backoffice', role: 'backoffice' },
  { username: 'agent1', firstName: 'Al', lastName: 'Agent', role: 'agent' },
  { username: 'agent2', firstName: 'Ana', lastName: 'Agent', role: 'agent' },
  { username: 'premium1', firstName: 'Pia', lastName: 'Premium', role: 'premium_user' },
  { username: 'basic1', firstName: 'Bo', lastName: 'Basic', role: 'basic_user' },
  { username: 'guest1', firstName: 'Gil', lastName: 'Guest', role: 'guest' },
] as const;

export interface SeededUser { email: string; username: string; role: string; password: string }

/** Creates the demo organization and its users; answers [] when it exists already. */
export async function seedDemo(em: EntityManager, fixedPassword?: string): Promise<SeededUser[]> {
  if (await em.findOne(Organization, { slug: DEMO_ORGANIZATION.slug })) return [];
  const organization = await ensureOrganization(em, DEMO_ORGANIZATION.slug, DEMO_ORGANIZATION.name);
  await ensureBuiltinRoles(em, organization);
  const seeded: SeededUser[] = [];
  for (const demo of DEMO_USERS) {
    const password = fixedPassword ?? generatePassword();
    const email = `${demo.username}@demo.example`;
    const user = em.create(User, {
      organization, email, username: demo.username, firstName: demo.firstName, lastName: demo.lastName,
      passwordHash: await hashPassword(password), isVerified: true,
    });
    user.roles.add(await em.findOneOrFail(Role, { name: demo.role, organization: organization.id }));
    seeded.push({ email, username: demo.username, role: demo.role, password });
  }
  await em.flush();
  return seeded;
}
