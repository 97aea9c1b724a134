import { expect } from 'chai';
import { decodeProtectedHeader } from 'jose';

import { SigningKey } from '../../src/db/entities/signing-key.entity.ts';
import { announceKeyRotation } from '../../src/dependencies.ts';
import { rotateSigningKeys } from '../../src/services/signing-keys.service.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { callApi, clientCredentialsToken } from '../support/oauth.ts';

async function publishedKids(server: TestServer): Promise<string[]> {
  const jwks = (await (await fetch(`${server.url}/oauth/jwks`)).json()) as { keys: { kid: string }[] };
  return jwks.keys.map((key) => key.kid);
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('signing key rotation (npm run keys:rotate)', () => {
  let server: TestServer;

  before(async () => { server = await startTestServer({ ACCESS_TOKEN_FORMAT: 'jwt' }); });
  after(async () => { await server.close(); });

  it('signs with the new key at once, keeps the old one published, and retires it on schedule', async () => {
    const before = await publishedKids(server);
    expect(before).to.have.length(2);
    const { access_token: oldToken } = await clientCredentialsToken(server);
    const oldKid = decodeProtectedHeader(oldToken).kid!;
    expect(before).to.include(oldKid);

    const fresh = await rotateSigningKeys(server.deps.orm, 3600);
    await announceKeyRotation(server.deps.store);
    await eventually(async () => (await publishedKids(server)).length === 4);

    const { access_token: newToken } = await clientCredentialsToken(server);
    expect(fresh).to.include(decodeProtectedHeader(newToken).kid);
    expect((await callApi(server, '/me', oldToken)).status).to.equal(200);
    expect((await callApi(server, '/me', newToken)).status).to.equal(200);

    // Once the old keys' tokens have all expired, the keys leave JWKS and their tokens stop verifying.
    await server.deps.orm.em.fork().nativeUpdate(SigningKey, { kid: { $in: before } }, { retireAt: new Date(Date.now() - 1000) });
    await server.deps.reloadSigningKeys();
    const after = await publishedKids(server);
    expect(after).to.have.members(fresh);
    expect((await callApi(server, '/me', oldToken)).status).to.equal(401);
    expect((await callApi(server, '/me', newToken)).status).to.equal(200);
  });
});
