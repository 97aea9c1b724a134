// CRM interactions: calls, emails, meetings and notes about customers (API.md "CRM", seed 003
// "ClientInteraction"); not the OIDC sign-in interactions of src/oidc/interactions/. One is visible
// exactly when its customer is (crm-access.ts), so every statement joins the customer and carries
// that condition; each change commits together with its audit row.
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';

import { INTERACTION_TYPES, CustomerInteraction, type InteractionType } from '../db/entities/interaction.entity.ts';
import { assertThat } from '../platform/errors.ts';
import { executeStatement, queryOne, queryRows } from '../platform/database.ts';
import type { ReadReplicas } from '../platform/read-replicas.ts';
import { auditEntry, recordAudit } from './audit.service.ts';
import { displayNameSql, visibleCustomers, type SqlCondition } from './crm-access.ts';
import { type Actor } from './tenancy.ts';

export { INTERACTION_TYPES, type InteractionType };

export interface InteractionFields {
  customer: string;
  interaction_type: InteractionType;
  subject: string;
  description?: string;
}

export type InteractionChanges = Partial<InteractionFields>;

export interface InteractionFilters {
  customer?: string;
  interaction_type?: InteractionType;
}

export interface InteractionView {
  id: string;
  organization_id: string;
  customer: string;
  customer_name: string;
  interaction_type: InteractionType;
  subject: string;
  description: string;
  created_by: string | null;
  created_by_name: string | null;
  created_at: string;
  updated_at: string;
}

export type InteractionRow = Omit<InteractionView, 'created_at' | 'updated_at'> & { created_at: Date; updated_at: Date };
type Page = { limit: number; offset: number };

/** Shared with the customer detail, which embeds its interactions in this same shape. */
export const INTERACTION_COLUMNS = `i.id, i.organization_id, i.customer_id as customer, trim(c.first_name || ' ' || c.last_name) as customer_name,
  i.interaction_type, i.subject, i.description, i.created_by, ${displayNameSql('iu')} as created_by_name, i.created_at, i.updated_at`;
export const INTERACTION_FROM = 'customer_interaction i join customer c on c.id = i.customer_id left join app_user iu on iu.id = i.created_by';

/** API field -> column; nothing else reaches an UPDATE. */
const WRITABLE = { customer: 'customer_id', interaction_type: 'interaction_type', subject: 'subject', description: 'description' } as const;

const iso = (value: Date) => new Date(value).toISOString();

export function interactionView(row: InteractionRow): InteractionView {
  return { ...row, created_at: iso(row.created_at), updated_at: iso(row.updated_at) };
}

/** Interactions of visible customers; the organization pinned on the interaction's own column, which its indexes lead with. */
function visibleInteractions(actor: Actor): SqlCondition {
  return visibleCustomers(actor, { organizationColumn: 'i.organization_id' });
}

export class InteractionsService {
  readonly #orm: MikroORM;
  readonly #reads: ReadReplicas;

  constructor(orm: MikroORM, reads: ReadReplicas) {
    this.#orm = orm;
    this.#reads = reads;
  }

  /** Newest first, ties broken by id. A list read: a replica may serve it. */
  async list(actor: Actor, filters: InteractionFilters, page: Page): Promise<{ count: number; results: InteractionView[] }> {
    const visible = visibleInteractions(actor);
    const conditions = [visible.sql];
    const params = [...visible.params];
    if (filters.customer) { conditions.push('i.customer_id = ?'); params.push(filters.customer); }
    if (filters.interaction_type) { conditions.push('i.interaction_type = ?'); params.push(filters.interaction_type); }
    const where = conditions.join(' and ');
    // Counting for a caller who sees the whole organization needs no customer rows at all.
    const countFrom = visible.byOwner ? 'customer_interaction i join customer c on c.id = i.customer_id' : 'customer_interaction i';
    const reads = await this.#reads.for(actor);
    const [rows, total] = await Promise.all([
      queryRows<InteractionRow>(reads, `select ${INTERACTION_COLUMNS} from ${INTERACTION_FROM} where ${where} order by i.created_at desc, i.id desc limit ? offset ?`,
        [...params, page.limit, page.offset]),
      queryOne<{ count: number }>(reads, `select count(*)::int as count from ${countFrom} where ${where}`, params),
    ]);
    return { count: total?.count ?? 0, results: rows.map(interactionView) };
  }

  async get(actor: Actor, interactionId: string): Promise<InteractionView> {
    return this.#read(this.#orm.em, actor, interactionId);
  }

  /** On a customer the actor sees (else 404), in that customer's organization. */
  async create(actor: Actor, input: InteractionFields): Promise<InteractionView> {
    return this.#orm.em.fork().transactional(async (em) => {
      const customer = await this.#visibleCustomer(em, actor, input.customer);
      const interaction = em.create(CustomerInteraction, {
        organization: customer.organization_id, customer: customer.id, interactionType: input.interaction_type,
        subject: input.subject, description: input.description ?? '', createdBy: actor.userId ?? null,
      });
      await em.flush();
      recordAudit(em, auditEntry(actor, {
        action: 'interaction.create', resource: 'interaction', resourceId: interaction.id, organizationId: customer.organization_id,
        details: { customer_id: customer.id, interaction_type: input.interaction_type },
      }));
      return this.#read(em, actor, interaction.id);
    });
  }

  /** PUT: every field replaced; a description left out becomes empty. */
  async replace(actor: Actor, interactionId: string, input: InteractionFields): Promise<InteractionView> {
    return this.update(actor, interactionId, { description: '', ...input });
  }

  /** PATCH: the fields given. Moving it to another customer needs that customer visible too. */
  async update(actor: Actor, interactionId: string, changes: InteractionChanges): Promise<InteractionView> {
    return this.#orm.em.fork().transactional(async (em) => {
      const current = await this.#lockVisible(em, actor, interactionId);
      const sets: string[] = [];
      const values: unknown[] = [];
      for (const [field, column] of Object.entries(WRITABLE) as [keyof InteractionChanges, string][]) {
        if (changes[field] === undefined) continue;
        sets.push(`${column} = ?`);
        values.push(changes[field]);
      }
      if (changes.customer !== undefined && changes.customer !== current.customer_id) {
        // Only a super admin can reach another organization's customer; the interaction follows it there.
        const customer = await this.#visibleCustomer(em, actor, changes.customer);
        sets.push('organization_id = ?');
        values.push(customer.organization_id);
      }
      const visible = visibleInteractions(actor);
      await executeStatement(em,
        `update customer_interaction i set ${[...sets, 'updated_at = ?'].join(', ')} from customer c where c.id = i.customer_id and i.id = ? and ${visible.sql}`,
        [...values, new Date(), current.id, ...visible.params]);
      recordAudit(em, auditEntry(actor, {
        action: 'interaction.update', resource: 'interaction', resourceId: current.id, organizationId: current.organization_id,
        details: { fields: Object.keys(changes), customer_id: changes.customer ?? current.customer_id },
      }));
      return this.#read(em, actor, current.id);
    });
  }

  async delete(actor: Actor, interactionId: string): Promise<void> {
    await this.#orm.em.fork().transactional(async (em) => {
      const current = await this.#lockVisible(em, actor, interactionId);
      const visible = visibleInteractions(actor);
      await executeStatement(em, `delete from customer_interaction i using customer c where c.id = i.customer_id and i.id = ? and ${visible.sql}`,
        [current.id, ...visible.params]);
      recordAudit(em, auditEntry(actor, {
        action: 'interaction.delete', resource: 'interaction', resourceId: current.id, organizationId: current.organization_id,
        details: { customer_id: current.customer_id },
      }));
    });
  }

  async #read(em: EntityManager, actor: Actor, interactionId: string): Promise<InteractionView> {
    const visible = visibleInteractions(actor);
    const row = await queryOne<InteractionRow>(em, `select ${INTERACTION_COLUMNS} from ${INTERACTION_FROM} where i.id = ? and ${visible.sql}`, [interactionId, ...visible.params]);
    assertThat(row, 'resource.not_found', 'No such interaction');
    return interactionView(row);
  }

  /** Locked until the transaction ends, so concurrent changes apply one after the other; else 404. */
  async #lockVisible(em: EntityManager, actor: Actor, interactionId: string): Promise<{ id: string; organization_id: string; customer_id: string }> {
    const visible = visibleInteractions(actor);
    const row = await queryOne<{ id: string; organization_id: string; customer_id: string }>(em,
      `select i.id, i.organization_id, i.customer_id from customer_interaction i join customer c on c.id = i.customer_id
        where i.id = ? and ${visible.sql} for update of i`,
      [interactionId, ...visible.params]);
    assertThat(row, 'resource.not_found', 'No such interaction');
    return row;
  }

  async #visibleCustomer(em: EntityManager, actor: Actor, customerId: string): Promise<{ id: string; organization_id: string }> {
    const visible = visibleCustomers(actor);
    const row = await queryOne<{ id: string; organization_id: string }>(em,
      `select c.id, c.organization_id from customer c where c.id = ? and ${visible.sql}`, [customerId, ...visible.params]);
    assertThat(row, 'resource.not_found', 'No such customer');
    return row;
  }
}
