import { Writable } from 'node:stream';

import { expect } from 'chai';

import { createLogger } from '../../src/platform/logger.ts';

describe('logger', () => {
  it('censors credentials wherever they appear in a line', () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _encoding, done) { lines.push(String(chunk)); done(); } });
    const logger = createLogger({ logLevel: 'info', env: 'test' }, {}, sink);
    logger.info({
      client_secret: 'S3cr3t-value',
      body: { password: 'hunter2-hunter2', refresh_token: 'rt-value' },
      req: { headers: { authorization: 'Bearer abc.def.ghi', cookie: 'session=1', 'x-client-secret': 'xs-value' } },
    }, 'request');
    const line = lines.join('');
    for (const secret of ['S3cr3t-value', 'hunter2-hunter2', 'rt-value', 'abc.def.ghi', 'session=1', 'xs-value']) expect(line).not.to.include(secret);
    expect(line).to.include('[redacted]');
  });
});
