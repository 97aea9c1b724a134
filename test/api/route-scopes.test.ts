import { expect } from 'chai';

import { apiRoutes } from '../../src/api/routes.ts';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { DEMO_PASSWORD, login, seedDemoUsers } from '../support/users.ts';

describe('/api/v1 scopes derived from permissions', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer();
    await seedDemoUsers(server);
  });
  after(async () => { await server.close(); });

  async function tokenWith(scope: string): Promise<string> {
    const response = await login(server, { email: 'admin1@demo.example', password: DEMO_PASSWORD, scope });
    expect(response.status).to.equal(200);
    return ((await response.json()) as { access_token: string }).access_token;
  }

  it('gives every route with a permission a scope, but the permission catalogue reads', () => {
    const unscoped = apiRoutes(server.deps).filter((route) => route.permission && !route.scope).map((route) => `${route.method} ${route.path}`);
    expect(unscoped).to.deep.equal(['get /permissions', 'get /permissions/grouped', 'get /permissions/:id']);
  });

  it('refuses /clients to a token without users:read or users:write, with insufficient_scope', async () => {
    const crmOnly = await tokenWith('crm:read');
    const read = await fetch(`${server.url}/api/v1/clients`, { headers: { authorization: `Bearer ${crmOnly}` } });
    expect(read.status).to.equal(403);
    expect(read.headers.get('www-authenticate')).to.include('scope="users:read"');
    const readOnly = await tokenWith('users:read');
    const write = await fetch(`${server.url}/api/v1/clients/initial-access-tokens`, {
      method: 'POST', headers: { authorization: `Bearer ${readOnly}`, 'content-type': 'application/json' }, body: '{}',
    });
    expect(write.status).to.equal(403);
    expect((await fetch(`${server.url}/api/v1/clients`, { headers: { authorization: `Bearer ${readOnly}` } })).status).to.equal(200);
  });

  it('lets any API token read the permission catalogue, whatever its scopes', async () => {
    const crmOnly = await tokenWith('crm:read');
    expect((await fetch(`${server.url}/api/v1/permissions`, { headers: { authorization: `Bearer ${crmOnly}` } })).status).to.equal(200);
  });
});
