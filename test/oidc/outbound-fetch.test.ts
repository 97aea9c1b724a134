import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { expect } from 'chai';

import { OutboundRequestRefused, isSpecialUseAddress, outboundFetch } from '../../src/oidc/outbound-fetch.ts';

describe('outbound requests of the provider (back-channel logout, jwks_uri)', () => {
  let receiver: Server;
  let url: string;

  before(async () => {
    receiver = createServer((request, response) => response.end('ok'));
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/jwks`;
  });
  after(() => { receiver.close(); });

  it('tells loopback, private, link-local and other special-use addresses from public ones', () => {
    for (const address of ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1']) {
      expect(isSpecialUseAddress(address), address).to.equal(true);
    }
    for (const address of ['93.184.215.14', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
      expect(isSpecialUseAddress(address), address).to.equal(false);
    }
  });

  it('refuses a loopback address, by IP or by a name that resolves to it', async () => {
    const fetchForProvider = outboundFetch({ allowPrivate: false });
    for (const target of [url, url.replace('127.0.0.1', 'localhost'), url.replace('127.0.0.1', '[::1]')]) {
      const failure = await fetchForProvider(target).then(() => undefined, (error: unknown) => error);
      expect(failure, target).to.be.instanceOf(OutboundRequestRefused);
    }
  });

  it('reaches a loopback address with OUTBOUND_ALLOW_PRIVATE, even past the provider\'s own guard', async () => {
    const guard = { dispatcher: { dispatch() { throw new Error('the provider\'s special-use guard was used'); } } };
    const response = await outboundFetch({ allowPrivate: true })(url, guard as RequestInit);
    expect(response.status).to.equal(200);
    expect(await response.text()).to.equal('ok');
  });
});
