// One catalogue of resource-API error codes (STYLE.md "Errors"); the outermost middleware turns
// any AppError into RFC 9457 problem+json. A 401 whose caller presented a token that was refused
// is marked `challenge: 'invalid_token'`: its WWW-Authenticate says so (RFC 6750 section 3.1).
import type { ZodError } from 'zod';

export const ERROR_CATALOGUE = {
  'request.malformed': { status: 400, title: 'Malformed request' },
  'request.bad_cursor': { status: 400, title: 'Invalid cursor' },
  'auth.token_missing': { status: 401, title: 'Authentication required' },
  'auth.token_invalid': { status: 401, title: 'Invalid access token', challenge: 'invalid_token' },
  'auth.dpop_invalid': { status: 401, title: 'Invalid DPoP proof', challenge: 'invalid_token' },
  'auth.insufficient_scope': { status: 403, title: 'Insufficient scope' },
  'auth.forbidden': { status: 403, title: 'Forbidden' },
  'auth.user_required': { status: 403, title: 'A user token is required' },
  'auth.invalid_credentials': { status: 401, title: 'Invalid credentials' },
  'auth.invalid_client': { status: 401, title: 'Invalid client credentials' },
  'auth.invalid_refresh_token': { status: 401, title: 'Invalid refresh token', challenge: 'invalid_token' },
  'auth.client_not_allowed': { status: 403, title: 'Client not allowed' },
  'auth.wrong_password': { status: 403, title: 'Current password is wrong' },
  'auth.email_not_verified': { status: 403, title: 'E-mail address not verified' },
  'auth.mfa_required': { status: 403, title: 'A second factor is required' },
  'auth.mfa_enrollment_required': { status: 403, title: 'A second factor must be enrolled first' },
  'auth.invalid_mfa_token': { status: 401, title: 'Invalid MFA token' },
  'auth.invalid_mfa_code': { status: 401, title: 'Invalid second-factor code' },
  'auth.recent_sign_in_required': { status: 403, title: 'A recent sign-in is required' },
  'mfa.totp_exists': { status: 409, title: 'TOTP already enrolled' },
  'mfa.no_pending_totp': { status: 409, title: 'No TOTP enrolment in progress' },
  'mfa.invalid_code': { status: 422, title: 'Invalid code' },
  'mfa.no_factor': { status: 409, title: 'No second factor enrolled' },
  'user.email_taken': { status: 409, title: 'Email already registered' },
  'user.username_taken': { status: 409, title: 'Username already taken' },
  'user.last_super_admin': { status: 409, title: 'Last super admin' },
  'organization.max_users_reached': { status: 409, title: 'Organization is full' },
  'organization.inactive': { status: 403, title: 'Organization is disabled' },
  'organization.slug_taken': { status: 409, title: 'Organization slug already used' },
  'organization.default': { status: 409, title: 'Default organization' },
  'location.code_taken': { status: 409, title: 'Location code already used' },
  'customer.email_taken': { status: 409, title: 'Customer email already used' },
  'role.name_taken': { status: 409, title: 'Role name already used' },
  'role.key_taken': { status: 409, title: 'Role key already used' },
  'role.builtin': { status: 409, title: 'Built-in role' },
  'role.in_use': { status: 409, title: 'Role still held' },
  'permission.name_taken': { status: 409, title: 'Permission already exists' },
  'permission.builtin': { status: 409, title: 'Built-in permission' },
  'client.builtin': { status: 409, title: 'Built-in client' },
  'client.no_secret': { status: 409, title: 'Client has no secret' },
  // Single-use links (services/link-tokens.service.ts): 400 for a token that never was (or was
  // altered), 410 Gone for one that was but is no more.
  'link.invalid': { status: 400, title: 'Invalid link' },
  'link.wrong_purpose': { status: 400, title: 'Link is for another purpose' },
  'link.used': { status: 410, title: 'Link already used' },
  'link.expired': { status: 410, title: 'Link expired' },
  'link.revoked': { status: 410, title: 'Link replaced or withdrawn' },
  // Invitations (services/invitations.service.ts).
  'invitation.already_member': { status: 409, title: 'Already a member of the organization' },
  'invitation.withdrawn': { status: 410, title: 'Invitation withdrawn' },
  'outbox.not_retryable': { status: 409, title: 'Outbox message cannot be retried' },
  'resource.not_found': { status: 404, title: 'Not found' },
  'request.method_not_allowed': { status: 405, title: 'Method not allowed' },
  'request.conflict': { status: 409, title: 'Conflict' },
  'request.too_large': { status: 413, title: 'Request body too large' },
  'request.unsupported_media_type': { status: 415, title: 'Unsupported media type' },
  'request.validation_failed': { status: 422, title: 'Validation failed' },
  'request.rate_limited': { status: 429, title: 'Too many requests' },
  'server.internal': { status: 500, title: 'Internal server error' },
  'server.unavailable': { status: 503, title: 'Service temporarily unavailable' },
} as const satisfies Record<string, { status: number; title: string; challenge?: 'invalid_token' }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export interface ValidationIssue {
  path: (string | number)[];
  message: string;
  code: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  code: ErrorCode;
  errors?: ValidationIssue[];
  /** RFC 9457 section 3.2 extension members (`mfa_token` of an `auth.mfa_required` answer). */
  [extension: string]: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly errors?: ValidationIssue[];
  readonly headers: Record<string, string>;
  readonly extensions: Record<string, unknown>;

  constructor(
    code: ErrorCode, detail?: string,
    options: { errors?: ValidationIssue[]; headers?: Record<string, string>; extensions?: Record<string, unknown> } = {},
  ) {
    super(detail ?? ERROR_CATALOGUE[code].title);
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.errors = options.errors;
    this.headers = options.headers ?? {};
    this.extensions = options.extensions ?? {};
  }

  /** Whether the caller presented a token and it was refused (RFC 6750 section 3.1 `invalid_token`). */
  get refusedToken(): boolean {
    const entry = ERROR_CATALOGUE[this.code];
    return 'challenge' in entry && entry.challenge === 'invalid_token';
  }

  toProblem(): Problem {
    const { title } = ERROR_CATALOGUE[this.code];
    return {
      ...this.extensions,
      type: `urn:latchkey:problem:${this.code}`,
      title,
      status: this.status,
      detail: this.message,
      code: this.code,
      ...(this.errors ? { errors: this.errors } : {}),
    };
  }
}

/** Keeps handlers flat: `assertThat(customer, 'resource.not_found')`. */
export function assertThat(condition: unknown, code: ErrorCode, detail?: string): asserts condition {
  if (!condition) throw new AppError(code, detail);
}

/** A 422 for one field, in the same shape schema validation produces. */
export function fieldError(path: (string | number)[], message: string, code = 'invalid'): AppError {
  return new AppError('request.validation_failed', `${path.join('.')} ${message}`, { errors: [{ path, message, code }] });
}

export function validationError(location: 'body' | 'query' | 'params', error: ZodError): AppError {
  return new AppError('request.validation_failed', `The request ${location} is not valid`, {
    errors: error.issues.map((issue) => ({
      path: [location, ...issue.path.map((segment) => (typeof segment === 'symbol' ? String(segment) : segment))],
      message: issue.message,
      code: issue.code,
    })),
  });
}
