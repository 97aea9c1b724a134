// A real SMTP server for the tests (smtp-server on a loopback port), keeping what it receives as
// parsed by mailparser, so a test asserts what really went over SMTP: recipient, subject, link.
import type { AddressInfo } from 'node:net';

import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/** A real SMTP server on a free loopback port that keeps what it receives, and can refuse recipients. */
export class MailCatcher {
  readonly received: ParsedMail[] = [];
  refuse = false;
  readonly #server: SMTPServer;
  port = 0;

  constructor() {
    this.#server = new SMTPServer({
      // Plain SMTP on loopback: no TLS upgrade, no login.
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onRcptTo: (_address, _session, callback) => {
        if (!this.refuse) { callback(); return; }
        const error = Object.assign(new Error('mailbox temporarily unavailable'), { responseCode: 450 });
        callback(error);
      },
      onData: (stream, _session, callback) => {
        simpleParser(stream).then((mail) => { this.received.push(mail); callback(); }, callback);
      },
    });
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  async start(port = 0): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(port, '127.0.0.1', resolve));
    this.port = (this.#server.server.address() as AddressInfo).port;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /** The mails received so far for one address. */
  to(address: string): ParsedMail[] {
    return this.received.filter((mail) => recipients(mail).includes(address.toLowerCase()));
  }

  /** Waits for the `count`-th mail to an address (the first by default) and answers it. */
  async waitForMail(address: string, count = 1, timeoutMs = 10_000): Promise<ParsedMail> {
    await waitFor(() => this.to(address).length >= count, timeoutMs);
    return this.to(address)[count - 1]!;
  }
}

function recipients(mail: ParsedMail): string[] {
  const fields = Array.isArray(mail.to) ? mail.to : mail.to ? [mail.to] : [];
  return fields.flatMap((field) => field.value.map((entry) => (entry.address ?? '').toLowerCase()));
}

export async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The one link of a mail's text part that starts with `prefix` (such as `${issuer}/account/verify-email?token=`). */
export function linkIn(mail: ParsedMail, prefix: string): URL {
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const links = (mail.text ?? '').match(new RegExp(`${escaped}\\S+`, 'g')) ?? [];
  if (links.length !== 1) throw new Error(`expected one link starting with ${prefix} in the mail, found ${links.length}`);
  return new URL(links[0]!);
}

/** A page's answer to a mailed link's query: its status, and a title the page must show. */
export type LinkPageCase = [query: string, status: number, title: string];

/**
 * The link queries every mailed-link page must refuse with a clear page, built from one real
 * token: missing, empty, altered, cut short, with a NUL, oversized, and given twice.
 */
export function malformedLinkCases(token: string): LinkPageCase[] {
  const tampered = `${token.slice(0, 5)}${token[5] === 'Q' ? 'R' : 'Q'}${token.slice(6)}`;
  return [
    ['', 400, 'This link is incomplete'],
    ['?token=', 400, 'This link is incomplete'],
    [`?token=${tampered}`, 400, 'This link is not valid'],
    [`?token=${token.slice(0, 30)}`, 400, 'This link is not valid'],
    [`?token=${token.slice(0, 42)}%00`, 400, 'This link is not valid'],
    [`?token=${'A'.repeat(5000)}`, 400, 'This link is not valid'],
    [`?token=${token}&token=${token}`, 400, 'This link is incomplete'],
  ];
}
