// Password policy for people choosing a password (register, change, reset): 12..128 characters,
// not built from their own email or name, and not guessable per zxcvbn-ts, whose dictionaries
// carry the common-password and common-word lists (NIST SP 800-63B section 5.1.1.2).
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';
import * as english from '@zxcvbn-ts/language-en';

import { AppError } from '../platform/errors.ts';

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 128;
// zxcvbn score 3: "safely unguessable: moderate protection from offline slow-hash scenario".
const MIN_SCORE = 3;

// Built on first use: its dictionaries take a noticeable moment, which start-up need not wait for.
let zxcvbn: ZxcvbnFactory | undefined;
function estimator(): ZxcvbnFactory {
  zxcvbn ??= new ZxcvbnFactory({
    dictionary: { ...common.dictionary, ...english.dictionary },
    graphs: common.adjacencyGraphs,
    translations: english.translations,
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
export function passwordProblems(password: string, owner: PasswordOwner = {}): string[] {
  if (password.length < PASSWORD_MIN_LENGTH) return [`must be at least ${PASSWORD_MIN_LENGTH} characters`];
  if (password.length > PASSWORD_MAX_LENGTH) return [`must be at most ${PASSWORD_MAX_LENGTH} characters`];
  const lowered = password.toLowerCase();
  const personal = [owner.email, owner.email?.split('@')[0], owner.username, owner.firstName, owner.lastName]
    .filter((value): value is string => typeof value === 'string' && value.length >= 3)
    .map((value) => value.toLowerCase());
  if (personal.some((value) => lowered === value || (value.length >= 4 && lowered.includes(value)))) {
    return ['must not contain your email, username or name'];
  }
  const result = estimator().check(password, personal);
  if (result.score >= MIN_SCORE) return [];
  const reasons = [result.feedback.warning, ...result.feedback.suggestions].filter((text): text is string => !!text);
  return [`is too easy to guess${reasons.length ? `: ${reasons.join(' ')}` : ''}`];
}

/** 422 naming the body field when the password is refused (sign-up, password change and reset alike). */
export function assertPasswordPolicy(password: string, owner: PasswordOwner, field: 'password' | 'new_password'): void {
  const problems = passwordProblems(password, owner);
  if (problems.length === 0) return;
  throw new AppError('request.validation_failed', `The ${field === 'new_password' ? 'new ' : ''}password does not meet the policy`, {
    errors: problems.map((message) => ({ path: ['body', field], message, code: 'password_policy' })),
  });
}
