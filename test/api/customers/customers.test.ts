import { expect } from 'chai';

import { jsonRequest } from '../../support/admin.ts';
import {
  auditRows, clearCrm, createCustomer, createInteraction, expectFieldError, expectProblem, rows, sql, startCrmWorld, UNKNOWN_ID,
  type CrmWorld, type CustomerBody,
} from '../crm/fixtures.ts';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('/api/v1/customers', () => {
  let world: CrmWorld;
  let server: CrmWorld['server'];
  let tokens: CrmWorld['tokens'];
  let ids: CrmWorld['ids'];

  async function get(token: string, path: string) {
    return jsonRequest(server, 'GET', path, token);
  }

  async function listIds(token: string, query = ''): Promise<string[]> {
    const response = await get(token, `/customers?page_size=100${query}`);
    expect(response.status, await response.clone().text()).to.equal(200);
    return (await response.json()).results.map((customer: CustomerBody) => customer.id);
  }

  before(async () => {
    world = await startCrmWorld();
    ({ server, tokens, ids } = world);
  });
  after(async () => { await world.server.close(); });

  describe('the demo seed', () => {
    it('gives the demo organization a pipeline assigned to its agents, with interactions', async () => {
      const all = await (await get(tokens.backoffice1, '/customers?page_size=100')).json();
      expect(all.count).to.equal(12);
      expect(new Set(all.results.map((customer: CustomerBody) => customer.stage))).to.deep.equal(new Set(['LEAD', 'IN_PROGRESS', 'ACTIVE']));
      expect(all.results.filter((customer: CustomerBody) => customer.assigned_to_name === 'Al Agent')).to.have.length(5);
      expect((await (await get(tokens.agent1, '/customers')).json()).count).to.equal(5);
      expect((await (await get(tokens.basic1, '/customers')).json()).count).to.equal(1);
      expect((await (await get(tokens.backoffice1, '/interactions')).json()).count).to.be.greaterThan(12);
    });
  });

  describe('POST /customers', () => {
    before(async () => { await clearCrm(server); });

    it('creates a customer in the caller\'s organization, with display names, ISO timestamps and an audit row', async () => {
      const response = await jsonRequest(server, 'POST', '/customers', tokens.agent1, {
        first_name: 'Jane', last_name: 'Smith', email: 'Jane.Smith@Example.com', phone: '+1 555 0100', company: 'Tech Solutions',
        address: '1 Main St', notes: 'Met at a fair', assigned_to: ids.agent2,
      });
      expect(response.status).to.equal(201);
      const customer = (await response.json()) as CustomerBody;
      expect(customer).to.include({
        first_name: 'Jane', last_name: 'Smith', email: 'Jane.Smith@Example.com', phone: '+1 555 0100', company: 'Tech Solutions',
        address: '1 Main St', notes: 'Met at a fair', stage: 'LEAD', organization_id: world.demoOrganizationId,
        created_by: ids.agent1, created_by_name: 'Al Agent', assigned_to: ids.agent2, assigned_to_name: 'Ana Agent', interaction_count: 0,
      });
      expect(customer.interactions).to.deep.equal([]);
      expect(customer.created_at).to.match(ISO);
      expect(customer.updated_at).to.match(ISO);
      const audit = await auditRows(server, 'customer.create', customer.id);
      expect(audit).to.have.length(1);
      expect(audit[0]).to.include({ actor_id: ids.agent1, organization_id: world.demoOrganizationId });
    });

    it('lets a premium user create, with a given stage and no assignee; empty optional text is stored as none', async () => {
      const customer = await createCustomer(server, tokens.premium1, { stage: 'ACTIVE', company: '', phone: null });
      expect(customer).to.include({ stage: 'ACTIVE', assigned_to: null, assigned_to_name: null, created_by_name: 'Pia Premium', phone: null, company: null });
    });

    it('refuses a basic user and a guest (403: their tokens cannot carry crm:write), writing nothing', async () => {
      const body = { first_name: 'No', last_name: 'Body', email: 'nobody@example.com' };
      await expectProblem(await jsonRequest(server, 'POST', '/customers', tokens.basic1, body), 403, 'auth.insufficient_scope');
      await expectProblem(await jsonRequest(server, 'POST', '/customers', tokens.guest1, body), 403, 'auth.insufficient_scope');
      expect((await rows(server, `select 1 from customer where email = 'nobody@example.com'`))).to.have.length(0);
    });

    it('answers 409 customer.email_taken for an email of the organization in any case, even one the caller cannot see', async () => {
      await createCustomer(server, tokens.agent2, { email: 'taken@example.com' });
      await expectProblem(await jsonRequest(server, 'POST', '/customers', tokens.agent1, { first_name: 'A', last_name: 'B', email: 'TAKEN@example.com' }), 409, 'customer.email_taken');
      // Another organization has its own namespace of emails.
      await createCustomer(server, tokens.other, { email: 'taken@example.com' });
    });

    it('answers 422 naming the field for missing, mistyped, oversized and malformed input', async () => {
      const valid = { first_name: 'A', last_name: 'B', email: 'valid@example.com' };
      const post = (body: unknown) => jsonRequest(server, 'POST', '/customers', tokens.agent1, body);
      await expectFieldError(await post({ last_name: 'B', email: 'x@example.com' }), ['body', 'first_name']);
      await expectFieldError(await post({ ...valid, email: undefined }), ['body', 'email']);
      await expectFieldError(await post({ ...valid, first_name: 5 }), ['body', 'first_name']);
      await expectFieldError(await post({ ...valid, first_name: '   ' }), ['body', 'first_name']);
      await expectFieldError(await post({ ...valid, first_name: 'x'.repeat(101) }), ['body', 'first_name']);
      await expectFieldError(await post({ ...valid, last_name: 'x'.repeat(101) }), ['body', 'last_name']);
      await expectFieldError(await post({ ...valid, phone: '1'.repeat(21) }), ['body', 'phone']);
      await expectFieldError(await post({ ...valid, company: 'x'.repeat(201) }), ['body', 'company']);
      await expectFieldError(await post({ ...valid, address: 'x'.repeat(2001) }), ['body', 'address']);
      await expectFieldError(await post({ ...valid, notes: 'x'.repeat(2001) }), ['body', 'notes']);
      await expectFieldError(await post({ ...valid, email: 'not-an-email' }), ['body', 'email']);
      await expectFieldError(await post({ ...valid, stage: 'WON' }), ['body', 'stage']);
      await expectFieldError(await post({ ...valid, assigned_to: 'agent2' }), ['body', 'assigned_to']);
      await expectFieldError(await post({ ...valid, owner: ids.agent1 }), ['body']);
      await expectProblem(await post([valid]), 422, 'request.validation_failed');
      expect(await rows(server, `select 1 from customer where email = 'valid@example.com'`)).to.have.length(0);
    });

    it('answers 422 on assigned_to when it names no active user of the organization', async () => {
      const valid = { first_name: 'A', last_name: 'B', email: 'assignee@example.com' };
      const post = (assignedTo: string) => jsonRequest(server, 'POST', '/customers', tokens.agent1, { ...valid, assigned_to: assignedTo });
      await expectFieldError(await post(ids.other), ['body', 'assigned_to']);
      await expectFieldError(await post(UNKNOWN_ID), ['body', 'assigned_to']);
      await sql(server, 'update app_user set is_active = false where id = ?', [ids.guest1]);
      try {
        await expectFieldError(await post(ids.guest1), ['body', 'assigned_to']);
      } finally {
        await sql(server, 'update app_user set is_active = true where id = ?', [ids.guest1]);
      }
    });
  });

  describe('visibility per role', () => {
    let own1: CustomerBody; // created by agent1
    let handedTo1: CustomerBody; // created by backoffice, assigned to agent1
    let handedTo2: CustomerBody; // created by backoffice, assigned to agent2
    let handedToBasic: CustomerBody; // created by backoffice, assigned to basic1
    let own2: CustomerBody; // created by agent2
    let foreign: CustomerBody; // of the other organization

    before(async () => {
      await clearCrm(server);
      own1 = await createCustomer(server, tokens.agent1);
      handedTo1 = await createCustomer(server, tokens.backoffice1, { assigned_to: ids.agent1 });
      handedTo2 = await createCustomer(server, tokens.backoffice1, { assigned_to: ids.agent2 });
      handedToBasic = await createCustomer(server, tokens.backoffice1, { assigned_to: ids.basic1 });
      own2 = await createCustomer(server, tokens.agent2);
      foreign = await createCustomer(server, tokens.other);
    });

    it('shows an agent only the customers it created or is assigned', async () => {
      expect(await listIds(tokens.agent1)).to.have.members([own1.id, handedTo1.id]);
      expect(await listIds(tokens.agent2)).to.have.members([own2.id, handedTo2.id]);
      for (const hidden of [handedTo2, handedToBasic, own2, foreign]) {
        await expectProblem(await get(tokens.agent1, `/customers/${hidden.id}`), 404, 'resource.not_found');
        await expectProblem(await jsonRequest(server, 'PATCH', `/customers/${hidden.id}`, tokens.agent1, { notes: 'x' }), 404);
        await expectProblem(await jsonRequest(server, 'PATCH', `/customers/${hidden.id}/stage`, tokens.agent1, { stage: 'ACTIVE' }), 404);
      }
      expect((await get(tokens.agent1, `/customers/${handedTo1.id}`)).status).to.equal(200);
    });

    it('shows a basic user the customers assigned to it, read-only', async () => {
      expect(await listIds(tokens.basic1)).to.deep.equal([handedToBasic.id]);
      expect((await get(tokens.basic1, `/customers/${handedToBasic.id}`)).status).to.equal(200);
      await expectProblem(await get(tokens.basic1, `/customers/${own1.id}`), 404);
      await expectProblem(await jsonRequest(server, 'PATCH', `/customers/${handedToBasic.id}`, tokens.basic1, { notes: 'x' }), 403, 'auth.insufficient_scope');
      await expectProblem(await jsonRequest(server, 'DELETE', `/customers/${handedToBasic.id}`, tokens.basic1), 403, 'auth.insufficient_scope');
    });

    it('shows backoffice and admin the whole organization, and the super admin every organization', async () => {
      const demo = [own1.id, handedTo1.id, handedTo2.id, handedToBasic.id, own2.id];
      expect(await listIds(tokens.backoffice1)).to.have.members(demo);
      expect(await listIds(tokens.admin1)).to.have.members(demo);
      expect(await listIds(tokens.root)).to.have.members([...demo, foreign.id]);
      expect(await listIds(tokens.other)).to.deep.equal([foreign.id]);
      expect(await listIds(tokens.premium1)).to.deep.equal([]);
    });

    it('refuses a guest every read (403 insufficient_scope)', async () => {
      const list = await get(tokens.guest1, '/customers');
      await expectProblem(list, 403, 'auth.insufficient_scope');
      expect(list.headers.get('www-authenticate')).to.include('insufficient_scope');
      await expectProblem(await get(tokens.guest1, `/customers/${handedToBasic.id}`), 403, 'auth.insufficient_scope');
    });

    it('answers 404, never 403, for another organization\'s customer on every id-taking route', async () => {
      const full = { first_name: 'X', last_name: 'Y', email: 'x.y@example.com' };
      for (const [token, target] of [[tokens.admin1, foreign], [tokens.other, own1]] as const) {
        for (const [method, path, body] of [
          ['GET', `/customers/${target.id}`], ['PUT', `/customers/${target.id}`, full], ['PATCH', `/customers/${target.id}`, { notes: 'x' }],
          ['PATCH', `/customers/${target.id}/stage`, { stage: 'ACTIVE' }], ['DELETE', `/customers/${target.id}`],
        ] as [string, string, unknown?][]) {
          await expectProblem(await jsonRequest(server, method, path, token, body), 404, 'resource.not_found');
        }
      }
      const [row] = await rows<{ notes: string | null; stage: string }>(server, 'select notes, stage from customer where id = ?', [foreign.id]);
      expect(row).to.deep.equal({ notes: null, stage: 'LEAD' });
    });

    it('follows a reassignment: the creator keeps its customer, a former assignee loses it', async () => {
      const mine = await createCustomer(server, tokens.agent1);
      const moved = await jsonRequest(server, 'PATCH', `/customers/${mine.id}`, tokens.agent1, { assigned_to: ids.agent2 });
      expect(moved.status).to.equal(200);
      expect(await moved.json()).to.include({ assigned_to: ids.agent2, assigned_to_name: 'Ana Agent' });
      expect((await get(tokens.agent1, `/customers/${mine.id}`)).status).to.equal(200);
      expect((await get(tokens.agent2, `/customers/${mine.id}`)).status).to.equal(200);

      const handed = await createCustomer(server, tokens.backoffice1, { assigned_to: ids.agent1 });
      expect((await jsonRequest(server, 'PATCH', `/customers/${handed.id}`, tokens.backoffice1, { assigned_to: ids.agent2 })).status).to.equal(200);
      await expectProblem(await get(tokens.agent1, `/customers/${handed.id}`), 404);
    });
  });

  describe('GET /customers (paging, filters, search)', () => {
    let customers: CustomerBody[];

    before(async () => {
      await clearCrm(server);
      customers = [
        await createCustomer(server, tokens.backoffice1, { first_name: 'Grace', last_name: 'Hopper', email: 'grace@navy.example', company: 'US Navy', stage: 'ACTIVE', assigned_to: ids.agent1 }),
        await createCustomer(server, tokens.backoffice1, { first_name: 'Alan', last_name: 'Turing', email: 'alan@bletchley.example', company: 'GC&CS', stage: 'IN_PROGRESS', assigned_to: ids.agent2 }),
        await createCustomer(server, tokens.backoffice1, { first_name: 'Ada', last_name: 'Lovelace', email: 'ada@engine.example', company: '100% Analytical', stage: 'LEAD', assigned_to: ids.agent1 }),
        await createCustomer(server, tokens.backoffice1, { first_name: 'Edsger', last_name: 'Dijkstra', email: 'edsger@eindhoven.example', company: 'TU_Eindhoven', stage: 'LEAD' }),
        await createCustomer(server, tokens.backoffice1, { first_name: 'Barbara', last_name: 'Liskov', email: 'barbara@mit.example', company: 'MIT', stage: 'ACTIVE' }),
      ];
    });

    it('answers the list envelope, newest first', async () => {
      const body = await (await get(tokens.backoffice1, '/customers')).json();
      expect(body).to.include({ count: 5, page: 1, page_size: 20, next: null, previous: null });
      expect(body.results.map((customer: CustomerBody) => customer.id)).to.deep.equal(customers.map((customer) => customer.id).reverse());
      expect(body.results[0]).to.not.have.property('interactions');
    });

    it('pages with next and previous, and a tie on created_at never repeats or skips a row', async () => {
      await sql(server, `update customer set created_at = '2026-01-01T00:00:00Z'`);
      const seen: string[] = [];
      for (const page of [1, 2, 3]) {
        const body = await (await get(tokens.backoffice1, `/customers?page_size=2&page=${page}`)).json();
        expect(body.count).to.equal(5);
        expect(body.next === null).to.equal(page === 3);
        expect(body.previous === null).to.equal(page === 1);
        if (body.next) expect(body.next).to.include(`page=${page + 1}`).and.include('page_size=2');
        seen.push(...body.results.map((customer: CustomerBody) => customer.id));
      }
      expect(seen).to.have.length(5);
      expect(seen).to.have.members(customers.map((customer) => customer.id));
    });

    it('filters by stage and assignee', async () => {
      expect(await listIds(tokens.backoffice1, '&stage=LEAD')).to.have.members([customers[2]!.id, customers[3]!.id]);
      expect(await listIds(tokens.backoffice1, '&stage=ACTIVE')).to.have.members([customers[0]!.id, customers[4]!.id]);
      expect(await listIds(tokens.backoffice1, `&assigned_to=${ids.agent1}`)).to.have.members([customers[0]!.id, customers[2]!.id]);
      expect(await listIds(tokens.backoffice1, `&assigned_to=${ids.agent1}&stage=ACTIVE`)).to.deep.equal([customers[0]!.id]);
      // Filters narrow what the caller sees; they never widen it.
      expect(await listIds(tokens.agent1, `&assigned_to=${ids.agent2}`)).to.deep.equal([]);
    });

    it('searches names, full name, email and company case-insensitively, with % and _ taken literally', async () => {
      expect(await listIds(tokens.backoffice1, '&search=hopper')).to.deep.equal([customers[0]!.id]);
      expect(await listIds(tokens.backoffice1, '&search=ALAN')).to.deep.equal([customers[1]!.id]);
      expect(await listIds(tokens.backoffice1, `&search=${encodeURIComponent('ada lovelace')}`)).to.deep.equal([customers[2]!.id]);
      expect(await listIds(tokens.backoffice1, '&search=eindhoven.example')).to.deep.equal([customers[3]!.id]);
      expect(await listIds(tokens.backoffice1, '&search=mit')).to.deep.equal([customers[4]!.id]);
      expect(await listIds(tokens.backoffice1, `&search=${encodeURIComponent('%')}`)).to.deep.equal([customers[2]!.id]);
      expect(await listIds(tokens.backoffice1, `&search=${encodeURIComponent('_')}`)).to.deep.equal([customers[3]!.id]);
      expect(await listIds(tokens.backoffice1, `&search=${encodeURIComponent("'; drop table customer; --")}`)).to.deep.equal([]);
    });

    it('answers 422 for bad paging and filters', async () => {
      for (const query of ['page=0', 'page_size=0', 'page_size=101', 'page=x', 'stage=WON', 'assigned_to=nobody', 'colour=red', `search=${'x'.repeat(101)}`]) {
        await expectProblem(await get(tokens.backoffice1, `/customers?${query}`), 422, 'request.validation_failed');
      }
    });
  });

  describe('one customer', () => {
    let customer: CustomerBody;

    beforeEach(async () => {
      customer = await createCustomer(server, tokens.agent1, {
        phone: '+44 20 7946 0000', company: 'Acme', address: 'Somewhere', notes: 'Likes tea', assigned_to: ids.agent1, stage: 'IN_PROGRESS',
      });
    });

    it('GET embeds its interactions, newest first, with their count', async () => {
      const older = await createInteraction(server, tokens.agent1, customer.id, { subject: 'First call' });
      const newer = await createInteraction(server, tokens.agent1, customer.id, { interaction_type: 'EMAIL', subject: 'Follow-up' });
      await sql(server, `update customer_interaction set created_at = now() - interval '2 days' where id = ?`, [older.id]);
      const body = (await (await get(tokens.agent1, `/customers/${customer.id}`)).json()) as CustomerBody;
      expect(body.interaction_count).to.equal(2);
      expect(body.interactions.map((interaction) => interaction.id)).to.deep.equal([newer.id, older.id]);
      expect(body.interactions[0]).to.include({ customer: customer.id, interaction_type: 'EMAIL', subject: 'Follow-up', created_by_name: 'Al Agent' });
    });

    it('GET answers 404 for an unknown id and 422 for a malformed one', async () => {
      await expectProblem(await get(tokens.admin1, `/customers/${UNKNOWN_ID}`), 404, 'resource.not_found');
      await expectFieldError(await get(tokens.admin1, '/customers/not-a-uuid'), ['params', 'id']);
    });

    it('PUT replaces every field: optional ones left out are cleared, the stage is kept', async () => {
      const response = await jsonRequest(server, 'PUT', `/customers/${customer.id}`, tokens.agent1, { first_name: 'New', last_name: 'Name', email: 'new.name@example.com' });
      expect(response.status).to.equal(200);
      expect(await response.json()).to.include({
        first_name: 'New', last_name: 'Name', email: 'new.name@example.com', phone: null, company: null, address: null, notes: null,
        assigned_to: null, stage: 'IN_PROGRESS', created_by: ids.agent1,
      });
      expect(await auditRows(server, 'customer.update', customer.id)).to.have.length(1);
    });

    it('PUT requires the required fields and keeps emails unique', async () => {
      await expectFieldError(await jsonRequest(server, 'PUT', `/customers/${customer.id}`, tokens.agent1, { first_name: 'A', email: 'a@example.com' }), ['body', 'last_name']);
      const other = await createCustomer(server, tokens.agent1);
      await expectProblem(await jsonRequest(server, 'PUT', `/customers/${customer.id}`, tokens.agent1, { first_name: 'A', last_name: 'B', email: other.email.toUpperCase() }), 409, 'customer.email_taken');
      await expectProblem(await jsonRequest(server, 'PUT', `/customers/${UNKNOWN_ID}`, tokens.agent1, { first_name: 'A', last_name: 'B', email: 'a@example.com' }), 404);
      // Its own email in another case is no conflict.
      expect((await jsonRequest(server, 'PUT', `/customers/${customer.id}`, tokens.agent1, { first_name: 'A', last_name: 'B', email: customer.email.toUpperCase() })).status).to.equal(200);
    });

    it('PATCH changes only the fields given, and null clears an optional one', async () => {
      const response = await jsonRequest(server, 'PATCH', `/customers/${customer.id}`, tokens.agent1, { company: 'Globex', phone: null });
      expect(response.status).to.equal(200);
      expect(await response.json()).to.include({ company: 'Globex', phone: null, notes: 'Likes tea', first_name: customer.first_name, assigned_to: ids.agent1 });
      const audit = await auditRows(server, 'customer.update', customer.id);
      expect(audit).to.have.length(1);
      expect(audit[0]!.details!.fields).to.have.members(['company', 'phone']);
    });

    it('PATCH refuses an empty body, a null required field, an oversized one and a foreign assignee (422)', async () => {
      const patch = (body: unknown) => jsonRequest(server, 'PATCH', `/customers/${customer.id}`, tokens.agent1, body);
      await expectProblem(await patch({}), 422, 'request.validation_failed');
      await expectFieldError(await patch({ first_name: null }), ['body', 'first_name']);
      await expectFieldError(await patch({ notes: 'x'.repeat(2001) }), ['body', 'notes']);
      await expectFieldError(await patch({ assigned_to: ids.other }), ['body', 'assigned_to']);
      await expectFieldError(await patch({ stage: 'lead' }), ['body', 'stage']);
      expect(await auditRows(server, 'customer.update', customer.id)).to.have.length(0);
    });

    it('PATCH of the stage field logs the move like the stage route does', async () => {
      const response = await jsonRequest(server, 'PATCH', `/customers/${customer.id}`, tokens.agent1, { stage: 'ACTIVE', notes: 'Signed' });
      const body = (await response.json()) as CustomerBody;
      expect(body.stage).to.equal('ACTIVE');
      expect(body.interactions.map((interaction) => interaction.subject)).to.deep.equal(['Stage changed from IN_PROGRESS to ACTIVE']);
    });

    it('DELETE removes it with its interactions (204) and records it; agents may not delete', async () => {
      await createInteraction(server, tokens.agent1, customer.id);
      await expectProblem(await jsonRequest(server, 'DELETE', `/customers/${customer.id}`, tokens.agent1), 403, 'auth.forbidden');
      const response = await jsonRequest(server, 'DELETE', `/customers/${customer.id}`, tokens.backoffice1);
      expect(response.status).to.equal(204);
      expect(await response.text()).to.equal('');
      await expectProblem(await get(tokens.backoffice1, `/customers/${customer.id}`), 404);
      expect(await rows(server, 'select 1 from customer_interaction where customer_id = ?', [customer.id])).to.have.length(0);
      const audit = await auditRows(server, 'customer.delete', customer.id);
      expect(audit).to.have.length(1);
      expect(audit[0]!.actor_id).to.equal(ids.backoffice1);
      await expectProblem(await jsonRequest(server, 'DELETE', `/customers/${customer.id}`, tokens.backoffice1), 404);
      await expectFieldError(await jsonRequest(server, 'DELETE', '/customers/not-a-uuid', tokens.backoffice1), ['params', 'id']);
    });
  });

  describe('PATCH /customers/:id/stage', () => {
    let customer: CustomerBody;

    beforeEach(async () => {
      customer = await createCustomer(server, tokens.agent1);
    });

    it('moves the stage and records a NOTE interaction and an audit row', async () => {
      const response = await jsonRequest(server, 'PATCH', `/customers/${customer.id}/stage`, tokens.agent1, { stage: 'ACTIVE' });
      expect(response.status).to.equal(200);
      const body = (await response.json()) as CustomerBody;
      expect(body.stage).to.equal('ACTIVE');
      expect(body.interactions).to.have.length(1);
      expect(body.interactions[0]).to.include({ interaction_type: 'NOTE', subject: 'Stage changed from LEAD to ACTIVE', created_by: ids.agent1 });
      const audit = await auditRows(server, 'customer.stage_change', customer.id);
      expect(audit).to.have.length(1);
      expect(audit[0]!.details).to.deep.equal({ from: 'LEAD', to: 'ACTIVE', interaction_id: body.interactions[0]!.id });
      expect(audit[0]!.actor_id).to.equal(ids.agent1);
    });

    it('records nothing when the customer is at that stage already', async () => {
      const response = await jsonRequest(server, 'PATCH', `/customers/${customer.id}/stage`, tokens.agent1, { stage: 'LEAD' });
      expect(response.status).to.equal(200);
      expect((await response.json()).interactions).to.deep.equal([]);
      expect(await auditRows(server, 'customer.stage_change', customer.id)).to.have.length(0);
    });

    it('refuses a bad stage (422) and a basic user (403), writing nothing', async () => {
      await expectFieldError(await jsonRequest(server, 'PATCH', `/customers/${customer.id}/stage`, tokens.agent1, { stage: 'WON' }), ['body', 'stage']);
      await expectFieldError(await jsonRequest(server, 'PATCH', `/customers/${customer.id}/stage`, tokens.agent1, {}), ['body', 'stage']);
      await expectProblem(await jsonRequest(server, 'PATCH', `/customers/${customer.id}/stage`, tokens.basic1, { stage: 'ACTIVE' }), 403);
      await expectProblem(await jsonRequest(server, 'PATCH', `/customers/${UNKNOWN_ID}/stage`, tokens.agent1, { stage: 'ACTIVE' }), 404);
      expect(await rows(server, 'select 1 from customer_interaction where customer_id = ?', [customer.id])).to.have.length(0);
      expect(await auditRows(server, 'customer.stage_change', customer.id)).to.have.length(0);
    });

    it('is atomic: when the audit row cannot be written, neither the stage nor the interaction stays', async () => {
      // The audit insert is the transaction's last statement; make the database refuse it.
      await sql(server, `alter table audit_log add constraint crm_test_no_stage_change check (action <> 'customer.stage_change') not valid`);
      try {
        const response = await jsonRequest(server, 'PATCH', `/customers/${customer.id}/stage`, tokens.agent1, { stage: 'ACTIVE' });
        expect(response.status).to.equal(500);
      } finally {
        await sql(server, 'alter table audit_log drop constraint crm_test_no_stage_change');
      }
      const [row] = await rows<{ stage: string }>(server, 'select stage from customer where id = ?', [customer.id]);
      expect(row!.stage).to.equal('LEAD');
      expect(await rows(server, 'select 1 from customer_interaction where customer_id = ?', [customer.id])).to.have.length(0);
      // The same change succeeds once the database accepts it again.
      expect((await jsonRequest(server, 'PATCH', `/customers/${customer.id}/stage`, tokens.agent1, { stage: 'ACTIVE' })).status).to.equal(200);
    });
  });
});
