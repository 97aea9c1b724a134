import { expect } from 'chai';

import { jsonRequest } from '../../support/admin.ts';
import {
  auditRows, clearCrm, createCustomer, createInteraction, expectFieldError, expectProblem, rows, sql, startCrmWorld, UNKNOWN_ID,
  type CrmWorld, type CustomerBody, type InteractionBody,
} from '../crm/fixtures.ts';

describe('/api/v1/interactions', () => {
  let world: CrmWorld;
  let server: CrmWorld['server'];
  let tokens: CrmWorld['tokens'];
  let ids: CrmWorld['ids'];
  let own1: CustomerBody; // created by agent1
  let handedToBasic: CustomerBody; // created by agent1, assigned to basic1
  let own2: CustomerBody; // created by agent2
  let foreign: CustomerBody; // of the other organization
  let onOwn1: InteractionBody;
  let onBasic: InteractionBody;
  let onOwn2: InteractionBody;
  let onForeign: InteractionBody;

  async function listIds(token: string, query = ''): Promise<string[]> {
    const response = await jsonRequest(server, 'GET', `/interactions?page_size=100${query}`, token);
    expect(response.status, await response.clone().text()).to.equal(200);
    return (await response.json()).results.map((interaction: InteractionBody) => interaction.id);
  }

  before(async () => {
    world = await startCrmWorld();
    ({ server, tokens, ids } = world);
    await clearCrm(server);
    own1 = await createCustomer(server, tokens.agent1, { first_name: 'Olga', last_name: 'Own' });
    handedToBasic = await createCustomer(server, tokens.agent1, { assigned_to: ids.basic1 });
    own2 = await createCustomer(server, tokens.agent2);
    foreign = await createCustomer(server, tokens.other);
    onOwn1 = await createInteraction(server, tokens.agent1, own1.id, { subject: 'Intro call' });
    onBasic = await createInteraction(server, tokens.agent1, handedToBasic.id, { interaction_type: 'MEETING' });
    onOwn2 = await createInteraction(server, tokens.agent2, own2.id, { interaction_type: 'EMAIL' });
    onForeign = await createInteraction(server, tokens.other, foreign.id);
  });
  after(async () => { await world.server.close(); });

  describe('POST /interactions', () => {
    it('records an interaction on a visible customer, with display names and an audit row', async () => {
      const response = await jsonRequest(server, 'POST', '/interactions', tokens.agent1, {
        customer: own1.id, interaction_type: 'EMAIL', subject: 'Proposal sent', description: 'The premium package',
      });
      expect(response.status).to.equal(201);
      const body = await response.json();
      expect(body).to.include({
        customer: own1.id, customer_name: 'Olga Own', interaction_type: 'EMAIL', subject: 'Proposal sent', description: 'The premium package',
        created_by: ids.agent1, created_by_name: 'Al Agent', organization_id: world.demoOrganizationId,
      });
      expect(body.created_at).to.match(/Z$/);
      const audit = await auditRows(server, 'interaction.create', body.id);
      expect(audit).to.have.length(1);
      expect(audit[0]).to.deep.include({ actor_id: ids.agent1, details: { customer_id: own1.id, interaction_type: 'EMAIL' } });
    });

    it('answers 404 for a customer the caller cannot see, of another organization, or unknown', async () => {
      for (const customer of [own2.id, foreign.id, UNKNOWN_ID]) {
        await expectProblem(await jsonRequest(server, 'POST', '/interactions', tokens.agent1, { customer, interaction_type: 'CALL', subject: 'x' }), 404, 'resource.not_found');
      }
      await expectProblem(await jsonRequest(server, 'POST', '/interactions', tokens.admin1, { customer: foreign.id, interaction_type: 'CALL', subject: 'x' }), 404);
      expect(await rows(server, `select 1 from customer_interaction where subject = 'x'`)).to.have.length(0);
    });

    it('answers 422 naming the field for missing, mistyped, oversized and malformed input', async () => {
      const valid = { customer: own1.id, interaction_type: 'CALL', subject: 'Valid' };
      const post = (body: unknown) => jsonRequest(server, 'POST', '/interactions', tokens.agent1, body);
      await expectFieldError(await post({ ...valid, customer: undefined }), ['body', 'customer']);
      await expectFieldError(await post({ ...valid, customer: 'not-a-uuid' }), ['body', 'customer']);
      await expectFieldError(await post({ ...valid, subject: undefined }), ['body', 'subject']);
      await expectFieldError(await post({ ...valid, subject: 42 }), ['body', 'subject']);
      await expectFieldError(await post({ ...valid, subject: 'x'.repeat(201) }), ['body', 'subject']);
      await expectFieldError(await post({ ...valid, description: 'x'.repeat(5001) }), ['body', 'description']);
      await expectFieldError(await post({ ...valid, interaction_type: 'FAX' }), ['body', 'interaction_type']);
      await expectFieldError(await post({ ...valid, created_by: ids.agent2 }), ['body']);
      // The limits themselves are accepted.
      expect((await post({ ...valid, subject: 'x'.repeat(200), description: 'y'.repeat(5000) })).status).to.equal(201);
    });

    it('refuses a basic user and a guest (403)', async () => {
      const body = { customer: handedToBasic.id, interaction_type: 'NOTE', subject: 'Mine?' };
      await expectProblem(await jsonRequest(server, 'POST', '/interactions', tokens.basic1, body), 403, 'auth.insufficient_scope');
      await expectProblem(await jsonRequest(server, 'POST', '/interactions', tokens.guest1, body), 403, 'auth.insufficient_scope');
    });
  });

  describe('reading', () => {
    it('shows each role the interactions of the customers it sees', async () => {
      expect(await listIds(tokens.agent1)).to.include.members([onOwn1.id, onBasic.id]).and.not.include.members([onOwn2.id]);
      expect(await listIds(tokens.agent2)).to.deep.equal([onOwn2.id]);
      expect(await listIds(tokens.basic1)).to.deep.equal([onBasic.id]);
      expect(await listIds(tokens.premium1)).to.deep.equal([]);
      expect(await listIds(tokens.backoffice1)).to.include.members([onOwn1.id, onBasic.id, onOwn2.id]).and.not.include(onForeign.id);
      expect(await listIds(tokens.other)).to.deep.equal([onForeign.id]);
      expect(await listIds(tokens.root)).to.include.members([onOwn1.id, onOwn2.id, onForeign.id]);
    });

    it('filters by customer and type, pages newest first, and refuses bad queries (422)', async () => {
      expect(await listIds(tokens.backoffice1, `&customer=${own2.id}`)).to.deep.equal([onOwn2.id]);
      expect(await listIds(tokens.backoffice1, '&interaction_type=MEETING')).to.deep.equal([onBasic.id]);
      // A filter never widens what the caller sees.
      expect(await listIds(tokens.agent1, `&customer=${own2.id}`)).to.deep.equal([]);
      const first = await (await jsonRequest(server, 'GET', `/interactions?customer=${handedToBasic.id}&page_size=1`, tokens.backoffice1)).json();
      expect(first).to.include({ count: 1, page: 1, page_size: 1, next: null, previous: null });
      const all = await (await jsonRequest(server, 'GET', '/interactions', tokens.backoffice1)).json();
      const times = all.results.map((interaction: InteractionBody) => interaction.created_at);
      expect(times).to.deep.equal([...times].sort().reverse());
      for (const query of ['customer=nope', 'interaction_type=FAX', 'page=0', 'page_size=500', 'client=1']) {
        await expectProblem(await jsonRequest(server, 'GET', `/interactions?${query}`, tokens.backoffice1), 422, 'request.validation_failed');
      }
    });

    it('GET /interactions/:id answers visible ones, 404 otherwise, 422 for a malformed id', async () => {
      const body = await (await jsonRequest(server, 'GET', `/interactions/${onBasic.id}`, tokens.basic1)).json();
      expect(body).to.include({ id: onBasic.id, customer: handedToBasic.id, interaction_type: 'MEETING' });
      await expectProblem(await jsonRequest(server, 'GET', `/interactions/${onOwn2.id}`, tokens.agent1), 404);
      await expectProblem(await jsonRequest(server, 'GET', `/interactions/${onOwn1.id}`, tokens.basic1), 404);
      await expectProblem(await jsonRequest(server, 'GET', `/interactions/${UNKNOWN_ID}`, tokens.admin1), 404);
      await expectFieldError(await jsonRequest(server, 'GET', '/interactions/123', tokens.admin1), ['params', 'id']);
    });

    it('refuses a guest every read (403 insufficient_scope)', async () => {
      await expectProblem(await jsonRequest(server, 'GET', '/interactions', tokens.guest1), 403, 'auth.insufficient_scope');
      await expectProblem(await jsonRequest(server, 'GET', `/interactions/${onBasic.id}`, tokens.guest1), 403, 'auth.insufficient_scope');
    });
  });

  describe('changing', () => {
    let interaction: InteractionBody;

    beforeEach(async () => {
      interaction = await createInteraction(server, tokens.agent1, own1.id, { subject: 'Before', description: 'Old notes' });
    });

    it('PUT replaces every field (a description left out becomes empty) and records it', async () => {
      const response = await jsonRequest(server, 'PUT', `/interactions/${interaction.id}`, tokens.agent1, { customer: own1.id, interaction_type: 'MEETING', subject: 'After' });
      expect(response.status).to.equal(200);
      expect(await response.json()).to.include({ interaction_type: 'MEETING', subject: 'After', description: '', customer: own1.id });
      expect(await auditRows(server, 'interaction.update', interaction.id)).to.have.length(1);
      await expectFieldError(await jsonRequest(server, 'PUT', `/interactions/${interaction.id}`, tokens.agent1, { customer: own1.id, subject: 'No type' }), ['body', 'interaction_type']);
    });

    it('PATCH changes the fields given, and may move it to another visible customer only', async () => {
      const patched = await jsonRequest(server, 'PATCH', `/interactions/${interaction.id}`, tokens.agent1, { subject: 'Renamed' });
      expect(await patched.json()).to.include({ subject: 'Renamed', description: 'Old notes', interaction_type: 'CALL' });
      const moved = await jsonRequest(server, 'PATCH', `/interactions/${interaction.id}`, tokens.agent1, { customer: handedToBasic.id });
      expect(await moved.json()).to.include({ customer: handedToBasic.id });
      await expectProblem(await jsonRequest(server, 'PATCH', `/interactions/${interaction.id}`, tokens.agent1, { customer: own2.id }), 404, 'resource.not_found');
      await expectProblem(await jsonRequest(server, 'PATCH', `/interactions/${interaction.id}`, tokens.admin1, { customer: foreign.id }), 404, 'resource.not_found');
      const [row] = await rows<{ customer_id: string }>(server, 'select customer_id from customer_interaction where id = ?', [interaction.id]);
      expect(row!.customer_id).to.equal(handedToBasic.id);
      expect(await auditRows(server, 'interaction.update', interaction.id)).to.have.length(2);
    });

    it('PATCH refuses an empty body, a null subject and an oversized description (422)', async () => {
      const patch = (body: unknown) => jsonRequest(server, 'PATCH', `/interactions/${interaction.id}`, tokens.agent1, body);
      await expectProblem(await patch({}), 422, 'request.validation_failed');
      await expectFieldError(await patch({ subject: null }), ['body', 'subject']);
      await expectFieldError(await patch({ description: 'x'.repeat(5001) }), ['body', 'description']);
      expect(await auditRows(server, 'interaction.update', interaction.id)).to.have.length(0);
    });

    it('lets an agent change interactions of customers it sees, never of others (404), nor delete (403)', async () => {
      await expectProblem(await jsonRequest(server, 'PATCH', `/interactions/${onOwn2.id}`, tokens.agent1, { subject: 'Hijack' }), 404);
      await expectProblem(await jsonRequest(server, 'DELETE', `/interactions/${interaction.id}`, tokens.agent1), 403, 'auth.forbidden');
      await expectProblem(await jsonRequest(server, 'PATCH', `/interactions/${onBasic.id}`, tokens.basic1, { subject: 'Mine' }), 403);
    });

    it('DELETE removes it (204) and records it', async () => {
      const response = await jsonRequest(server, 'DELETE', `/interactions/${interaction.id}`, tokens.backoffice1);
      expect(response.status).to.equal(204);
      await expectProblem(await jsonRequest(server, 'GET', `/interactions/${interaction.id}`, tokens.backoffice1), 404);
      const audit = await auditRows(server, 'interaction.delete', interaction.id);
      expect(audit).to.have.length(1);
      expect(audit[0]).to.deep.include({ actor_id: ids.backoffice1, details: { customer_id: own1.id } });
      await expectProblem(await jsonRequest(server, 'DELETE', `/interactions/${interaction.id}`, tokens.backoffice1), 404);
      await expectFieldError(await jsonRequest(server, 'DELETE', '/interactions/not-a-uuid', tokens.backoffice1), ['params', 'id']);
    });

    it('answers 404, never 403, for another organization\'s interaction on every id-taking route', async () => {
      const full = { customer: own1.id, interaction_type: 'NOTE', subject: 'x' };
      for (const [token, target] of [[tokens.admin1, onForeign], [tokens.other, onOwn1]] as const) {
        for (const [method, body] of [['GET'], ['PUT', full], ['PATCH', { subject: 'x' }], ['DELETE']] as [string, unknown?][]) {
          await expectProblem(await jsonRequest(server, method, `/interactions/${target.id}`, token, body), 404, 'resource.not_found');
        }
      }
      const [row] = await rows<{ subject: string }>(server, 'select subject from customer_interaction where id = ?', [onForeign.id]);
      expect(row!.subject).to.equal(onForeign.subject);
    });

    it('rolls a change back with its audit row: a failed audit insert leaves the interaction as it was', async () => {
      await sql(server, `alter table audit_log add constraint crm_test_no_interaction_update check (action <> 'interaction.update') not valid`);
      try {
        expect((await jsonRequest(server, 'PATCH', `/interactions/${interaction.id}`, tokens.agent1, { subject: 'Lost' })).status).to.equal(500);
      } finally {
        await sql(server, 'alter table audit_log drop constraint crm_test_no_interaction_update');
      }
      const [row] = await rows<{ subject: string }>(server, 'select subject from customer_interaction where id = ?', [interaction.id]);
      expect(row!.subject).to.equal('Before');
    });
  });
});
