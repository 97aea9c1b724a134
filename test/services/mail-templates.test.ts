// Mail templates (issue 14 part 2): views/mail/ rendered with the project's Eta setup, one layout
// per part; every link absolute from ISSUER; the HTML part escapes what it is given.
import { expect } from 'chai';

import { MailComposer, type MailTemplate } from '../../src/services/mail-templates.ts';
import { RESET_PASSWORD_MAIL } from '../../src/services/password-reset.service.ts';

const VERIFY: MailTemplate<{ name: string; expiresIn: string }> = {
  view: 'verify-email',
  subject: (_data, { productName }) => `Confirm your e-mail address for ${productName}`,
};

describe('mail templates (issue 14 part 2)', () => {
  const composer = new MailComposer({ issuer: 'https://id.example.test' });

  it('renders the text and HTML parts inside their layouts, with an absolute link from ISSUER', () => {
    const mail = composer.compose(VERIFY, {
      to: 'ada@example.test', link: { path: '/account/verify-email', query: { token: 'abc_-123' } }, data: { name: 'Ada', expiresIn: '24 hours' },
    });
    expect(mail.to).to.equal('ada@example.test');
    expect(mail.subject).to.equal('Confirm your e-mail address for Latchkey');
    expect(mail.link).to.equal('https://id.example.test/account/verify-email?token=abc_-123');
    expect(mail.text).to.include('Hello Ada,');
    expect(mail.text).to.include('\nhttps://id.example.test/account/verify-email?token=abc_-123\n');
    expect(mail.text).to.include('expires in 24 hours');
    expect(mail.text).to.match(/\n-- \nLatchkey · https:\/\/id\.example\.test\n/);
    expect(mail.html).to.match(/^<!doctype html>/);
    expect(mail.html).to.include('href="https://id.example.test/account/verify-email?token=abc_-123"');
    expect(mail.html).to.include('<title>Confirm your e-mail address for Latchkey</title>');
  });

  it('keeps the path of an ISSUER that has one, and encodes query values', () => {
    const behindPath = new MailComposer({ issuer: 'https://example.test/auth' });
    expect(behindPath.absoluteUrl({ path: '/account/verify-email', query: { token: 'a b&c=d' } }))
      .to.equal('https://example.test/auth/account/verify-email?token=a+b%26c%3Dd');
  });

  it('escapes values in the HTML part and leaves the text part as written', () => {
    const mail = composer.compose(VERIFY, {
      to: 'x@example.test', link: { path: '/account/verify-email', query: { token: 't' } }, data: { name: '<script>alert("x")</script> & Co', expiresIn: '24 hours' },
    });
    expect(mail.html).to.include('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co');
    expect(mail.html).not.to.include('<script>');
    expect(mail.text).to.include('Hello <script>alert("x")</script> & Co,');
  });

  it('keeps a subject on one line whatever its data holds', () => {
    const template: MailTemplate<{ org: string }> = { view: 'verify-email', subject: ({ org }) => `Join ${org}` };
    const mail = composer.compose(template, { to: 'x@example.test', data: { org: 'Acme\r\nBcc: victim@example.test' } });
    expect(mail.subject).to.equal('Join Acme Bcc: victim@example.test');
    expect(mail).not.to.have.property('link');
  });

  it('renders the password reset mail: account, organization (escaped in HTML), link and lifetime', () => {
    const mail = composer.compose(RESET_PASSWORD_MAIL, {
      to: 'ada@example.test', link: { path: '/account/reset-password', query: { token: 'tok_-1' } },
      data: { name: 'Ada', organizationName: 'Acme <b>& Sons</b>', expiresIn: '1 hour' },
    });
    expect(mail.subject).to.equal('Reset your Latchkey password');
    expect(mail.link).to.equal('https://id.example.test/account/reset-password?token=tok_-1');
    expect(mail.text).to.include('Hello Ada,').and.include('ada@example.test at Acme <b>& Sons</b>')
      .and.include('\nhttps://id.example.test/account/reset-password?token=tok_-1\n').and.include('expires in 1 hour');
    expect(mail.html).to.include('Acme &lt;b&gt;&amp; Sons&lt;/b&gt;').and.not.include('<b>&');
    expect(mail.html).to.include('href="https://id.example.test/account/reset-password?token=tok_-1"');
  });
});
