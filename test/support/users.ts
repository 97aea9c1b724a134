import { seedDemo } from '../../src/cli/seeders/demo.seeder.ts';
import type { TestServer } from './harness.ts';

export const DEMO_PASSWORD = 'Demo-Password-4-Tests!';

/** The demo organization ("demo") with one user per role, all with DEMO_PASSWORD. */
export async function seedDemoUsers(server: TestServer) {
  return server.deps.orm.em.fork().transactional((em) => seedDemo(em, DEMO_PASSWORD));
}

export async function login(server: TestServer, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

export async function loginAs(server: TestServer, email: string, password = DEMO_PASSWORD) {
  const response = await login(server, { email, password });
  if (response.status !== 200) throw new Error(`login failed: ${response.status} ${await response.text()}`);
  return (await response.json()) as { access_token: string; refresh_token: string; user: { id: string } };
}

export async function postJson(server: TestServer, path: string, body: unknown, token?: string): Promise<Response> {
  return fetch(`${server.url}/api/v1${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
}
