import { pino, type DestinationStream, type Logger } from 'pino';

import type { Config } from './config.ts';

export type { Logger };

// Anything that can carry a credential is censored wherever it appears in a log line.
const REDACT_PATHS = [
  'password', '*.password', 'new_password', '*.new_password', 'current_password', '*.current_password',
  'client_secret', '*.client_secret', 'secret', '*.secret',
  'access_token', '*.access_token', 'refresh_token', '*.refresh_token', 'id_token', '*.id_token',
  'code', '*.code', 'code_verifier', '*.code_verifier', 'client_assertion', '*.client_assertion',
  'token', '*.token', 'token_hash', '*.token_hash', 'private_jwk', '*.private_jwk',
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-client-secret"]', 'req.headers.dpop',
  'res.headers["set-cookie"]',
];

export function createLogger(config: Pick<Config, 'logLevel' | 'env'>, bindings: Record<string, unknown> = {}, destination?: DestinationStream): Logger {
  const options = {
    level: config.logLevel,
    base: { pid: process.pid, ...bindings },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}
