import type { Dependencies } from '../../dependencies.ts';
import { defineRoute } from '../../http/define-route.ts';
import { CrmStatisticsService } from '../../services/crm-statistics.service.ts';
import { CrmStatisticsResponse } from './crm.schemas.ts';

export function crmRoutes(deps: Dependencies) {
  const statistics = new CrmStatisticsService(deps.orm);
  return [
    defineRoute({
      method: 'get', path: '/crm/statistics', tag: 'CRM', scope: 'crm:read', permission: 'statistics:read',
      summary: 'Pipeline statistics over the customers you see',
      responses: { 200: CrmStatisticsResponse },
      handler: async (input) => ({ status: 200, body: await statistics.statistics(input.actor) }),
    }),
  ];
}
