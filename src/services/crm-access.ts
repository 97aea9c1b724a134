// Who sees which CRM rows (API.md "CRM", "Visibility"). Permissions on the route decide whether a
// caller may read, create, change or delete at all; this rule decides which rows:
//
//   super_admin                  every customer of every organization
//   admin, backoffice            every customer of their organization
//   anyone else (agent, premium_user, basic_user, custom roles)
//                                customers of their organization they created or are assigned to
//
// Interactions follow their customer: one is visible exactly when its customer is.
// The rule is decided from role names in one place, `seesWholeOrganization`, because it is the
// roles API.md names; a custom role therefore gets the restricted view however many permissions
// it holds. The rule is always emitted as SQL, so every statement carries it and nothing is
// filtered after loading.
import { SUPER_ADMIN } from './rbac.service.ts';
import { organizationFilter, type Actor } from './tenancy.ts';

const WHOLE_ORGANIZATION_ROLES: readonly string[] = [SUPER_ADMIN, 'admin', 'backoffice'];

/** Whether the actor sees every CRM row of its organization (of all of them, for a super admin). */
export function seesWholeOrganization(actor: Pick<Actor, 'roles'>): boolean {
  return actor.roles.some((role) => WHOLE_ORGANIZATION_ROLES.includes(role));
}

export interface SqlCondition {
  sql: string;
  params: unknown[];
  /** Whether `sql` names the customer's created_by/assigned_to (a query on interactions must then join customer). */
  byOwner: boolean;
}

/**
 * The WHERE condition limiting rows to the actor's visible customers. `organizationColumn` is the
 * organization_id column to pin (the customer's, or an interaction's own, which lets
 * organization-wide reads use the interaction indexes); `customerAlias` names the customer row.
 */
export function visibleCustomers(actor: Actor, columns: { organizationColumn?: string; customerAlias?: string } = {}): SqlCondition {
  const customer = columns.customerAlias ?? 'c';
  const organizationColumn = columns.organizationColumn ?? `${customer}.organization_id`;
  const conditions: string[] = [];
  const params: unknown[] = [];
  const organizationId = organizationFilter(actor);
  if (organizationId) {
    conditions.push(`${organizationColumn} = ?`);
    params.push(organizationId);
  }
  if (seesWholeOrganization(actor)) return { sql: conditions.join(' and ') || 'true', params, byOwner: false };
  // A token acting for no user owns nothing, so a restricted one sees nothing.
  if (!actor.userId) return { sql: 'false', params: [], byOwner: false };
  // Pinning the customer's own organization_id too lets PostgreSQL combine the (organization_id,
  // created_by) and (organization_id, assigned_to) indexes instead of scanning every customer.
  if (organizationId && organizationColumn !== `${customer}.organization_id`) {
    conditions.push(`${customer}.organization_id = ?`);
    params.push(organizationId);
  }
  conditions.push(`(${customer}.created_by = ? or ${customer}.assigned_to = ?)`);
  params.push(actor.userId, actor.userId);
  return { sql: conditions.join(' and '), params, byOwner: true };
}

/** How CRM answers name a user: "First Last", or the email when both names are empty; null for no user. */
export function displayNameSql(alias: string): string {
  return `coalesce(nullif(trim(${alias}.first_name || ' ' || ${alias}.last_name), ''), ${alias}.email)`;
}
