// Shared frame of the npm-run commands: config, stores (joining a running embedded server when
// there is one), one clear line on failure, exit code 1.
import { openStores, type Stores } from '../dependencies.ts';
import { ConfigError, loadConfig, type Config } from '../platform/config.ts';
import { createLogger, type Logger } from '../platform/logger.ts';

export interface CommandContext {
  config: Config;
  logger: Logger;
  stores: Stores;
}

export class UsageError extends Error {}

export async function runCommand(name: string, command: (context: CommandContext) => Promise<void>): Promise<void> {
  let stores: Stores | undefined;
  try {
    const config = loadConfig();
    // Commands print their results; the log carries only warnings and errors.
    const logger = createLogger({ ...config, logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel });
    stores = await openStores(config, logger, { joinRunningServer: true });
    await command({ config, logger, stores });
  } catch (error) {
    const known = error instanceof ConfigError || error instanceof UsageError;
    process.stderr.write(`${name}: ${known ? error.message : (error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  } finally {
    await stores?.store.close();
    await stores?.database.close();
  }
}
