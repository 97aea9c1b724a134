// npm run keys:rotate: a new signing key of each algorithm becomes current; running processes
// hear of it through the store at once (and re-read keys every minute regardless).
import { announceKeyRotation } from '../dependencies.ts';
import { rotateSigningKeys } from '../services/signing-keys.service.ts';
import { runCommand } from './run-command.ts';

// ID tokens live an hour; access tokens ACCESS_TOKEN_TTL. Keep old keys published past both.
const ID_TOKEN_TTL_SECONDS = 3600;
const CLOCK_SKEW_SECONDS = 60;

await runCommand('keys:rotate', async ({ config, stores }) => {
  const keepPublished = Math.max(config.tokens.accessTokenTtl, ID_TOKEN_TTL_SECONDS) + CLOCK_SKEW_SECONDS;
  const kids = await rotateSigningKeys(stores.database.orm, keepPublished);
  await announceKeyRotation(stores.store);
  process.stdout.write(`New signing keys: ${kids.join(', ')}\nPrevious keys stay in JWKS for ${keepPublished} s, until every token they signed has expired.\n`);
  if (stores.store.kind === 'memory') {
    process.stdout.write('No REDIS_URL: running processes pick the new keys up within a minute.\n');
  }
});
