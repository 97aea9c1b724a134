// Demo data for `npm run db:seed`: an organization with one user of every organization role, and
// customers and interactions for its CRM.
import type { EntityManager } from '@mikro-orm/postgresql';

import { Customer, type CustomerStage } from '../../db/entities/customer.entity.ts';
import { CustomerInteraction, type InteractionType } from '../../db/entities/interaction.entity.ts';
import { Organization } from '../../db/entities/organization.entity.ts';
import { Role } from '../../db/entities/role.entity.ts';
import { User } from '../../db/entities/user.entity.ts';
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

type DemoUsername = (typeof DEMO_USERS)[number]['username'];

// A small pipeline spread over the last three months, so lists, the per-role visibility and the
// 30-day statistics all show something: mostly the agents' own customers, a few handed to them by
// backoffice or an admin, one assigned to the basic user, one unassigned.
const DEMO_CUSTOMERS: { first: string; last: string; company: string; stage: CustomerStage; by: DemoUsername; to: DemoUsername | null; daysAgo: number }[] = [
  { first: 'Olivia', last: 'Martin', company: 'Northwind Traders', stage: 'ACTIVE', by: 'agent1', to: 'agent1', daysAgo: 45 },
  { first: 'Liam', last: 'Chen', company: 'Contoso', stage: 'IN_PROGRESS', by: 'agent1', to: 'agent1', daysAgo: 20 },
  { first: 'Sofia', last: 'Rossi', company: 'Fabrikam', stage: 'LEAD', by: 'agent1', to: 'agent1', daysAgo: 3 },
  { first: 'Noah', last: 'Williams', company: 'Tailspin Toys', stage: 'ACTIVE', by: 'agent2', to: 'agent2', daysAgo: 60 },
  { first: 'Emma', last: 'Dubois', company: 'Adatum', stage: 'IN_PROGRESS', by: 'agent2', to: 'agent2', daysAgo: 12 },
  { first: 'Lucas', last: 'Schmidt', company: 'Litware', stage: 'LEAD', by: 'agent2', to: 'agent2', daysAgo: 1 },
  { first: 'Mia', last: 'Johansson', company: 'Wingtip Toys', stage: 'LEAD', by: 'backoffice1', to: 'agent1', daysAgo: 8 },
  { first: 'Ethan', last: 'Brown', company: 'Proseware', stage: 'IN_PROGRESS', by: 'backoffice1', to: 'agent2', daysAgo: 35 },
  { first: 'Ava', last: 'Garcia', company: 'Margie\'s Travel', stage: 'ACTIVE', by: 'premium1', to: 'premium1', daysAgo: 90 },
  { first: 'Henry', last: 'Novak', company: 'Coho Winery', stage: 'IN_PROGRESS', by: 'premium1', to: 'agent1', daysAgo: 15 },
  { first: 'James', last: 'Wilson', company: 'Fourth Coffee', stage: 'LEAD', by: 'admin1', to: 'basic1', daysAgo: 5 },
  { first: 'Chloe', last: 'Nguyen', company: 'Alpine Ski House', stage: 'LEAD', by: 'admin1', to: null, daysAgo: 2 },
];

/** What happens to a customer, in order, days after it was created (capped at today). */
const DEMO_HISTORY: Record<CustomerStage, { type: InteractionType; subject: string; after: number }[]> = {
  LEAD: [{ type: 'EMAIL', subject: 'Introduction email', after: 0 }],
  IN_PROGRESS: [
    { type: 'CALL', subject: 'Discovery call', after: 1 },
    { type: 'NOTE', subject: 'Stage changed from LEAD to IN_PROGRESS', after: 1 },
    { type: 'MEETING', subject: 'Product demo', after: 7 },
  ],
  ACTIVE: [
    { type: 'CALL', subject: 'Discovery call', after: 1 },
    { type: 'NOTE', subject: 'Stage changed from LEAD to IN_PROGRESS', after: 1 },
    { type: 'EMAIL', subject: 'Proposal sent', after: 10 },
    { type: 'NOTE', subject: 'Stage changed from IN_PROGRESS to ACTIVE', after: 20 },
  ],
};

const DAY_MS = 86_400_000;

function seedDemoCrm(em: EntityManager, organization: Organization, users: Map<string, User>): void {
  const now = Date.now();
  for (const demo of DEMO_CUSTOMERS) {
    const createdAt = new Date(now - demo.daysAgo * DAY_MS);
    const assignee = demo.to ? users.get(demo.to)! : null;
    const customer = em.create(Customer, {
      organization, firstName: demo.first, lastName: demo.last, email: `${demo.first}.${demo.last}@${demo.company.replace(/\W/g, '')}.example`.toLowerCase(),
      company: demo.company, stage: demo.stage, createdBy: users.get(demo.by)!, assignedTo: assignee, createdAt, updatedAt: createdAt,
    });
    for (const step of DEMO_HISTORY[demo.stage]) {
      const at = new Date(Math.min(now, createdAt.getTime() + step.after * DAY_MS));
      em.create(CustomerInteraction, {
        organization, customer, interactionType: step.type, subject: step.subject, description: '',
        createdBy: assignee ?? users.get(demo.by)!, createdAt: at, updatedAt: at,
      });
    }
  }
}

export interface SeededUser { email: string; username: string; role: string; password: string }

/** Creates the demo organization, its users and CRM; answers [] when it exists already. */
export async function seedDemo(em: EntityManager, fixedPassword?: string): Promise<SeededUser[]> {
  if (await em.findOne(Organization, { slug: DEMO_ORGANIZATION.slug })) return [];
  const organization = await ensureOrganization(em, DEMO_ORGANIZATION.slug, DEMO_ORGANIZATION.name);
  await ensureBuiltinRoles(em, organization);
  const seeded: SeededUser[] = [];
  const users = new Map<string, User>();
  for (const demo of DEMO_USERS) {
    const password = fixedPassword ?? generatePassword();
    const email = `${demo.username}@demo.example`;
    const user = em.create(User, {
      organization, email, username: demo.username, firstName: demo.firstName, lastName: demo.lastName,
      passwordHash: await hashPassword(password), isVerified: true,
    });
    user.roles.add(await em.findOneOrFail(Role, { key: demo.role, organization: organization.id }));
    seeded.push({ email, username: demo.username, role: demo.role, password });
    users.set(demo.username, user);
  }
  seedDemoCrm(em, organization, users);
  await em.flush();
  return seeded;
}
