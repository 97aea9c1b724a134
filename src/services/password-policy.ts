// Password policy for people choosing a password (register, change, reset): 12..128 characters,
// not built from their own email or name, and not guessable per zxcvbn-ts, whose dictionaries
// carry the common-password and common-word lists (NIST SP 800-63B section 5.1.1.2).
import type { ZxcvbnFactory } from '@zxcvbn-ts/core';

import { AppError } from '../platform/errors.ts';

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 128;
// zxcvbn score 3: "safely unguessable: moderate protection from offline slow-hash scenario".
const MIN_SCORE = 3;

// Loaded on first use, not at start: the language packages decompress their word lists when they
// are imported (about 14 MB of heap, and a burst of allocation that grows V8's young generation),
// and only the few requests that set a password need them. Every process that serves tokens and
// API calls alone never loads them (bench/README.md, "Memory of the server process").
let zxcvbn: Promise<ZxcvbnFactory> | undefined;
function estimator(): Promise<ZxcvbnFactory> {
  zxcvbn ??= (async () => {
    const [{ ZxcvbnFactory }, common, english] = await Promise.all([
      import('@zxcvbn-ts/core'), import('@zxcvbn-ts/language-common'), import('@zxcvbn-ts/language-en'),
    ]);
    return new ZxcvbnFactory({
      dictionary: { ...common.dictionary, ...english.dictionary },
      graphs: common.adjacencyGraphs,
      translations: english.translations,
    });
  })().catch((error: unknown) => {
    // A failed load is not remembered: the next password tries again.
    zxcvbn = undefined;
    throw error;
  });
  return zxcvbn;
}

export interface PasswordOwner {
  email?: string;
  username?: string | null;
  firstName?: string;
  lastName?: string;
}

/** Reasons the password is refused; empty when it is acceptable. */
export async function passwordProblems(password: string, owner: PasswordOwner = {}): Promise<string[]> {
  if (password.length < PASSWORD_MIN_LENGTH) return [`must be at least ${PASSWORD_MIN_LENGTH} characters`];
  if (password.length > PASSWORD_MAX_LENGTH) return [`must be at most ${PASSWORD_MAX_LENGTH} characters`];
  const lowered = password.toLowerCase();
  const personal = [owner.email, owner.email?.split('@')[0], owner.username, owner.firstName, owner.lastName]
    .filter((value): value is string => typeof value === 'string' && value.length >= 3)
    .map((value) => value.toLowerCase());
  if (personal.some((value) => lowered === value || (value.length >= 4 && lowered.includes(value)))) {
    return ['must not contain your email, username or name'];
  }
  const result = (await estimator()).check(password, personal);
  if (result.score >= MIN_SCORE) return [];
  const reasons = [result.feedback.warning, ...result.feedback.suggestions].filter((text): text is string => !!text);
  return [`is too easy to guess${reasons.length ? `: ${reasons.join(' ')}` : ''}`];
}

/** 422 naming the body field when the password is refused (sign-up, password change and reset alike). */
export async function assertPasswordPolicy(password: string, owner: PasswordOwner, field: 'password' | 'new_password'): Promise<void> {
  const problems = await passwordProblems(password, owner);
  if (problems.length === 0) return;
  throw new AppError('request.validation_failed', `The ${field === 'new_password' ? 'new ' : ''}password does not meet the policy`, {
    errors: problems.map((message) => ({ path: ['body', field], message, code: 'password_policy' })),
  });
}
