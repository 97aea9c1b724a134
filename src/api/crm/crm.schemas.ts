import { z } from 'zod';

const StageCounts = z.object({ lead: z.number().int(), in_progress: z.number().int(), active: z.number().int() }).meta({ id: 'CrmStageCounts' });

/** Seed 003's statistics, over the customers the caller sees. */
export const CrmStatisticsResponse = z.object({
  total_customers: z.number().int(),
  customers_by_stage: StageCounts,
  recent_customers_30_days: z.number().int(),
  customers_by_staff: z.record(z.string(), z.number().int()),
  total_interactions: z.number().int(),
  recent_interactions_30_days: z.number().int(),
  conversion_rate_percentage: z.number(),
  funnel: StageCounts,
}).meta({ id: 'CrmStatistics' });
