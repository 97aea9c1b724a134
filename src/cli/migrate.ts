// npm run db:migrate: applies pending migrations from migrations/.
import { migrate } from '../db/orm.ts';
import { runCommand } from './run-command.ts';

await runCommand('db:migrate', async ({ stores }) => {
  const applied = await migrate(stores.database.orm);
  process.stdout.write(applied.length > 0 ? `Applied ${applied.length} migration(s):\n${applied.map((name) => `  ${name}`).join('\n')}\n` : 'The database is up to date.\n');
});
