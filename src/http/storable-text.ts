// PostgreSQL text cannot hold U+0000, and an unpaired UTF-16 surrogate (JSON allows "\ud800")
// has no UTF-8 form: the database layer refuses both, but by then no one knows which field held
// them. This one step, run on every route's params, query and body before its schemas, answers
// 422 naming each such field, in the same shape as schema validation.
import { AppError, type ValidationIssue } from '../platform/errors.ts';

const MAX_ISSUES = 20;

function problemOf(text: string): { message: string; code: string } | undefined {
  if (text.includes('\u0000')) return { message: 'must not contain NUL (U+0000) characters', code: 'invalid_characters' };
  if (!text.isWellFormed()) return { message: 'must be valid Unicode (it holds an unpaired surrogate)', code: 'invalid_characters' };
  return undefined;
}

function collect(value: unknown, path: (string | number)[], issues: ValidationIssue[]): void {
  if (issues.length >= MAX_ISSUES) return;
  if (typeof value === 'string') {
    const problem = problemOf(value);
    if (problem) issues.push({ path, ...problem });
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, index) => collect(item, [...path, index], issues));
    return;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const problem = problemOf(key);
      // A bad key cannot name itself readably; the issue points at the object holding it.
      if (problem) issues.push({ path, message: `has a key that ${problem.message}`, code: problem.code });
      collect(item, [...path, key], issues);
    }
  }
}

export function rejectUnstorableText(inputs: { params?: unknown; query?: unknown; body?: unknown }): void {
  const issues: ValidationIssue[] = [];
  for (const location of ['params', 'query', 'body'] as const) collect(inputs[location], [location], issues);
  if (issues.length > 0) {
    throw new AppError('request.validation_failed', 'The request holds text that cannot be stored', { errors: issues });
  }
}
