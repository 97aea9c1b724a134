import type { RouteDefinition } from '../http/define-route.ts';
import type { Dependencies } from '../dependencies.ts';
import { authRoutes } from './auth/auth.routes.ts';
import { meRoutes } from './me/me.routes.ts';

/** Every /api/v1 route, in one list: the router and the OpenAPI document are built from it. */
export function apiRoutes(deps: Dependencies): RouteDefinition[] {
  return [...authRoutes(deps), ...meRoutes(deps)];
}
