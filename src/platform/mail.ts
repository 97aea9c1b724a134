// How a mail leaves the process (API.md section 4, "Mail"): over SMTP with nodemailer when
// SMTP_URL is set, otherwise into the log (recipient, subject and the mail's link), so the
// embedded mode needs no mail server. Callers never send directly: they write the mail to the
// outbox in their transaction (services/mail-delivery.ts), and the delivery worker calls this.
import nodemailer from 'nodemailer';

import type { Logger } from './logger.ts';

/** A mail as the outbox keeps it (its payload): plain data, no secret beyond the single-use link. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html?: string;
  /** The link the mail is about (a verification or reset link), the one thing the log transport shows of the body. */
  link?: string;
}

export interface MailTransport {
  readonly kind: 'smtp' | 'log';
  send(mail: MailMessage): Promise<void>;
  close(): void;
}

export interface MailSettings {
  /** smtp:// or smtps://; absent: the log transport. */
  smtpUrl?: string;
  /** The From address of every mail. */
  from: string;
}

// A server that stops answering must not hold a delivery round for nodemailer's defaults (up to
// 10 minutes of socket silence): these end a send well inside the outbox's lease.
const SMTP_TIMEOUTS = { connectionTimeout: 30_000, greetingTimeout: 30_000, socketTimeout: 60_000 };

export function createMailTransport(settings: MailSettings, logger: Logger): MailTransport {
  if (!settings.smtpUrl) {
    return {
      kind: 'log',
      async send(mail) {
        // Only what a developer needs to follow the mail: never its body, which could grow to hold more.
        logger.info({ mail: { to: mail.to, subject: mail.subject, link: mail.link } }, 'mail not sent (no SMTP_URL); written to the log instead');
      },
      close() {},
    };
  }
  const transporter = nodemailer.createTransport({ url: settings.smtpUrl, ...SMTP_TIMEOUTS });
  return {
    kind: 'smtp',
    async send(mail) {
      await transporter.sendMail({ from: settings.from, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html });
    },
    close() { transporter.close(); },
  };
}
