import { expect } from 'chai';

import { jsonRequest } from '../../support/admin.ts';
import { conversionRate } from '../../../src/services/crm-statistics.service.ts';
import { clearCrm, createCustomer, createInteraction, expectProblem, sql, startCrmWorld, type CrmWorld } from './fixtures.ts';

describe('GET /api/v1/crm/statistics', () => {
  let world: CrmWorld;
  let server: CrmWorld['server'];
  let tokens: CrmWorld['tokens'];

  async function statistics(token: string) {
    const response = await jsonRequest(server, 'GET', '/crm/statistics', token);
    expect(response.status, await response.clone().text()).to.equal(200);
    return response.json();
  }

  async function ageCustomer(id: string, days: number) {
    await sql(server, `update customer set created_at = now() - make_interval(days => ?) where id = ?`, [days, id]);
  }

  async function ageInteraction(id: string, days: number) {
    await sql(server, `update customer_interaction set created_at = now() - make_interval(days => ?) where id = ?`, [days, id]);
  }

  // A known data set: seven demo customers of given stages, owners and ages (30-day window
  // edges avoided by a day), six interactions, and one customer of another organization.
  before(async () => {
    world = await startCrmWorld();
    ({ server, tokens } = world);
    const { ids } = world;
    await clearCrm(server);
    const c1 = await createCustomer(server, tokens.agent1, { stage: 'LEAD', assigned_to: ids.agent1 });
    const c2 = await createCustomer(server, tokens.agent1, { stage: 'ACTIVE' });
    const c3 = await createCustomer(server, tokens.backoffice1, { stage: 'IN_PROGRESS', assigned_to: ids.agent1 });
    const c4 = await createCustomer(server, tokens.agent2, { stage: 'ACTIVE', assigned_to: ids.agent2 });
    const c5 = await createCustomer(server, tokens.agent2, { stage: 'LEAD', assigned_to: ids.agent2 });
    const c6 = await createCustomer(server, tokens.backoffice1, { stage: 'IN_PROGRESS', assigned_to: ids.basic1 });
    const c7 = await createCustomer(server, tokens.backoffice1, { stage: 'LEAD' });
    const foreign = await createCustomer(server, tokens.other, { stage: 'ACTIVE' });
    for (const [customer, days] of [[c1, 40], [c2, 5], [c3, 10], [c4, 100], [c5, 1], [c6, 2], [c7, 50], [foreign, 3]] as const) await ageCustomer(customer.id, days);
    for (const [customer, days] of [[c1, 35], [c2, 3], [c3, 40], [c4, 1], [c4, 60], [c6, 0]] as const) {
      await ageInteraction((await createInteraction(server, tokens.backoffice1, customer.id)).id, days);
    }
    await ageInteraction((await createInteraction(server, tokens.other, foreign.id)).id, 0);
  });
  after(async () => { await world.server.close(); });

  it('counts the whole organization for backoffice and admin, and nothing of another organization', async () => {
    const expected = {
      total_customers: 7,
      customers_by_stage: { lead: 3, in_progress: 2, active: 2 },
      recent_customers_30_days: 4,
      customers_by_staff: { 'Al Agent': 2, 'Ana Agent': 2, 'Bo Basic': 1 },
      total_interactions: 6,
      recent_interactions_30_days: 3,
      conversion_rate_percentage: 28.6,
      funnel: { lead: 3, in_progress: 2, active: 2 },
    };
    expect(await statistics(tokens.backoffice1)).to.deep.equal(expected);
    expect(await statistics(tokens.admin1)).to.deep.equal(expected);
  });

  it('counts only an agent\'s own and assigned customers, and their interactions', async () => {
    expect(await statistics(tokens.agent1)).to.deep.equal({
      total_customers: 3,
      customers_by_stage: { lead: 1, in_progress: 1, active: 1 },
      recent_customers_30_days: 2,
      customers_by_staff: { 'Al Agent': 2 },
      total_interactions: 3,
      recent_interactions_30_days: 1,
      conversion_rate_percentage: 33.3,
      funnel: { lead: 1, in_progress: 1, active: 1 },
    });
  });

  it('counts a basic user\'s assigned customer, and answers zeros (conversion 0) to one who sees none', async () => {
    expect(await statistics(tokens.basic1)).to.deep.include({
      total_customers: 1, customers_by_stage: { lead: 0, in_progress: 1, active: 0 }, recent_customers_30_days: 1,
      customers_by_staff: { 'Bo Basic': 1 }, total_interactions: 1, recent_interactions_30_days: 1, conversion_rate_percentage: 0,
    });
    expect(await statistics(tokens.premium1)).to.deep.equal({
      total_customers: 0, customers_by_stage: { lead: 0, in_progress: 0, active: 0 }, recent_customers_30_days: 0, customers_by_staff: {},
      total_interactions: 0, recent_interactions_30_days: 0, conversion_rate_percentage: 0, funnel: { lead: 0, in_progress: 0, active: 0 },
    });
  });

  it('counts every organization for the super admin, and only its own for another organization\'s admin', async () => {
    const all = await statistics(tokens.root);
    expect(all).to.deep.include({ total_customers: 8, total_interactions: 7, conversion_rate_percentage: 37.5 });
    expect(await statistics(tokens.other)).to.deep.include({ total_customers: 1, total_interactions: 1, conversion_rate_percentage: 100, customers_by_staff: {} });
  });

  it('refuses a guest (403 insufficient_scope)', async () => {
    await expectProblem(await jsonRequest(server, 'GET', '/crm/statistics', tokens.guest1), 403, 'auth.insufficient_scope');
  });

  it('keeps assignees who share a display name apart', async () => {
    await sql(server, `update app_user set first_name = 'Al', last_name = 'Agent' where username = 'agent2'`);
    try {
      expect((await statistics(tokens.backoffice1)).customers_by_staff).to.deep.equal({
        'Al Agent <agent1@demo.example>': 2, 'Al Agent <agent2@demo.example>': 2, 'Bo Basic': 1,
      });
    } finally {
      await sql(server, `update app_user set first_name = 'Ana' where username = 'agent2'`);
    }
  });

  it('rounds the conversion rate to one decimal', () => {
    expect([conversionRate(0, 0), conversionRate(1, 3), conversionRate(2, 3), conversionRate(1, 8), conversionRate(3, 3)]).to.deep.equal([0, 33.3, 66.7, 12.5, 100]);
  });
});
