import { z } from 'zod';

import { uuidParam } from '../../http/define-route.ts';
import { SecondFactorCode } from '../me/mfa.schemas.ts';
import { NAME_REQUIRED, nameFields, oneWayToName, profileAttributeFields, UserProfileResponse } from '../me/me.schemas.ts';

const password = z.string().min(1, { error: 'is required' }).max(128, { error: 'must be at most 128 characters' });
const organizationSlug = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { error: 'expected an organization slug' });

export const LoginBody = z.strictObject({
  email: z.email({ error: 'expected an email address' }).max(254).optional(),
  username: z.string().min(1).max(64).optional(),
  password,
  organization_slug: organizationSlug.optional(),
  scope: z.string().max(500).optional(),
}).refine((body) => (body.email === undefined) !== (body.username === undefined), {
  error: 'give either email or username', path: ['email'],
}).meta({ id: 'LoginRequest' });

export const MfaLoginBody = z.strictObject({
  mfa_token: z.string().min(1, { error: 'is required' }).max(256),
  code: SecondFactorCode,
}).meta({ id: 'MfaLoginRequest' });

export const RefreshBody = z.strictObject({
  refresh_token: z.string().min(1).max(512),
}).meta({ id: 'RefreshRequest' });

export const LogoutBody = z.strictObject({
  refresh_token: z.string().min(1).max(512).optional(),
}).meta({ id: 'LogoutRequest' });

export const ChangePasswordBody = z.strictObject({
  current_password: password,
  new_password: z.string().min(1).max(128, { error: 'must be at most 128 characters' }),
}).meta({ id: 'ChangePasswordRequest' });

export const RegisterBody = z.strictObject({
  email: z.email({ error: 'expected an email address' }).max(254),
  password: z.string().min(1).max(128, { error: 'must be at most 128 characters' }),
  username: z.string().regex(/^[\w.-]{3,64}$/, { error: 'expected 3 to 64 letters, digits, ".", "_" or "-"' }).optional(),
  ...nameFields,
  // The organization to join, by slug or by id (seed 004); both must name the same one. Default: `default`.
  organization_slug: organizationSlug.optional(),
  organization_id: uuidParam.optional(),
  ...profileAttributeFields,
}).superRefine(oneWayToName).refine(NAME_REQUIRED.check, NAME_REQUIRED.error).meta({ id: 'RegisterRequest' });

export const TokenPairResponse = z.object({
  access_token: z.string(),
  refresh_token: z.string().optional(),
  token_type: z.string(),
  expires_in: z.number().int(),
  scope: z.string().optional(),
}).meta({ id: 'TokenPair' });

export const LoginResponse = TokenPairResponse.extend({ user: UserProfileResponse }).meta({ id: 'LoginResponse' });

export const RegisterResponse = z.object({
  user: UserProfileResponse,
  client: z.object({ client_id: z.string(), client_secret: z.string() }),
}).meta({ id: 'RegisterResponse' });

/** A verification link's token, as the mail's link carries it (`?token=`). */
export const VerifyEmailBody = z.strictObject({
  token: z.string().min(1, { error: 'is required' }).max(512, { error: 'must be at most 512 characters' }),
}).meta({ id: 'VerifyEmailRequest' });

export const VerifyEmailResponse = z.object({
  user_id: z.uuid(),
  email: z.string(),
  is_verified: z.literal(true),
}).meta({ id: 'VerifyEmailResponse' });

export const VerificationResendBody = z.strictObject({
  email: z.email({ error: 'expected an email address' }).max(254),
  // Where the address has accounts in several organizations: only this one's. Default: each unverified one.
  organization_slug: organizationSlug.optional(),
}).meta({ id: 'VerificationResendRequest' });

export const ForgotPasswordBody = z.strictObject({
  email: z.email({ error: 'expected an email address' }).max(254),
  // Where the address has accounts in several organizations: only this one's. Default: each one.
  organization: organizationSlug.optional(),
  // The name the other auth routes give the same thing.
  organization_slug: organizationSlug.optional(),
}).refine((body) => body.organization === undefined || body.organization_slug === undefined || body.organization === body.organization_slug, {
  error: 'organization and organization_slug name different organizations; give one of them', path: ['organization_slug'],
}).meta({ id: 'ForgotPasswordRequest' });

/** The token of the mailed reset link (`?token=`) and the new password, under the password policy. */
export const ResetPasswordBody = z.strictObject({
  token: z.string().min(1, { error: 'is required' }).max(512, { error: 'must be at most 512 characters' }),
  new_password: z.string().min(1, { error: 'is required' }).max(128, { error: 'must be at most 128 characters' }),
}).meta({ id: 'ResetPasswordRequest' });

/** A request taken in: the same answer whatever it led to (API.md section 4: no account enumeration). */
export const AcceptedResponse = z.object({ detail: z.string() }).meta({ id: 'Accepted' });
