// Audit rows and a second organization for the audit tests.
import { ensureOrganization, createAdministrator } from '../../../src/services/bootstrap.service.ts';
import { executeStatement, queryOne, queryRows } from '../../../src/platform/database.ts';
import type { TestServer } from '../../support/harness.ts';
import { DEMO_PASSWORD } from '../../support/users.ts';

export const ROOT_PASSWORD = 'root-password-for-audit-tests-1';

/** Another organization ("acme") with an admin, admin@acme.example, who has DEMO_PASSWORD. */
export async function seedOtherOrganization(server: TestServer): Promise<{ organizationId: string; adminId: string }> {
  await server.deps.orm.em.fork().transactional((em) => ensureOrganization(em, 'acme', 'Acme Corporation'));
  const admin = await createAdministrator(server.deps.orm, server.deps.clientRegistry, {
    email: 'admin@acme.example', password: DEMO_PASSWORD, organizationSlug: 'acme', source: 'test',
  });
  return { organizationId: await organizationIdOf(server, 'acme'), adminId: admin!.userId };
}

export async function organizationIdOf(server: TestServer, slug: string): Promise<string> {
  return (await queryOne<{ id: string }>(server.deps.orm.em, 'select id from organization where slug = ?', [slug]))!.id;
}

export async function userIdOf(server: TestServer, email: string): Promise<string> {
  return (await queryOne<{ id: string }>(server.deps.orm.em, 'select id from app_user where email = ?', [email]))!.id;
}

/**
 * `count` audit rows in one statement. `at` (SQL) gives each row's time from `n`, 1..count; the
 * default puts them a second apart, ending a minute ago.
 */
export async function insertAuditRows(server: TestServer, options: {
  count: number; organizationId: string | null; action?: string; resource?: string; status?: 'success' | 'failure';
  actorId?: string | null; targetId?: string | null; at?: string; userAgent?: string; details?: string;
}): Promise<void> {
  await executeStatement(server.deps.orm.em,
    `insert into audit_log (id, occurred_at, organization_id, actor_id, target_id, action, resource, resource_id, status, ip, user_agent, details)
     select gen_random_uuid(), ${options.at ?? "now() - interval '1 minute' - n * interval '1 second'"}, ?, ?, ?, ?, ?, 'r-' || n, ?, '203.0.113.7', ?, ${options.details ?? `jsonb_build_object('n', n)`}
       from generate_series(1, ?) as n`,
    [options.organizationId, options.actorId ?? null, options.targetId ?? null, options.action ?? 'test.event', options.resource ?? 'test',
      options.status ?? 'success', options.userAgent ?? 'fixture-agent/1.0', options.count],
  );
}

/** Ids as the API must list them: newest first, ties broken by id. */
export async function auditIds(server: TestServer, where: string, params: unknown[] = []): Promise<string[]> {
  const rows = await queryRows<{ id: string }>(server.deps.orm.em, `select id from audit_log where ${where} order by occurred_at desc, id desc`, params);
  return rows.map((row) => row.id);
}

/** Runs `work` while the demo organization's `role` lacks `permission`, then gives it back. */
export async function withoutPermission(server: TestServer, role: string, permission: string, work: () => Promise<void>): Promise<void> {
  const pair = `select r.id as role_id, p.id as permission_id from role r, permission p
                 where r.name = ? and p.name = ? and r.organization_id = (select id from organization where slug = 'demo')`;
  const em = server.deps.orm.em;
  await executeStatement(em, `delete from role_permission where (role_id, permission_id) in (${pair})`, [role, permission]);
  await server.deps.permissionResolver.invalidate();
  try {
    await work();
  } finally {
    await executeStatement(em, `insert into role_permission (role_id, permission_id) ${pair}`, [role, permission]);
    await server.deps.permissionResolver.invalidate();
  }
}

/** RFC 4180 CSV (quoted fields may hold commas, quotes and newlines) as records keyed by the header. */
export function parseCsv(text: string): Record<string, string>[] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i]!;
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') { field += '"'; i += 1; } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"') quoted = true;
    else if (char === ',') { row.push(field); field = ''; } else if (char === '\n') { row.push(field); rows.push(row); row = []; field = ''; } else field += char;
  }
  if (field !== '' || row.length > 0) { row.push(field); rows.push(row); }
  const [header = [], ...records] = rows;
  return records.map((record) => Object.fromEntries(header.map((name, index) => [name, record[index] ?? ''])));
}
