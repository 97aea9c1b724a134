import { expect } from 'chai';
import * as oauth from 'oauth4webapi';

import { queryRows } from '../../../src/platform/database.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { createOtherOrganization, jsonRequest } from '../../support/admin.ts';
import { enrolTotp, freezeClock, totpCode, TOTP_PERIOD_MS } from '../../support/mfa.ts';
import { basicAuth, callApi, clientCredentialsToken, createClient, discoverWithOauth4webapi, postForm } from '../../support/oauth.ts';
import { DEMO_PASSWORD, login, loginAs, postJson, seedDemoUsers } from '../../support/users.ts';

async function auditActions(server: TestServer, userId: string): Promise<string[]> {
  const rows = await queryRows<{ action: string; status: string }>(server.deps.orm.em,
    'select action, status from audit_log where target_id = ? order by occurred_at, action', [userId]);
  return rows.map((row) => `${row.action}:${row.status}`);
}

async function mfaRequired(server: TestServer, email: string, headers: Record<string, string> = {}): Promise<string> {
  const response = await login(server, { email, password: DEMO_PASSWORD }, headers);
  expect(response.status).to.equal(403);
  const problem = await response.json();
  expect(problem).to.include({ code: 'auth.mfa_required', error: 'mfa_required' });
  expect(problem.mfa_token).to.be.a('string');
  return problem.mfa_token as string;
}

describe('Multi-factor authentication: TOTP, recovery codes and the API sign-in', () => {
  let server: TestServer;
  let move: (byMs: number) => void;

  before(async () => {
    server = await startTestServer();
    await seedDemoUsers(server);
    move = freezeClock(server);
  });
  after(async () => { await server.close(); });

  describe('enrolment', () => {
    let token: string;
    let userId: string;
    before(async () => {
      const signedIn = await loginAs(server, 'agent1@demo.example');
      token = signedIn.access_token;
      userId = signedIn.user.id;
    });

    it('starts with no factor', async () => {
      const response = await callApi(server, '/me/mfa', token);
      expect(response.status).to.equal(200);
      expect(await response.json()).to.deep.equal({ enabled: false, required: false, factors: [], recovery_codes: { remaining: 0, generated_at: null } });
    });

    it('answers a secret, an otpauth:// URI and an SVG QR code, and keeps the secret encrypted', async () => {
      const response = await postJson(server, '/me/mfa/totp', {}, token);
      expect(response.status).to.equal(201);
      expect(response.headers.get('cache-control')).to.equal('no-store');
      const body = await response.json();
      expect(body.secret).to.match(/^[A-Z2-7]{32}$/);
      const uri = new URL(body.otpauth_uri);
      expect(uri.protocol).to.equal('otpauth:');
      expect(uri.host).to.equal('totp');
      expect(uri.searchParams.get('secret')).to.equal(body.secret);
      expect(decodeURIComponent(uri.pathname)).to.include('agent1@demo.example');
      expect(body.qr_code).to.match(/^data:image\/svg\+xml;base64,/);
      expect(Buffer.from(body.qr_code.split(',')[1], 'base64').toString()).to.match(/^<svg/);
      const [row] = await queryRows<{ secret_ciphertext: string; confirmed_at: Date | null }>(server.deps.orm.em,
        'select secret_ciphertext, confirmed_at from mfa_factor where user_id = ?', [userId]);
      expect(row!.confirmed_at).to.equal(null);
      expect(row!.secret_ciphertext).to.match(/^v1\./).and.not.include(body.secret);
      const overview = await (await callApi(server, '/me/mfa', token)).json();
      expect(overview.enabled).to.equal(false);
      expect(overview.factors).to.have.length(1);
      expect(overview.factors[0]).to.include({ kind: 'totp', confirmed: false });
    });

    it('refuses a wrong code, a code of the wrong length and NUL characters with 4xx problems', async () => {
      const { secret } = await (await postJson(server, '/me/mfa/totp', {}, token)).json();
      const wrong = String((Number(totpCode(server, secret)) + 1) % 1_000_000).padStart(6, '0');
      const refused = await postJson(server, '/me/mfa/totp/verify', { code: wrong }, token);
      expect(refused.status).to.equal(422);
      expect((await refused.json()).code).to.equal('mfa.invalid_code');
      for (const code of ['12345', '1234567', 'abc']) {
        const malformed = await postJson(server, '/me/mfa/totp/verify', { code }, token);
        expect(malformed.status, code).to.equal(422);
        expect((await malformed.json()).code).to.equal('request.validation_failed');
      }
      const nul = await postJson(server, '/me/mfa/totp/verify', { code: '12\u000034' }, token);
      expect(nul.status).to.equal(422);
      const missing = await postJson(server, '/me/mfa/totp/verify', {}, token);
      expect(missing.status).to.equal(422);
      const wrongType = await postJson(server, '/me/mfa/totp/verify', { code: 123456 }, token);
      expect(wrongType.status).to.equal(422);
      const oversized = await postJson(server, '/me/mfa/totp/verify', { code: '1'.repeat(100) }, token);
      expect(oversized.status).to.equal(422);
      expect((await queryRows(server.deps.orm.em, 'select 1 from mfa_factor where user_id = ? and confirmed_at is not null', [userId]))).to.have.length(0);
    });

    it('confirms with the current code, answers 10 recovery codes once, and refuses a second enrolment', async () => {
      const { secret } = await (await postJson(server, '/me/mfa/totp', {}, token)).json();
      const confirmed = await postJson(server, '/me/mfa/totp/verify', { code: totpCode(server, secret) }, token);
      expect(confirmed.status).to.equal(200);
      const body = await confirmed.json();
      expect(body.factor).to.include({ kind: 'totp', confirmed: true });
      expect(body.recovery_codes).to.have.length(10);
      expect(new Set(body.recovery_codes).size).to.equal(10);
      for (const code of body.recovery_codes) expect(code).to.match(/^[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$/);
      const stored = await queryRows<{ code_hash: string }>(server.deps.orm.em, 'select code_hash from recovery_code where user_id = ?', [userId]);
      expect(stored).to.have.length(10);
      for (const row of stored) expect(body.recovery_codes.map((code: string) => code.replace(/-/g, ''))).to.not.include(row.code_hash);

      const again = await postJson(server, '/me/mfa/totp', {}, token);
      expect(again.status).to.equal(409);
      expect((await again.json()).code).to.equal('mfa.totp_exists');
      const overview = await (await callApi(server, '/me/mfa', token)).json();
      expect(overview).to.deep.include({ enabled: true, required: false });
      expect(overview.recovery_codes.remaining).to.equal(10);
      expect(await auditActions(server, userId)).to.include.members(['mfa.totp_start:success', 'mfa.totp_confirm:failure', 'mfa.totp_confirm:success', 'mfa.recovery_codes_generate:success']);
    });

    it('has nothing to confirm once confirmed', async () => {
      const response = await postJson(server, '/me/mfa/totp/verify', { code: '123456' }, token);
      expect(response.status).to.equal(409);
      expect((await response.json()).code).to.equal('mfa.no_pending_totp');
    });
  });

  describe('signing in through the API', () => {
    let secret: string;
    let recoveryCodes: string[];
    let userId: string;
    before(async () => {
      const signedIn = await loginAs(server, 'agent2@demo.example');
      userId = signedIn.user.id;
      ({ secret, recoveryCodes } = await enrolTotp(server, signedIn.access_token));
      move(TOTP_PERIOD_MS);
    });

    it('answers 403 auth.mfa_required with an mfa_token instead of tokens', async () => {
      const response = await login(server, { email: 'agent2@demo.example', password: DEMO_PASSWORD });
      expect(response.status).to.equal(403);
      expect(response.headers.get('content-type')).to.match(/application\/problem\+json/);
      const problem = await response.json();
      expect(problem).to.include({ code: 'auth.mfa_required', error: 'mfa_required' });
      expect(problem).to.not.have.property('access_token');
      expect(problem.mfa_token).to.match(/^[\w-]{43}$/);
    });

    it('completes with a code; a wrong code first does not spend the mfa_token; a replayed mfa_token is refused', async () => {
      const mfaToken = await mfaRequired(server, 'agent2@demo.example');
      const wrongCode = String((Number(totpCode(server, secret)) + 7) % 1_000_000).padStart(6, '0');
      const wrong = await postJson(server, '/auth/mfa', { mfa_token: mfaToken, code: wrongCode });
      expect(wrong.status).to.equal(401);
      expect(wrong.headers.get('www-authenticate')).to.match(/^Bearer /);
      expect((await wrong.json()).code).to.equal('auth.invalid_mfa_code');

      const completed = await postJson(server, '/auth/mfa', { mfa_token: mfaToken, code: totpCode(server, secret) });
      expect(completed.status).to.equal(200);
      const body = await completed.json();
      expect(body).to.include.keys('access_token', 'refresh_token', 'user');
      expect(body.user.id).to.equal(userId);
      expect((await callApi(server, '/me', body.access_token)).status).to.equal(200);

      move(TOTP_PERIOD_MS);
      const replayed = await postJson(server, '/auth/mfa', { mfa_token: mfaToken, code: totpCode(server, secret) });
      expect(replayed.status).to.equal(401);
      expect(replayed.headers.get('www-authenticate')).to.match(/^Bearer /);
      expect((await replayed.json()).code).to.equal('auth.invalid_mfa_token');
    });

    it('refuses a code already used in its time step, and takes the next step\'s', async () => {
      move(TOTP_PERIOD_MS);
      const first = await postJson(server, '/auth/mfa', { mfa_token: await mfaRequired(server, 'agent2@demo.example'), code: totpCode(server, secret) });
      expect(first.status).to.equal(200);
      const mfaToken = await mfaRequired(server, 'agent2@demo.example');
      const reused = await postJson(server, '/auth/mfa', { mfa_token: mfaToken, code: totpCode(server, secret) });
      expect(reused.status).to.equal(401);
      expect((await reused.json()).code).to.equal('auth.invalid_mfa_code');
      move(TOTP_PERIOD_MS);
      const next = await postJson(server, '/auth/mfa', { mfa_token: mfaToken, code: totpCode(server, secret) });
      expect(next.status).to.equal(200);
    });

    it('accepts one time step of clock drift either way, not two', async () => {
      move(5 * TOTP_PERIOD_MS);
      const behind = await postJson(server, '/auth/mfa', { mfa_token: await mfaRequired(server, 'agent2@demo.example'), code: totpCode(server, secret, -1) });
      expect(behind.status).to.equal(200);
      move(5 * TOTP_PERIOD_MS);
      const ahead = await postJson(server, '/auth/mfa', { mfa_token: await mfaRequired(server, 'agent2@demo.example'), code: totpCode(server, secret, 1) });
      expect(ahead.status).to.equal(200);
      move(5 * TOTP_PERIOD_MS);
      const mfaToken = await mfaRequired(server, 'agent2@demo.example');
      for (const steps of [-2, 2]) {
        const far = await postJson(server, '/auth/mfa', { mfa_token: mfaToken, code: totpCode(server, secret, steps) });
        expect(far.status, `${steps} steps`).to.equal(401);
      }
    });

    it('takes a recovery code once, with or without dashes and in any case', async () => {
      const [code] = recoveryCodes;
      const used = await postJson(server, '/auth/mfa', { mfa_token: await mfaRequired(server, 'agent2@demo.example'), code: code!.toUpperCase().replace(/-/g, '') });
      expect(used.status).to.equal(200);
      const again = await postJson(server, '/auth/mfa', { mfa_token: await mfaRequired(server, 'agent2@demo.example'), code });
      expect(again.status).to.equal(401);
      expect((await again.json()).code).to.equal('auth.invalid_mfa_code');
      const rows = await queryRows<{ details: { method: string; remaining: number } }>(server.deps.orm.em,
        `select details from audit_log where action = 'auth.mfa' and status = 'success' and target_id = ? and details->>'method' = 'recovery_code'`, [userId]);
      expect(rows).to.have.length(1);
      expect(rows[0]!.details.remaining).to.equal(9);
    });

    it('answers 422 for a code of the wrong length or with NUL, and 401 for an unknown mfa_token', async () => {
      const mfaToken = await mfaRequired(server, 'agent2@demo.example');
      for (const code of ['12345', '1234567', 'abcd-efgh']) {
        const response = await postJson(server, '/auth/mfa', { mfa_token: mfaToken, code });
        expect(response.status, code).to.equal(422);
      }
      expect((await postJson(server, '/auth/mfa', { mfa_token: mfaToken, code: '12\u00003456' })).status).to.equal(422);
      expect((await postJson(server, '/auth/mfa', { mfa_token: `${mfaToken}\u0000`, code: '123456' })).status).to.equal(422);
      expect((await postJson(server, '/auth/mfa', { code: '123456' })).status).to.equal(422);
      expect((await postJson(server, '/auth/mfa', { mfa_token: mfaToken, code: 123456 })).status).to.equal(422);
      const unknown = await postJson(server, '/auth/mfa', { mfa_token: 'x'.repeat(43), code: totpCode(server, secret) });
      expect(unknown.status).to.equal(401);
      expect((await unknown.json()).code).to.equal('auth.invalid_mfa_token');
      // None of these spent the token.
      move(TOTP_PERIOD_MS);
      expect((await postJson(server, '/auth/mfa', { mfa_token: mfaToken, code: totpCode(server, secret) })).status).to.equal(200);
    });

    it('lets one of several concurrent completions of one mfa_token win', async () => {
      const mfaToken = await mfaRequired(server, 'agent2@demo.example');
      const unused = async () => (await queryRows(server.deps.orm.em, 'select 1 from recovery_code where user_id = ? and used_at is null', [userId])).length;
      const before = await unused();
      const completions = await Promise.all(recoveryCodes.slice(3, 6).map((code) => postJson(server, '/auth/mfa', { mfa_token: mfaToken, code })));
      expect(completions.map((response) => response.status).sort()).to.deep.equal([200, 401, 401]);
      expect(await unused(), 'the losers spent no recovery code').to.equal(before - 1);
    });

    it('binds the mfa_token to the client that asked for it', async () => {
      const firstParty = await createClient(server, { grant_types: ['password', 'refresh_token'], scope: 'openid crm:read' }, { firstParty: true });
      const mfaToken = await mfaRequired(server, 'agent2@demo.example', { authorization: basicAuth(firstParty.clientId, firstParty.secret) });
      move(TOTP_PERIOD_MS);
      const elsewhere = await postJson(server, '/auth/mfa', { mfa_token: mfaToken, code: totpCode(server, secret) });
      expect(elsewhere.status).to.equal(401);
      expect((await elsewhere.json()).code).to.equal('auth.invalid_mfa_token');
    });

    it('counts wrong codes in the sign-in throttle: after 5, 429 with Retry-After', async () => {
      const mfaToken = await mfaRequired(server, 'agent2@demo.example');
      for (let attempt = 0; attempt < 5; attempt += 1) {
        const response = await postJson(server, '/auth/mfa', { mfa_token: mfaToken, code: String(100000 + attempt) });
        expect(response.status).to.equal(401);
      }
      const locked = await postJson(server, '/auth/mfa', { mfa_token: mfaToken, code: totpCode(server, secret) });
      expect(locked.status).to.equal(429);
      expect(Number(locked.headers.get('retry-after'))).to.be.at.least(1);
      const failures = await queryRows(server.deps.orm.em, `select 1 from audit_log where action = 'auth.mfa' and status = 'failure' and target_id = ?`, [userId]);
      expect(failures.length).to.be.at.least(5);
    });
  });

  describe('the password grant and the MFA grant at /oauth/token', () => {
    it('answers mfa_required, then tokens and an ID token with amr pwd, otp, mfa and the MFA acr', async () => {
      const signedIn = await loginAs(server, 'backoffice1@demo.example');
      const { secret } = await enrolTotp(server, signedIn.access_token);
      move(TOTP_PERIOD_MS);
      const firstParty = await createClient(server, { grant_types: ['password', 'refresh_token'], scope: 'openid profile crm:read' }, { firstParty: true });
      const as = await discoverWithOauth4webapi(server);
      const client: oauth.Client = { client_id: firstParty.clientId };
      const clientAuth = oauth.ClientSecretBasic(firstParty.secret);
      const options = { [oauth.allowInsecureRequests]: true };

      const refused = await postForm(`${server.url}/oauth/token`, { grant_type: 'password', username: 'backoffice1@demo.example', password: DEMO_PASSWORD, scope: 'openid crm:read' },
        { authorization: basicAuth(firstParty.clientId, firstParty.secret) });
      expect(refused.status).to.equal(403);
      expect(refused.headers.get('cache-control')).to.equal('no-store');
      const { error, mfa_token: mfaToken } = await refused.json();
      expect(error).to.equal('mfa_required');

      const response = await oauth.genericTokenEndpointRequest(as, client, clientAuth, 'urn:latchkey:grant-type:mfa',
        new URLSearchParams({ mfa_token: mfaToken, code: totpCode(server, secret) }), options);
      const tokens = await oauth.processGenericTokenEndpointResponse(as, client, response);
      const claims = oauth.getValidatedIdTokenClaims(tokens)!;
      expect(claims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
      expect(claims.acr).to.equal('urn:latchkey:mfa');
      expect(claims.auth_time).to.be.a('number');
      expect(tokens.scope).to.equal('crm:read');

      const pwdOnly = await oauth.genericTokenEndpointRequest(as, client, clientAuth, 'password',
        new URLSearchParams({ username: 'premium1@demo.example', password: DEMO_PASSWORD, scope: 'openid' }), options);
      const pwdClaims = oauth.getValidatedIdTokenClaims(await oauth.processGenericTokenEndpointResponse(as, client, pwdOnly))!;
      expect(pwdClaims.amr).to.deep.equal(['pwd']);
      expect(pwdClaims.acr).to.equal('urn:latchkey:pwd');
    });
  });

  describe('recovery codes and removal', () => {
    let token: string;
    let secret: string;
    let oldCodes: string[];
    before(async () => {
      const signedIn = await loginAs(server, 'admin1@demo.example');
      token = signedIn.access_token;
      ({ secret, recoveryCodes: oldCodes } = await enrolTotp(server, token));
      move(TOTP_PERIOD_MS);
    });

    it('makes a new set of 10 that replaces the old one', async () => {
      const response = await postJson(server, '/me/recovery-codes', {}, token);
      expect(response.status).to.equal(201);
      expect(response.headers.get('cache-control')).to.equal('no-store');
      const { recovery_codes: codes } = await response.json();
      expect(codes).to.have.length(10);
      const old = await postJson(server, '/auth/mfa', { mfa_token: await mfaRequired(server, 'admin1@demo.example'), code: oldCodes[0] });
      expect(old.status).to.equal(401);
      const fresh = await postJson(server, '/auth/mfa', { mfa_token: await mfaRequired(server, 'admin1@demo.example'), code: codes[0] });
      expect(fresh.status).to.equal(200);
    });

    it('refuses a new set to a user without a factor', async () => {
      const other = await loginAs(server, 'basic1@demo.example');
      const response = await postJson(server, '/me/recovery-codes', {}, other.access_token);
      expect(response.status).to.equal(409);
      expect((await response.json()).code).to.equal('mfa.no_factor');
    });

    it('removes TOTP only after a sign-in of the last 5 minutes, and its recovery codes with it', async () => {
      move(6 * 60_000);
      const stale = await jsonRequest(server, 'DELETE', '/me/mfa/totp', token);
      expect(stale.status).to.equal(403);
      expect((await stale.json()).code).to.equal('auth.recent_sign_in_required');
      const fresh = await postJson(server, '/auth/mfa', { mfa_token: await mfaRequired(server, 'admin1@demo.example'), code: totpCode(server, secret) });
      const freshToken = (await fresh.json()).access_token;
      const removed = await jsonRequest(server, 'DELETE', '/me/mfa/totp', freshToken);
      expect(removed.status).to.equal(204);
      const overview = await (await callApi(server, '/me/mfa', freshToken)).json();
      expect(overview).to.deep.equal({ enabled: false, required: false, factors: [], recovery_codes: { remaining: 0, generated_at: null } });
      expect((await login(server, { email: 'admin1@demo.example', password: DEMO_PASSWORD })).status).to.equal(200);
      const gone = await jsonRequest(server, 'DELETE', '/me/mfa/totp', freshToken);
      expect(gone.status).to.equal(404);
    });
  });

  describe('who may change factors', () => {
    it('refuses an API key (a personal client\'s token, no sign-in behind it) and an application\'s machine token', async () => {
      const apiKey = await clientCredentialsToken(server, { scope: 'crm:read' });
      expect((await callApi(server, '/me/mfa', apiKey.access_token)).status).to.equal(200);
      const refused = await postJson(server, '/me/mfa/totp', {}, apiKey.access_token);
      expect(refused.status).to.equal(403);
      expect((await refused.json()).code).to.equal('auth.recent_sign_in_required');
      const application = await createClient(server);
      const machine = await clientCredentialsToken(server, { clientId: application.clientId, secret: application.secret, scope: 'crm:read' });
      const noUser = await postJson(server, '/me/mfa/totp', {}, machine.access_token);
      expect(noUser.status).to.equal(403);
      expect((await noUser.json()).code).to.equal('auth.user_required');
    });

    it('needs a sign-in of the last 5 minutes for a new set of recovery codes', async () => {
      const signedIn = await loginAs(server, 'premium1@demo.example');
      await enrolTotp(server, signedIn.access_token);
      move(6 * 60_000);
      const stale = await postJson(server, '/me/recovery-codes', {}, signedIn.access_token);
      expect(stale.status).to.equal(403);
      expect((await stale.json()).code).to.equal('auth.recent_sign_in_required');
    });
  });

  describe('tenancy', () => {
    it('keeps another organization\'s user out of these routes (they act on the caller only)', async () => {
      const other = await createOtherOrganization(server);
      const response = await callApi(server, '/me/mfa', other.token);
      expect(response.status).to.equal(200);
      expect((await response.json()).factors).to.deep.equal([]);
    });
  });
});

describe('Multi-factor sign-in on the in-process store (no Redis)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ REDIS_URL: '' });
    await seedDemoUsers(server);
  });
  after(async () => { await server.close(); });

  it('keeps the mfa_token single use under concurrent completions with different good codes', async () => {
    expect(server.deps.store.kind).to.equal('memory');
    freezeClock(server);
    const { recoveryCodes } = await enrolTotp(server, (await loginAs(server, 'agent1@demo.example')).access_token);
    const mfaToken = await mfaRequired(server, 'agent1@demo.example');
    const completions = await Promise.all(recoveryCodes.slice(0, 3).map((code) => postJson(server, '/auth/mfa', { mfa_token: mfaToken, code })));
    expect(completions.map((response) => response.status).sort()).to.deep.equal([200, 401, 401]);
  });
});
