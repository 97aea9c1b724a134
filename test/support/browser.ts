// Headless Chromium for the tests that drive the real pages. Debian's package, never a
// downloaded browser: `apt-get install -y chromium` (CI does it in .ci/run).
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
}

/**
 * Answers every navigation to `redirectUri` inside the browser itself, the way a client's
 * callback page would receive it, and resolves with the first URL that arrived there once the
 * page has loaded it. Resolving any earlier (when the request is merely intercepted) lets a test
 * start its next navigation while the callback is still committing, and the callback then
 * interrupts it ("page.goto: ... is interrupted by another navigation").
 */
export function captureCallback(context: BrowserContext, redirectUri: string): Promise<URL> {
  return new Promise((resolve, reject) => {
    void context.route(`${redirectUri}**`, async (route) => {
      const request = route.request();
      const arrived = new URL(request.url());
      try {
        await route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>callback</title><p>back at the client</p>' });
        await request.frame().waitForURL((shown) => shown.href === arrived.href, { waitUntil: 'load' });
        resolve(arrived);
      } catch (error) {
        reject(error as Error);
      }
    });
  });
}
