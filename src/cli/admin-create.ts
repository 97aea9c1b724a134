// npm run admin:create -- --email E [--password P] [--org SLUG]
// Creates a super admin (or, with --org, that organization's admin) and a personal OAuth client.
import { parseArgs } from 'node:util';

import { z } from 'zod';

import { ensureSigningKeys } from '../services/signing-keys.service.ts';
import { createAdministrator } from '../services/bootstrap.service.ts';
import { ClientRegistry } from '../services/client-registry.service.ts';
import { RevocationService } from '../services/revocation.service.ts';
import { migrate } from '../db/orm.ts';
import { UsageError, runCommand } from './run-command.ts';

const USAGE = 'usage: npm run admin:create -- --email EMAIL [--password PASSWORD] [--org SLUG]';

await runCommand('admin:create', async ({ config, stores }) => {
  const { values } = parseArgs({ options: { email: { type: 'string' }, password: { type: 'string' }, org: { type: 'string' } } });
  const email = z.email().safeParse(values.email);
  if (!email.success) throw new UsageError(`--email must be an email address\n${USAGE}`);
  if (values.password !== undefined && (values.password.length < 12 || values.password.length > 128)) {
    throw new UsageError('--password must be 12 to 128 characters (omit it to have a strong one generated)');
  }
  await migrate(stores.database.orm);
  await ensureSigningKeys(stores.database.orm);
  const revocation = new RevocationService(stores.store, config.tokens.accessTokenTtl);
  const admin = await createAdministrator(stores.database.orm, new ClientRegistry(stores.database.orm, stores.store, revocation), {
    email: email.data,
    password: values.password,
    organizationSlug: values.org,
    source: 'admin:create',
  });
  if (!admin) throw new Error('no administrator was created');
  process.stdout.write([
    `Created ${admin.role} ${admin.email} in organization "${admin.organizationSlug}".`,
    ...(admin.generatedPassword ? [`  password:       ${admin.generatedPassword}`] : []),
    `  client_id:      ${admin.clientId}`,
    `  client_secret:  ${admin.clientSecret}`,
    'The secret is shown only now; Latchkey keeps just its hash.',
    '',
  ].join('\n'));
});
