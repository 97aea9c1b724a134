import { defineRoute } from '../../http/define-route.ts';
import type { CrmStatisticsService } from '../../services/crm-statistics.service.ts';
import { CrmStatisticsResponse } from './crm.schemas.ts';

/** What these routes use (built in src/dependencies.ts). */
export interface CrmRoutesDependencies {
  crmStatistics: CrmStatisticsService;
}

export function crmRoutes(deps: CrmRoutesDependencies) {
  const statistics = deps.crmStatistics;
  return [
    defineRoute({
      method: 'get', path: '/crm/statistics', tag: 'CRM', scope: 'crm:read', permission: 'statistics:read',
      summary: 'Pipeline statistics over the customers you see',
      responses: { 200: CrmStatisticsResponse },
      handler: async (input) => ({ status: 200, body: await statistics.statistics(input.actor) }),
    }),
  ];
}
