// npm run db:seed: the demo organization, its users (one per role) and a CRM of customers and
// interactions; each password is printed once.
import { seedDemo, DEMO_ORGANIZATION } from './seeders/demo.seeder.ts';
import { migrate } from '../db/orm.ts';
import { runCommand } from './run-command.ts';

await runCommand('db:seed', async ({ config, stores }) => {
  await migrate(stores.database.orm);
  const seeded = await stores.database.orm.em.fork().transactional((em) => seedDemo(em, config.seedPassword));
  if (seeded.length === 0) {
    process.stdout.write(`The demo organization "${DEMO_ORGANIZATION.slug}" exists already; nothing was changed.\n`);
    return;
  }
  const rows = seeded.map((user) => `  ${user.email.padEnd(26)} ${user.role.padEnd(13)} ${user.password}`);
  process.stdout.write([
    `Seeded organization "${DEMO_ORGANIZATION.slug}" (${DEMO_ORGANIZATION.name}) with its users, customers and interactions. Passwords are shown only now:`,
    `  ${'email'.padEnd(26)} ${'role'.padEnd(13)} password`,
    ...rows,
    `Their organization slug is "${DEMO_ORGANIZATION.slug}".`,
    '',
  ].join('\n'));
});
