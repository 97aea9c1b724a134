import { expect } from 'chai';

import { queryRows } from '../../../src/platform/database.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { createOtherOrganization, jsonRequest, ROOT_PASSWORD } from '../../support/admin.ts';
import { enrolTotp, freezeClock, TOTP_PERIOD_MS } from '../../support/mfa.ts';
import { callApi } from '../../support/oauth.ts';
import { DEMO_PASSWORD, login, loginAs, seedDemoUsers } from '../../support/users.ts';

describe('MFA policy and the admin reset', () => {
  let server: TestServer;
  let root: string;
  let demoAdmin: string;

  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
    await seedDemoUsers(server);
    freezeClock(server);
    root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
    demoAdmin = (await loginAs(server, 'admin1@demo.example')).access_token;
  });
  after(async () => { await server.close(); });

  describe('DELETE /api/v1/users/:id/mfa', () => {
    let agent: { access_token: string; user: { id: string } };
    before(async () => {
      agent = await loginAs(server, 'agent1@demo.example');
      await enrolTotp(server, agent.access_token);
    });

    it('answers 404 to another organization\'s admin, for an unknown id, and 422 for a malformed one', async () => {
      const other = await createOtherOrganization(server);
      const foreign = await jsonRequest(server, 'DELETE', `/users/${agent.user.id}/mfa`, other.token);
      expect(foreign.status).to.equal(404);
      expect((await jsonRequest(server, 'DELETE', `/users/${crypto.randomUUID()}/mfa`, demoAdmin)).status).to.equal(404);
      expect((await jsonRequest(server, 'DELETE', '/users/not-a-uuid/mfa', demoAdmin)).status).to.equal(422);
      expect((await jsonRequest(server, 'DELETE', '/users/%00/mfa', demoAdmin)).status).to.be.within(400, 422);
      expect((await queryRows(server.deps.orm.em, 'select 1 from mfa_factor where user_id = ?', [agent.user.id]))).to.have.length(1);
    });

    it('is refused to a role without users:write, and on oneself', async () => {
      const backoffice = await loginAs(server, 'backoffice1@demo.example');
      const refused = await jsonRequest(server, 'DELETE', `/users/${agent.user.id}/mfa`, backoffice.access_token);
      expect(refused.status).to.equal(403);
      const me = await callApi(server, '/me', demoAdmin);
      const ownId = (await me.json()).id;
      expect((await jsonRequest(server, 'DELETE', `/users/${ownId}/mfa`, demoAdmin)).status).to.equal(403);
    });

    it('removes the factors and recovery codes, ends the user\'s tokens, and is audited', async () => {
      const response = await jsonRequest(server, 'DELETE', `/users/${agent.user.id}/mfa`, demoAdmin);
      expect(response.status).to.equal(204);
      expect((await callApi(server, '/me', agent.access_token)).status).to.equal(401);
      expect(await queryRows(server.deps.orm.em, 'select 1 from mfa_factor where user_id = ?', [agent.user.id])).to.have.length(0);
      expect(await queryRows(server.deps.orm.em, 'select 1 from recovery_code where user_id = ?', [agent.user.id])).to.have.length(0);
      expect((await login(server, { email: 'agent1@demo.example', password: DEMO_PASSWORD })).status).to.equal(200);
      const audit = await queryRows<{ details: Record<string, number> }>(server.deps.orm.em,
        `select details from audit_log where action = 'user.mfa_reset' and target_id = ?`, [agent.user.id]);
      expect(audit).to.have.length(1);
      expect(audit[0]!.details).to.deep.equal({ factors_removed: 1, recovery_codes_removed: 10 });
    });

    it('lets a super admin reset a user of any organization', async () => {
      const agent2 = await loginAs(server, 'agent2@demo.example');
      await enrolTotp(server, agent2.access_token);
      expect((await jsonRequest(server, 'DELETE', `/users/${agent2.user.id}/mfa`, root)).status).to.equal(204);
    });
  });

  describe('an organization\'s mfa_required', () => {
    let demoId: string;
    before(async () => {
      demoId = (await (await callApi(server, '/organizations/current', demoAdmin)).json()).id;
    });

    it('is set by a super admin, checked as a boolean, and shown to members', async () => {
      expect((await jsonRequest(server, 'PATCH', `/organizations/${demoId}`, root, { mfa_required: 'yes' })).status).to.equal(422);
      expect((await jsonRequest(server, 'PATCH', `/organizations/${demoId}`, demoAdmin, { mfa_required: true })).status).to.equal(403);
      const patched = await jsonRequest(server, 'PATCH', `/organizations/${demoId}`, root, { mfa_required: true });
      expect(patched.status).to.equal(200);
      expect((await patched.json()).mfa_required).to.equal(true);
      const put = await jsonRequest(server, 'PUT', `/organizations/${demoId}`, root, { name: 'Demo Company' });
      expect((await put.json()).mfa_required, 'a PUT that leaves it out keeps it').to.equal(true);
      const member = await callApi(server, '/me/mfa', demoAdmin);
      expect((await member.json()).required).to.equal(true);
    });

    it('refuses API tokens to a member without a factor, and records why', async () => {
      const refused = await login(server, { email: 'premium1@demo.example', password: DEMO_PASSWORD });
      expect(refused.status).to.equal(403);
      expect(await refused.json()).to.include({ code: 'auth.mfa_enrollment_required' });
      const audit = await queryRows(server.deps.orm.em,
        `select 1 from audit_log where action = 'auth.login' and details->>'second_factor' = 'enrolment_required'`);
      expect(audit).to.have.length.at.least(1);
    });

    after(async () => {
      await jsonRequest(server, 'PATCH', `/organizations/${demoId}`, root, { mfa_required: false });
    });
  });
});

describe('MFA_REQUIRED_FOR_ADMINS', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD, MFA_REQUIRED_FOR_ADMINS: 'true' });
    await seedDemoUsers(server);
  });
  after(async () => { await server.close(); });

  it('asks every super admin without a factor to enrol before any token, and no one else', async () => {
    const refused = await login(server, { email: 'root@example.com', password: ROOT_PASSWORD });
    expect(refused.status).to.equal(403);
    expect((await refused.json()).code).to.equal('auth.mfa_enrollment_required');
    expect((await login(server, { email: 'admin1@demo.example', password: DEMO_PASSWORD })).status).to.equal(200);
  });

  it('lets a super admin with a factor through to the code step', async () => {
    // Enrolment through the service, as the sign-in page does for a policy.
    const move = freezeClock(server);
    const actor = { userId: server.admin.userId };
    const { secret } = await server.deps.mfa.startTotp(actor);
    const { TOTP, Secret } = await import('otpauth');
    await server.deps.mfa.confirmTotp(actor, TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: server.deps.clock.now() }));
    move(TOTP_PERIOD_MS);
    const response = await login(server, { email: 'root@example.com', password: ROOT_PASSWORD });
    expect(response.status).to.equal(403);
    expect((await response.json()).code).to.equal('auth.mfa_required');
  });
});
