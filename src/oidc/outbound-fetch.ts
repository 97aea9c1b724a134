// Every request node-oidc-provider makes on its own (back-channel logout notifications, a
// client's jwks_uri, sector identifier documents) goes through its `fetch` option. API.md
// section 1: outbound calls refuse loopback and private addresses unless OUTBOUND_ALLOW_PRIVATE.
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/** Special-use ranges (RFC 6890 and its IANA registries): none of them is a client's public endpoint. */
const SPECIAL_USE = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16],
  ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) SPECIAL_USE.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 23],
  ['2001:db8::', 32], ['2002::', 16], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8],
] as const) SPECIAL_USE.addSubnet(network, prefix, 'ipv6');

export function isSpecialUseAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return SPECIAL_USE.check(mapped[1]!, 'ipv4');
  const family = isIP(address);
  if (family === 0) return true;
  return SPECIAL_USE.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export class OutboundRequestRefused extends Error {
  constructor(host: string) {
    super(`outbound request to ${host} refused: it is a loopback or private address (OUTBOUND_ALLOW_PRIVATE=true allows it)`);
    this.name = 'OutboundRequestRefused';
  }
}

/** Refuses a URL whose host is, or resolves to, a special-use address. */
export async function assertPublicDestination(url: URL): Promise<void> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) ? [host] : (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);
  if (addresses.length === 0 || addresses.some(isSpecialUseAddress)) throw new OutboundRequestRefused(url.hostname);
}

type FetchInit = RequestInit & { dispatcher?: unknown };

/**
 * The provider's `fetch`. Before calling it the provider adds a dispatcher that drops sockets
 * connected to special-use addresses (lib/helpers/fetch_request.js). Without
 * OUTBOUND_ALLOW_PRIVATE that dispatcher stays and the destination is also checked here first,
 * so the rule holds even where the provider could not install it, and a refusal names its
 * reason. With it, the dispatcher is dropped so a loopback receiver in development is reached.
 */
export function outboundFetch(options: { allowPrivate: boolean }) {
  return async function fetchForProvider(input: string | URL | Request, init: FetchInit = {}): Promise<Response> {
    if (options.allowPrivate) {
      const { dispatcher: _specialUseGuard, ...rest } = init;
      return fetch(input, rest);
    }
    await assertPublicDestination(new URL(input instanceof Request ? input.url : input));
    return fetch(input, init);
  };
}
