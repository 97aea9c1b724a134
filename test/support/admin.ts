// A second organization with its own admin, to prove the tenant boundary.
import { ensureBuiltinRoles, ensureOrganization, createAdministrator } from '../../src/services/bootstrap.service.ts';
import type { TestServer } from './harness.ts';
import { loginAs } from './users.ts';

export const ROOT_PASSWORD = 'root-password-for-tests-1';
export const OTHER_ADMIN = { email: 'boss@other.example', password: 'other-admin-password-7' };

export async function createOtherOrganization(server: TestServer) {
  await server.deps.orm.em.fork().transactional(async (em) => {
    const organization = await ensureOrganization(em, 'other', 'Other Company');
    await ensureBuiltinRoles(em, organization);
  });
  const admin = await createAdministrator(server.deps.orm, server.deps.clientRegistry, {
    email: OTHER_ADMIN.email, password: OTHER_ADMIN.password, organizationSlug: 'other', source: 'test',
  });
  return { adminId: admin!.userId, token: (await loginAs(server, OTHER_ADMIN.email, OTHER_ADMIN.password)).access_token };
}

export async function jsonRequest(server: TestServer, method: string, path: string, token: string, body?: unknown): Promise<Response> {
  return fetch(`${server.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}
