// The user's own second factors (API.md "Multi-factor authentication"): TOTP enrolment and
// removal, passkeys (listed and removed here; registered only in a browser, on /account/security,
// as a WebAuthn ceremony needs one), recovery codes. Secrets and codes are answered once, never cached. Only the token of a
// sign-in changes them (an API key, which has no auth_time, does not); removing a factor and a
// new set of recovery codes need that sign-in to be of the last 5 minutes.
import { defineRoute } from '../../http/define-route.ts';
import { classifyCode, type MfaService } from '../../services/mfa.service.ts';
import type { PasskeyService } from '../../services/passkeys.service.ts';
import { actingUser } from '../../services/self-service.service.ts';
import { fieldError } from '../../platform/errors.ts';
import {
  MfaOverviewResponse, PasskeyIdParams, PasskeyListResponse, RecoveryCodesResponse, TotpEnrolmentResponse, TotpVerifyBody, TotpVerifyResponse,
} from './mfa.schemas.ts';

/** What these routes use (built in src/dependencies.ts). */
export interface MfaRoutesDependencies {
  mfa: MfaService;
  passkeys: PasskeyService;
}

const NO_STORE = { 'Cache-Control': 'no-store' };

export function mfaRoutes(deps: MfaRoutesDependencies) {
  return [
    defineRoute({
      method: 'get', path: '/me/mfa', tag: 'Me', summary: 'Your second factors, recovery codes left, and whether a policy requires a factor',
      responses: { 200: MfaOverviewResponse }, errors: ['auth.user_required'],
      handler: async ({ actor }) => ({ status: 200, body: await deps.mfa.overview(actingUser(actor)) }),
    }),

    defineRoute({
      method: 'post', path: '/me/mfa/totp', tag: 'Me',
      summary: 'Start enrolling an authenticator app: a new secret, its otpauth:// URI and QR code (confirm with /me/mfa/totp/verify)',
      responses: { 201: TotpEnrolmentResponse }, errors: ['auth.user_required', 'auth.recent_sign_in_required', 'mfa.totp_exists', 'resource.not_found'],
      handler: async ({ actor, auth }) => {
        const userId = actingUser(actor);
        deps.mfa.assertSignedIn(auth.authTime);
        const enrolment = await deps.mfa.startTotp({ ...actor, userId });
        return {
          status: 201,
          body: {
            factor_id: enrolment.factor_id, secret: enrolment.secret, otpauth_uri: enrolment.otpauth_uri,
            qr_code: `data:image/svg+xml;base64,${Buffer.from(enrolment.qr_svg).toString('base64')}`,
          },
          headers: NO_STORE,
        };
      },
    }),

    defineRoute({
      method: 'post', path: '/me/mfa/totp/verify', tag: 'Me',
      summary: 'Confirm the enrolment with a first code; a first set of recovery codes comes with it when you have none',
      body: TotpVerifyBody, responses: { 200: TotpVerifyResponse },
      errors: ['auth.user_required', 'auth.recent_sign_in_required', 'mfa.no_pending_totp', 'mfa.invalid_code'],
      handler: async ({ actor, auth, body }) => {
        const userId = actingUser(actor);
        deps.mfa.assertSignedIn(auth.authTime);
        if (classifyCode(body.code)?.method !== 'totp') throw fieldError(['body', 'code'], 'must be the 6 digits your authenticator app shows', 'invalid_code');
        const confirmed = await deps.mfa.confirmTotp({ ...actor, userId }, body.code);
        return {
          status: 200,
          body: { factor: confirmed.factor, ...(confirmed.recoveryCodes ? { recovery_codes: confirmed.recoveryCodes } : {}) },
          headers: NO_STORE,
        };
      },
    }),

    defineRoute({
      method: 'delete', path: '/me/mfa/totp', tag: 'Me',
      summary: 'Remove your authenticator app (needs a sign-in of the last 5 minutes); with no factor left, the recovery codes go too',
      responses: { 204: null }, errors: ['auth.user_required', 'auth.recent_sign_in_required', 'resource.not_found'],
      handler: async ({ actor, auth }) => {
        actingUser(actor);
        await deps.mfa.removeTotp(actor, auth.authTime);
        return { status: 204 };
      },
    }),

    defineRoute({
      method: 'get', path: '/me/passkeys', tag: 'Me',
      summary: 'Your passkeys (WebAuthn); register one in a browser on /account/security',
      responses: { 200: PasskeyListResponse }, errors: ['auth.user_required'],
      handler: async ({ actor }) => ({ status: 200, body: { data: await deps.passkeys.list(actingUser(actor)) } }),
    }),

    defineRoute({
      method: 'delete', path: '/me/passkeys/:id', tag: 'Me',
      summary: 'Remove one of your passkeys (needs a sign-in of the last 5 minutes); with no factor left, the recovery codes go too',
      params: PasskeyIdParams, responses: { 204: null }, errors: ['auth.user_required', 'auth.recent_sign_in_required', 'resource.not_found'],
      handler: async ({ actor, auth, params }) => {
        const userId = actingUser(actor);
        await deps.passkeys.remove({ ...actor, userId }, params.id, auth.authTime);
        return { status: 204 };
      },
    }),

    defineRoute({
      method: 'post', path: '/me/recovery-codes', tag: 'Me',
      summary: 'A new set of 10 single-use recovery codes, shown once (needs a sign-in of the last 5 minutes); the previous set stops working',
      responses: { 201: RecoveryCodesResponse }, errors: ['auth.user_required', 'auth.recent_sign_in_required', 'mfa.no_factor', 'resource.not_found'],
      handler: async ({ actor, auth }) => {
        const userId = actingUser(actor);
        return { status: 201, body: { recovery_codes: await deps.mfa.newRecoveryCodes({ ...actor, userId }, auth.authTime) }, headers: NO_STORE };
      },
    }),
  ];
}
