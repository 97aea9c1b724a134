import { expect } from 'chai';

import { queryRows } from '../../../src/platform/database.ts';
import { createOtherOrganization, jsonRequest } from '../../support/admin.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { freezeClock } from '../../support/mfa.ts';
import { callApi } from '../../support/oauth.ts';
import { addPasskeyRow } from '../../support/passkeys.ts';
import { DEMO_PASSWORD, login, loginAs, postJson, seedDemoUsers } from '../../support/users.ts';

describe('passkeys in the API: GET and DELETE /api/v1/me/passkeys, and a passkey-only user at /auth/login', () => {
  let server: TestServer;
  let move: (byMs: number) => void;
  let userId: string;
  let token: string;
  let laptop: string;
  let phone: string;
  let recoveryCodes: string[];

  before(async () => {
    server = await startTestServer();
    await seedDemoUsers(server);
    move = freezeClock(server);
    const signedIn = await loginAs(server, 'agent1@demo.example');
    userId = signedIn.user.id;
    token = signedIn.access_token;
    const first = await addPasskeyRow(server, userId, 'Laptop');
    laptop = first.id;
    recoveryCodes = first.recoveryCodes!;
    phone = (await addPasskeyRow(server, userId, 'Phone')).id;
  });
  after(async () => { await server.close(); });

  it('lists the passkeys, and GET /me/mfa shows them as factors', async () => {
    const listed = await callApi(server, '/me/passkeys', token);
    expect(listed.status).to.equal(200);
    const { data } = await listed.json();
    expect(data.map((passkey: { name: string }) => passkey.name)).to.deep.equal(['Laptop', 'Phone']);
    expect(data[0]).to.have.keys('id', 'name', 'created_at', 'last_used_at', 'backed_up');
    const overview = await (await callApi(server, '/me/mfa', token)).json();
    expect(overview.enabled).to.equal(true);
    expect(overview.factors.filter((factor: { kind: string }) => factor.kind === 'passkey')).to.have.length(2);
    expect(overview.recovery_codes.remaining).to.equal(10);
  });

  it('answers a user whose only factor is a passkey with 403 mfa_required; a recovery code completes the sign-in', async () => {
    const refused = await login(server, { email: 'agent1@demo.example', password: DEMO_PASSWORD });
    expect(refused.status).to.equal(403);
    const problem = await refused.json();
    expect(problem.error).to.equal('mfa_required');
    const wrongKind = await postJson(server, '/auth/mfa', { mfa_token: problem.mfa_token, code: '123456' });
    expect(wrongKind.status).to.equal(401);
    const completed = await postJson(server, '/auth/mfa', { mfa_token: problem.mfa_token, code: recoveryCodes[0] });
    expect(completed.status).to.equal(200);
    token = (await completed.json()).access_token;
  });

  it('refuses bad ids, another user\'s passkey (404) and an old sign-in (403) when removing', async () => {
    const malformed = await jsonRequest(server, 'DELETE', '/me/passkeys/not-a-uuid', token);
    expect(malformed.status).to.equal(422);
    const unknown = await jsonRequest(server, 'DELETE', `/me/passkeys/${crypto.randomUUID()}`, token);
    expect(unknown.status).to.equal(404);
    const other = await createOtherOrganization(server);
    const foreign = await jsonRequest(server, 'DELETE', `/me/passkeys/${laptop}`, other.token);
    expect(foreign.status).to.equal(404);
    const anonymous = await fetch(`${server.url}/api/v1/me/passkeys/${laptop}`, { method: 'DELETE' });
    expect(anonymous.status).to.equal(401);
    expect(anonymous.headers.get('www-authenticate')).to.match(/^Bearer /);

    move(6 * 60_000);
    const stale = await jsonRequest(server, 'DELETE', `/me/passkeys/${laptop}`, token);
    expect(stale.status).to.equal(403);
    expect((await stale.json()).code).to.equal('auth.recent_sign_in_required');
    move(-6 * 60_000);
    const left = await (await callApi(server, '/me/passkeys', token)).json();
    expect(left.data).to.have.length(2);
  });

  it('removes a passkey with a recent sign-in; the last factor takes the recovery codes with it; each removal is audited', async () => {
    expect((await jsonRequest(server, 'DELETE', `/me/passkeys/${laptop}`, token)).status).to.equal(204);
    let overview = await (await callApi(server, '/me/mfa', token)).json();
    expect(overview.recovery_codes.remaining).to.equal(9);
    expect((await jsonRequest(server, 'DELETE', `/me/passkeys/${laptop}`, token)).status).to.equal(404);
    expect((await jsonRequest(server, 'DELETE', `/me/passkeys/${phone}`, token)).status).to.equal(204);
    overview = await (await callApi(server, '/me/mfa', token)).json();
    expect(overview).to.deep.include({ enabled: false, factors: [] });
    expect(overview.recovery_codes.remaining).to.equal(0);
    const audit = await queryRows<{ resource_id: string; details: { recovery_codes_removed: number } }>(server.deps.orm.em,
      `select resource_id, details from audit_log where action = 'mfa.passkey_remove' and target_id = ? order by occurred_at`, [userId]);
    expect(audit.map((row) => row.resource_id)).to.deep.equal([laptop, phone]);
    expect(audit[1]!.details.recovery_codes_removed, 'the whole set, used codes too').to.equal(10);
  });
});
