// The pages node-oidc-provider renders through its configuration hooks: RP-initiated logout,
// the device flow's user-code pages (RFC 8628 section 3.3) and its error page. Each hook gets a
// Latchkey template in place of the library's defaults (lib/helpers/defaults.js).
import type { Context } from 'koa';
import type { Client, Configuration, KoaContextWithOIDC } from 'oidc-provider';

import { renderPage } from '../../http/pages.ts';

type Features = NonNullable<Configuration['features']>;
type ErrorOut = Parameters<NonNullable<Configuration['renderError']>>[1];

// The hooks get the provider's context, which is the app's Koa context with `oidc` added.
const koa = (ctx: KoaContextWithOIDC) => ctx as unknown as Context;
const nameOf = (client: Client | undefined) => (client ? client.clientName ?? client.clientId : undefined);

/** What a user can do about each error the provider shows in the browser; the code stays visible for support. */
const ERROR_EXPLANATIONS: Record<string, string> = {
  invalid_redirect_uri: 'The application asked Latchkey to send you back to an address it has not registered, so Latchkey will not send you there.',
  invalid_client: 'Latchkey does not know the application that sent you here.',
  invalid_request: 'The application sent a request Latchkey cannot process. Go back to the application and try again.',
  unauthorized_client: 'This application is not allowed to make this request.',
  invalid_scope: 'The application asked for permissions it may not have.',
  access_denied: 'The request was denied.',
  server_error: 'Something went wrong on our side. Please try again.',
  temporarily_unavailable: 'Latchkey is briefly unavailable. Please try again in a few seconds.',
};

/** `renderError`: escaped error code and description only, never a stack or an internal message. */
export async function renderErrorPage(ctx: KoaContextWithOIDC, out: ErrorOut): Promise<void> {
  const error = typeof out.error === 'string' ? out.error : 'server_error';
  renderPage(koa(ctx), 'error', {
    title: ctx.status >= 500 ? 'Something went wrong' : 'This request cannot continue',
    message: ERROR_EXPLANATIONS[error] ?? 'Go back to the application and try again.',
    code: error,
    description: typeof out.error_description === 'string' ? out.error_description : undefined,
  }, { status: ctx.status });
}

/**
 * `rpInitiatedLogout.logoutSource`: asks before ending the session. `form` is the provider's own
 * (id "op.logoutForm", with its xsrf field); the buttons submit it from outside.
 */
export async function logoutConfirmationPage(ctx: KoaContextWithOIDC, form: string): Promise<void> {
  const postLogoutRedirectUri = ctx.oidc.params?.post_logout_redirect_uri;
  renderPage(koa(ctx), 'logout', {
    title: 'Sign out',
    clientName: nameOf(ctx.oidc.client),
    form,
  }, { formTargets: typeof postLogoutRedirectUri === 'string' ? [postLogoutRedirectUri] : [] });
}

/** `rpInitiatedLogout.postLogoutSuccessSource`: shown when the client gave no post_logout_redirect_uri. */
export async function signedOutPage(ctx: KoaContextWithOIDC): Promise<void> {
  renderPage(koa(ctx), 'signed-out', { title: 'Signed out', clientName: nameOf(ctx.oidc.client) });
}

/** Why the user-code page is shown again (lib/helpers/re_render_errors.js names). */
function userCodeMessage(error: Error | undefined): { text: string; isError: boolean } {
  if (!error) return { text: 'Enter the code shown on your device.', isError: false };
  switch (error.name) {
    case 'NoCodeError': return { text: 'Enter the code shown on your device.', isError: true };
    case 'NotFoundError': return { text: 'That code is not right. Check the code on your device and try again.', isError: true };
    case 'ExpiredError': return { text: 'That code has expired. Start again on your device to get a new one.', isError: true };
    case 'AlreadyUsedError': return { text: 'That code has already been used. Start again on your device to get a new one.', isError: true };
    case 'AbortedError': return { text: 'The sign-in was cancelled. You can close this page.', isError: false };
    default: return { text: 'Something went wrong. Start again on your device.', isError: true };
  }
}

/**
 * `deviceFlow.userCodeInputSource`. The provider's own form has an unlabelled input with an
 * inline handler (refused by the page policy), so the page builds an equivalent form: the same
 * action and fields, the xsrf value the provider keeps in the session for this form.
 */
export async function userCodeEntryPage(ctx: KoaContextWithOIDC, _form: string, _out?: ErrorOut, error?: Error): Promise<void> {
  const xsrf = (ctx.oidc.session as unknown as { state?: { secret?: string } } | undefined)?.state?.secret ?? '';
  const message = userCodeMessage(error);
  renderPage(koa(ctx), 'device-code', {
    title: 'Connect a device',
    action: ctx.oidc.urlFor('code_verification'),
    xsrf,
    userCode: (error as { userCode?: string } | undefined)?.userCode ?? '',
    message: message.text,
    isError: message.isError,
    // The provider re-renders a wrong or missing code with 200; it is a refused form, so 400.
  }, { status: message.isError && ctx.status < 400 ? 400 : ctx.status });
}

/** `deviceFlow.userCodeConfirmSource`: the user checks the code matches the device before going on. */
export async function userCodeConfirmationPage(
  ctx: KoaContextWithOIDC, form: string, client: Client, deviceInfo: Record<string, unknown>, userCode: string,
): Promise<void> {
  renderPage(koa(ctx), 'device-confirm', {
    title: 'Confirm the device',
    clientName: nameOf(client),
    userCode,
    requestedFrom: typeof deviceInfo?.ip === 'string' ? deviceInfo.ip : undefined,
    form,
  });
}

/** `deviceFlow.successSource`. */
export async function deviceConnectedPage(ctx: KoaContextWithOIDC): Promise<void> {
  renderPage(koa(ctx), 'device-success', { title: 'Device connected', clientName: nameOf(ctx.oidc.client) });
}

/** The hooks, in the shape of the provider's configuration. */
export const logoutPages = {
  logoutSource: logoutConfirmationPage,
  postLogoutSuccessSource: signedOutPage,
} satisfies Partial<NonNullable<Features['rpInitiatedLogout']>>;

export const deviceFlowPages = {
  userCodeInputSource: userCodeEntryPage,
  userCodeConfirmSource: userCodeConfirmationPage,
  successSource: deviceConnectedPage,
} satisfies Partial<NonNullable<Features['deviceFlow']>>;
