// Mail templates (API.md section 4, "Mail"; issue 14 part 2). A mail is two Eta views under
// views/mail/, `<name>.text.eta` and `<name>.html.eta`, each inside its layout (layout.text.eta,
// layout.html.eta); the HTML part escapes every value, the text part is shown as is.
//
// How a service sends a mail, inside the unit of work of the change that causes it:
//
//   const VERIFY_EMAIL: MailTemplate<{ name: string }> = {
//     view: 'verify-email', subject: () => 'Confirm your e-mail address',
//   };
//   enqueueMail(em, mails.compose(VERIFY_EMAIL, {
//     to: user.email, link: { path: '/account/verify-email', query: { token } }, data: { name },
//   }));
//
// The link is made absolute from ISSUER here, so no caller can send a relative one or another
// host's. A mail holds no secret other than its link (the outbox keeps it, and the log transport
// shows the link): never a password, never a token of any other kind.
import type { MailMessage } from '../platform/mail.ts';
import { htmlTemplates, PRODUCT_NAME, textTemplates } from '../platform/templates.ts';

/** What one kind of mail is: its views and its subject. Defined by the service that sends it. */
export interface MailTemplate<Data extends Record<string, unknown> = Record<string, unknown>> {
  /** views/mail/<view>.text.eta and views/mail/<view>.html.eta. */
  view: string;
  subject: (data: Data, context: { productName: string }) => string;
}

/** A link into Latchkey: a path under ISSUER and its query parameters. */
export interface MailLink {
  path: `/${string}`;
  query?: Record<string, string>;
}

export interface ComposeInput<Data> {
  to: string;
  /** The one link the mail is about (a verification, reset or invitation link). */
  link?: MailLink;
  data: Data;
}

/** Header-breaking characters have no place in a subject (nodemailer folds lines, but a subject is one line). */
function oneLine(value: string): string {
  return value.replace(/[\r\n\u2028\u2029]+/g, ' ').trim();
}

export class MailComposer {
  readonly #issuer: string;
  readonly #productName: string;

  /** `issuer`: ISSUER, the public base URL (config.issuer), with no trailing slash. */
  constructor(settings: { issuer: string; productName?: string }) {
    this.#issuer = settings.issuer.replace(/\/+$/, '');
    this.#productName = settings.productName ?? PRODUCT_NAME;
  }

  /** An absolute URL under ISSUER (which may itself have a path: https://example.com/auth). */
  absoluteUrl(link: MailLink): string {
    const url = new URL(`${this.#issuer}${link.path}`);
    for (const [name, value] of Object.entries(link.query ?? {})) url.searchParams.set(name, value);
    return url.href;
  }

  /** Renders both parts of a mail; the outbox row is then written with enqueueMail(em, mail). */
  compose<Data extends Record<string, unknown>>(template: MailTemplate<Data>, input: ComposeInput<Data>): MailMessage {
    const link = input.link ? this.absoluteUrl(input.link) : undefined;
    const subject = oneLine(template.subject(input.data, { productName: this.#productName }));
    const view = {
      ...input.data, to: input.to, subject, link, productName: this.#productName, issuer: this.#issuer,
    };
    return {
      to: input.to,
      subject,
      text: textTemplates.render(`mail/${template.view}.text.eta`, view),
      html: htmlTemplates.render(`mail/${template.view}.html.eta`, view),
      ...(link ? { link } : {}),
    };
  }
}
