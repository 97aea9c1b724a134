import type { RouteDefinition } from '../http/define-route.ts';
import { apiScopesForPermissions } from '../services/scopes.ts';
import { auditRoutes } from './audit/audit.routes.ts';
import { authRoutes } from './auth/auth.routes.ts';
import { clientsRoutes } from './clients/clients.routes.ts';
import { crmRoutes } from './crm/crm.routes.ts';
import { customersRoutes } from './customers/customers.routes.ts';
import { interactionsRoutes } from './interactions/interactions.routes.ts';
import { invitationsRoutes } from './invitations/invitations.routes.ts';
import { locationsRoutes } from './locations/locations.routes.ts';
import { consentsRoutes } from './me/consents.routes.ts';
import { meRoutes } from './me/me.routes.ts';
import { mfaRoutes } from './me/mfa.routes.ts';
import { organizationsRoutes } from './organizations/organizations.routes.ts';
import { outboxRoutes } from './outbox/outbox.routes.ts';
import { permissionsRoutes } from './permissions/permissions.routes.ts';
import { rolesRoutes } from './roles/roles.routes.ts';
import { usersRoutes } from './users/users.routes.ts';

/** What the route files together use: the composition root's Dependencies satisfies it. */
export type ApiDependencies = Parameters<typeof authRoutes>[0] & Parameters<typeof meRoutes>[0] & Parameters<typeof mfaRoutes>[0] & Parameters<typeof consentsRoutes>[0]
  & Parameters<typeof usersRoutes>[0] & Parameters<typeof rolesRoutes>[0] & Parameters<typeof permissionsRoutes>[0]
  & Parameters<typeof clientsRoutes>[0] & Parameters<typeof auditRoutes>[0] & Parameters<typeof organizationsRoutes>[0]
  & Parameters<typeof locationsRoutes>[0] & Parameters<typeof customersRoutes>[0] & Parameters<typeof interactionsRoutes>[0]
  & Parameters<typeof crmRoutes>[0] & Parameters<typeof invitationsRoutes>[0] & Parameters<typeof outboxRoutes>[0];

/**
 * The scope a route checks when it names none: the coarse scope its permission falls under (the
 * table tokens earn their scopes by, services/scopes.ts), so every route with a permission also
 * checks a scope (docs/architecture.md "Who may do what"). `scope: null` keeps a route without one.
 */
function withScope(route: RouteDefinition): RouteDefinition {
  if (route.scope !== undefined || !route.permission) return route;
  const [scope] = apiScopesForPermissions([route.permission]);
  if (!scope) throw new Error(`${route.method} ${route.path}: no scope follows from the permission ${route.permission}; name one`);
  return { ...route, scope, scopeFollowsPermission: true };
}

/** Every /api/v1 route, in one list: the router and the OpenAPI document are built from it. */
export function apiRoutes(deps: ApiDependencies): RouteDefinition[] {
  return [...authRoutes(deps), ...meRoutes(deps), ...mfaRoutes(deps), ...consentsRoutes(deps), ...usersRoutes(deps), ...rolesRoutes(deps), ...permissionsRoutes(deps), ...clientsRoutes(deps), ...auditRoutes(deps),
    ...organizationsRoutes(deps), ...invitationsRoutes(deps), ...locationsRoutes(deps), ...customersRoutes(deps), ...interactionsRoutes(deps), ...crmRoutes(deps), ...outboxRoutes(deps)].map(withScope);
}
