import { z } from 'zod';

/** A TOTP code (6 digits) or a recovery code (xxxx-xxxx-xxxx); spaces and dashes are ignored. */
export const SecondFactorCode = z.string().min(1, { error: 'is required' }).max(32, { error: 'must be at most 32 characters' })
  .describe('the 6 digits an authenticator app shows, or a recovery code');

export const MfaFactor = z.object({
  id: z.uuid(),
  kind: z.enum(['totp', 'passkey']).describe('the factor\'s kind: an authenticator app (totp) or a passkey (WebAuthn)'),
  name: z.string().nullable(),
  confirmed: z.boolean().describe('false while an enrolment waits for its first code'),
  created_at: z.iso.datetime(),
  last_used_at: z.iso.datetime().nullable(),
}).meta({ id: 'MfaFactor' });

export const MfaOverviewResponse = z.object({
  enabled: z.boolean().describe('a confirmed factor exists: sign-ins ask for it'),
  required: z.boolean().describe('a policy (the organization\'s mfa_required, MFA_REQUIRED_FOR_ADMINS) asks this user for a factor'),
  factors: z.array(MfaFactor),
  recovery_codes: z.object({ remaining: z.number().int(), generated_at: z.iso.datetime().nullable() }),
}).meta({ id: 'MfaOverview' });

export const TotpEnrolmentResponse = z.object({
  factor_id: z.uuid(),
  secret: z.string().describe('base32, to type into an authenticator app by hand'),
  otpauth_uri: z.string().describe('otpauth://totp/... (the Key URI Format authenticator apps read)'),
  qr_code: z.string().describe('the URI as a QR code: a data: URL of an SVG image'),
}).meta({ id: 'TotpEnrolment' });

export const TotpVerifyBody = z.strictObject({ code: SecondFactorCode }).meta({ id: 'TotpVerifyRequest' });

export const TotpVerifyResponse = z.object({
  factor: MfaFactor,
  recovery_codes: z.array(z.string()).optional().describe('a first set, shown only now, when the user had none'),
}).meta({ id: 'TotpVerifyResponse' });

export const RecoveryCodesResponse = z.object({
  recovery_codes: z.array(z.string()).describe('10 single-use codes, shown only now; the previous set stops working'),
}).meta({ id: 'RecoveryCodes' });

export const Passkey = z.object({
  id: z.uuid(),
  name: z.string().describe('the name given at registration (or since)'),
  created_at: z.iso.datetime(),
  last_used_at: z.iso.datetime().nullable(),
  backed_up: z.boolean().describe('synced by its provider (a multi-device passkey) rather than bound to one authenticator'),
}).meta({ id: 'Passkey' });

export const PasskeyListResponse = z.object({ data: z.array(Passkey) }).meta({ id: 'PasskeyList' });

export const PasskeyIdParams = z.object({ id: z.uuid({ error: 'expected a UUID' }) });
