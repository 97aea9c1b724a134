// CRM statistics (API.md "CRM", with seed 003's field names) over the customers the caller sees
// (crm-access.ts). Aggregates only: three statements of count/filter/group by that read the
// organization's indexes, never rows into the process, so they stay fast at 100k customers.

import { queryOne, queryRows } from '../platform/database.ts';
import type { ReadReplicas } from '../platform/read-replicas.ts';
import { displayNameSql, visibleCustomers } from './crm-access.ts';
import type { Actor } from './tenancy.ts';

export interface StageCounts {
  lead: number;
  in_progress: number;
  active: number;
}

export interface CrmStatistics {
  total_customers: number;
  customers_by_stage: StageCounts;
  recent_customers_30_days: number;
  /** Customers per assignee's display name; unassigned customers are not in it (as in seed 003). */
  customers_by_staff: Record<string, number>;
  total_interactions: number;
  recent_interactions_30_days: number;
  /** ACTIVE customers / all customers × 100, one decimal; 0 without customers. */
  conversion_rate_percentage: number;
  /** Customers per stage, in pipeline order. */
  funnel: StageCounts;
}

const RECENT = `now() - interval '30 days'`;

/** One decimal, computed on integers so 1/3 gives 33.3 and never 33.300000000000004. */
export function conversionRate(active: number, total: number): number {
  return total === 0 ? 0 : Math.round((active * 1000) / total) / 10;
}

/**
 * Staff keyed by display name; two assignees sharing a name are told apart by their email
 * rather than merged into one count.
 */
function byStaff(rows: { name: string; email: string; count: number }[]): Record<string, number> {
  const seen = new Map<string, number>();
  for (const row of rows) seen.set(row.name, (seen.get(row.name) ?? 0) + 1);
  return Object.fromEntries(rows.map((row) => [(seen.get(row.name) ?? 0) > 1 ? `${row.name} <${row.email}>` : row.name, row.count]));
}

export class CrmStatisticsService {
  readonly #reads: ReadReplicas;

  constructor(reads: ReadReplicas) {
    this.#reads = reads;
  }

  /** A report: a replica may serve it. */
  async statistics(actor: Actor): Promise<CrmStatistics> {
    const reads = await this.#reads.for(actor);
    const customers = visibleCustomers(actor);
    const interactions = visibleCustomers(actor, { organizationColumn: 'i.organization_id' });
    // Counting interactions for a caller who sees the whole organization needs no customer rows.
    const interactionsFrom = interactions.byOwner ? 'customer_interaction i join customer c on c.id = i.customer_id' : 'customer_interaction i';
    const [totals, staff, activity] = await Promise.all([
      queryOne<{ total: number; lead: number; in_progress: number; active: number; recent: number }>(reads,
        `select count(*)::int as total,
                count(*) filter (where c.stage = 'LEAD')::int as lead,
                count(*) filter (where c.stage = 'IN_PROGRESS')::int as in_progress,
                count(*) filter (where c.stage = 'ACTIVE')::int as active,
                count(*) filter (where c.created_at >= ${RECENT})::int as recent
           from customer c where ${customers.sql}`, customers.params),
      queryRows<{ name: string; email: string; count: number }>(reads,
        `select ${displayNameSql('u')} as name, u.email, count(*)::int as count
           from customer c join app_user u on u.id = c.assigned_to
          where ${customers.sql}
          group by u.id order by count desc, name, u.email`, customers.params),
      queryOne<{ total: number; recent: number }>(reads,
        `select count(*)::int as total, count(*) filter (where i.created_at >= ${RECENT})::int as recent
           from ${interactionsFrom} where ${interactions.sql}`, interactions.params),
    ]);
    const stages: StageCounts = { lead: totals?.lead ?? 0, in_progress: totals?.in_progress ?? 0, active: totals?.active ?? 0 };
    const total = totals?.total ?? 0;
    return {
      total_customers: total,
      customers_by_stage: stages,
      recent_customers_30_days: totals?.recent ?? 0,
      customers_by_staff: byStaff(staff),
      total_interactions: activity?.total ?? 0,
      recent_interactions_30_days: activity?.recent ?? 0,
      conversion_rate_percentage: conversionRate(stages.active, total),
      funnel: { ...stages },
    };
  }
}
