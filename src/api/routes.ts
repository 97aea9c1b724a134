import type { RouteDefinition } from '../http/define-route.ts';
import type { Dependencies } from '../dependencies.ts';
import { auditRoutes } from './audit/audit.routes.ts';
import { authRoutes } from './auth/auth.routes.ts';
import { clientsRoutes } from './clients/clients.routes.ts';
import { crmRoutes } from './crm/crm.routes.ts';
import { customersRoutes } from './customers/customers.routes.ts';
import { interactionsRoutes } from './interactions/interactions.routes.ts';
import { locationsRoutes } from './locations/locations.routes.ts';
import { consentsRoutes } from './me/consents.routes.ts';
import { meRoutes } from './me/me.routes.ts';
import { organizationsRoutes } from './organizations/organizations.routes.ts';
import { permissionsRoutes } from './permissions/permissions.routes.ts';
import { rolesRoutes } from './roles/roles.routes.ts';
import { usersRoutes } from './users/users.routes.ts';

/** Every /api/v1 route, in one list: the router and the OpenAPI document are built from it. */
export function apiRoutes(deps: Dependencies): RouteDefinition[] {
  return [...authRoutes(deps), ...meRoutes(deps), ...consentsRoutes(deps), ...usersRoutes(deps), ...rolesRoutes(deps), ...permissionsRoutes(deps), ...clientsRoutes(deps), ...auditRoutes(deps),
    ...organizationsRoutes(deps), ...locationsRoutes(deps), ...customersRoutes(deps), ...interactionsRoutes(deps), ...crmRoutes(deps)];
}
