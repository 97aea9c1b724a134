// Shared setup of the CRM tests: the demo organization with one user per role, its seeded
// customers removed so each file starts from a known data set, and a second organization whose
// admin proves the tenant boundary.
import { expect } from 'chai';

import { executeStatement, queryOne, queryRows } from '../../../src/platform/database.ts';
import type { CustomerDetail } from '../../../src/services/customers.service.ts';
import type { InteractionView } from '../../../src/services/crm-interactions.service.ts';
import { createOtherOrganization, jsonRequest, ROOT_PASSWORD } from '../../support/admin.ts';
import { startTestServer, type TestServer } from '../../support/harness.ts';
import { loginAs, seedDemoUsers } from '../../support/users.ts';

export const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

export const DEMO_ROLES = ['admin1', 'backoffice1', 'agent1', 'agent2', 'premium1', 'basic1', 'guest1'] as const;
export type DemoUser = (typeof DEMO_ROLES)[number];

export interface CrmWorld {
  server: TestServer;
  demoOrganizationId: string;
  /** Access tokens by demo username, plus `root` (super admin) and `other` (admin of the other organization). */
  tokens: Record<DemoUser | 'root' | 'other', string>;
  /** User ids by demo username, plus `other`. */
  ids: Record<DemoUser | 'other', string>;
}

/** What the API answers, as the services type it (the JSON of a detail). */
export type CustomerBody = CustomerDetail;
export type InteractionBody = InteractionView;

export async function startCrmWorld(): Promise<CrmWorld> {
  const server = await startTestServer({ ADMIN_PASSWORD: ROOT_PASSWORD });
  const seeded = await seedDemoUsers(server);
  const ids = {} as CrmWorld['ids'];
  for (const user of seeded) ids[user.username as DemoUser] = (await queryOne<{ id: string }>(server.deps.orm.em, 'select id from app_user where email = ?', [user.email]))!.id;
  const tokens = {} as CrmWorld['tokens'];
  for (const username of DEMO_ROLES) tokens[username] = (await loginAs(server, `${username}@demo.example`)).access_token;
  tokens.root = (await loginAs(server, 'root@example.com', ROOT_PASSWORD)).access_token;
  const other = await createOtherOrganization(server);
  tokens.other = other.token;
  ids.other = other.adminId;
  const demoOrganizationId = (await queryOne<{ id: string }>(server.deps.orm.em, `select id from organization where slug = 'demo'`))!.id;
  return { server, demoOrganizationId, tokens, ids };
}

/** Empties the CRM of every organization (interactions go with their customers) and its audit rows. */
export async function clearCrm(server: TestServer): Promise<void> {
  await sql(server, 'delete from customer');
  await sql(server, `delete from audit_log where resource in ('customer', 'interaction')`);
}

export async function sql(server: TestServer, statement: string, params: unknown[] = []): Promise<number> {
  return executeStatement(server.deps.orm.em, statement, params);
}

export async function rows<T>(server: TestServer, query: string, params: unknown[] = []): Promise<T[]> {
  return queryRows<T>(server.deps.orm.em, query, params);
}

let sequence = 0;

/** A customer made through the API by `token`; fields default to a fresh, valid set. */
export async function createCustomer(server: TestServer, token: string, fields: Record<string, unknown> = {}): Promise<CustomerBody> {
  sequence += 1;
  const response = await jsonRequest(server, 'POST', '/customers', token, {
    first_name: 'Test', last_name: `Customer${sequence}`, email: `customer${sequence}@example.com`, ...fields,
  });
  expect(response.status, await response.clone().text()).to.equal(201);
  return (await response.json()) as CustomerBody;
}

export async function createInteraction(server: TestServer, token: string, customer: string, fields: Record<string, unknown> = {}): Promise<InteractionBody> {
  const response = await jsonRequest(server, 'POST', '/interactions', token, { customer, interaction_type: 'CALL', subject: 'Call', ...fields });
  expect(response.status, await response.clone().text()).to.equal(201);
  return (await response.json()) as InteractionBody;
}

export async function auditRows(server: TestServer, action: string, resourceId: string) {
  return rows<{ actor_id: string | null; organization_id: string | null; details: Record<string, unknown> | null }>(server,
    'select actor_id, organization_id, details from audit_log where action = ? and resource_id = ?', [action, resourceId]);
}

export async function expectProblem(response: Response, status: number, code?: string): Promise<{ code: string; errors?: { path: (string | number)[] }[] }> {
  expect(response.status, await response.clone().text()).to.equal(status);
  expect(response.headers.get('content-type')).to.match(/^application\/problem\+json/);
  const problem = await response.json();
  if (code) expect(problem.code).to.equal(code);
  return problem;
}

/** The 422 names this field. */
export async function expectFieldError(response: Response, path: (string | number)[]): Promise<void> {
  const problem = await expectProblem(response, 422, 'request.validation_failed');
  expect(problem.errors?.map((error) => error.path), JSON.stringify(problem)).to.deep.include(path);
}
