// Customers of the CRM (API.md "CRM", seed 003): who sees which is crm-access.ts's rule, carried
// in the WHERE clause of every statement here. Each change commits together with its audit row
// and, for a stage change, the NOTE interaction that records it.
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';

import { CUSTOMER_STAGES, Customer, type CustomerStage } from '../db/entities/customer.entity.ts';
import { CustomerInteraction } from '../db/entities/interaction.entity.ts';
import { AppError, assertThat, fieldError } from '../platform/errors.ts';
import { executeStatement, queryOne, queryRows } from '../platform/database.ts';
import type { ReadReplicas } from '../platform/read-replicas.ts';
import { auditEntry, recordAudit } from './audit.service.ts';
import { containsPattern, isUniqueViolation } from '../platform/database.ts';
import { displayNameSql, visibleCustomers, type SqlCondition } from './crm-access.ts';
import { INTERACTION_COLUMNS, INTERACTION_FROM, interactionView, type InteractionRow, type InteractionView } from './crm-interactions.service.ts';
import { ownOrganization, type Actor } from './tenancy.ts';

export { CUSTOMER_STAGES, type CustomerStage };

export interface CustomerFields {
  first_name: string;
  last_name: string;
  email: string;
  phone?: string | null;
  company?: string | null;
  address?: string | null;
  notes?: string | null;
  stage?: CustomerStage;
  assigned_to?: string | null;
}

export type CustomerChanges = Partial<CustomerFields>;

export interface CustomerFilters {
  stage?: CustomerStage;
  assigned_to?: string;
  search?: string;
}

export interface CustomerView {
  id: string;
  organization_id: string;
  first_name: string;
  last_name: string;
  email: string;
  phone: string | null;
  company: string | null;
  address: string | null;
  notes: string | null;
  stage: CustomerStage;
  created_by: string | null;
  created_by_name: string | null;
  assigned_to: string | null;
  assigned_to_name: string | null;
  created_at: string;
  updated_at: string;
}

export interface CustomerDetail extends CustomerView {
  /** The newest EMBEDDED_INTERACTIONS; `interaction_count` says how many there are in all. */
  interactions: InteractionView[];
  interaction_count: number;
}

type CustomerRow = Omit<CustomerView, 'created_at' | 'updated_at'> & { created_at: Date; updated_at: Date };
type Page = { limit: number; offset: number };

/** A detail answer stays bounded however long a customer's history grows; /interactions?customer= pages the rest. */
export const EMBEDDED_INTERACTIONS = 100;

const COLUMNS = `c.id, c.organization_id, c.first_name, c.last_name, c.email, c.phone, c.company, c.address, c.notes, c.stage,
  c.created_by, ${displayNameSql('cu')} as created_by_name, c.assigned_to, ${displayNameSql('au')} as assigned_to_name,
  c.created_at, c.updated_at`;
const FROM = 'customer c left join app_user cu on cu.id = c.created_by left join app_user au on au.id = c.assigned_to';

/** The columns a change may set: API field names are the column names, and nothing else reaches SQL. */
const WRITABLE = ['first_name', 'last_name', 'email', 'phone', 'company', 'address', 'notes', 'stage', 'assigned_to'] as const;

const iso = (value: Date) => new Date(value).toISOString();

function view(row: CustomerRow): CustomerView {
  return { ...row, created_at: iso(row.created_at), updated_at: iso(row.updated_at) };
}

/** Optional text columns, where an empty string means "none" and is stored as null. */
const OPTIONAL_TEXT = ['phone', 'company', 'address', 'notes'] as const;

function withoutEmptyText<T extends CustomerChanges>(input: T): T {
  const result = { ...input };
  for (const field of OPTIONAL_TEXT) if (result[field] === '') result[field] = null;
  return result;
}

function emailTaken(): AppError {
  return new AppError('customer.email_taken', 'A customer with this email exists in the organization');
}

function rethrowEmailTaken(error: unknown): never {
  if (isUniqueViolation(error)) throw emailTaken();
  throw error;
}

export function stageChangeSubject(from: CustomerStage, to: CustomerStage): string {
  return `Stage changed from ${from} to ${to}`;
}

interface LockedCustomer { id: string; organization_id: string; email: string; stage: CustomerStage; assigned_to: string | null }

export class CustomersService {
  readonly #orm: MikroORM;
  readonly #reads: ReadReplicas;

  constructor(orm: MikroORM, reads: ReadReplicas) {
    this.#orm = orm;
    this.#reads = reads;
  }

  /** Newest first; ties (same instant) broken by id so pages never overlap. A list read: a replica may serve it. */
  async list(actor: Actor, filters: CustomerFilters, page: Page): Promise<{ count: number; results: CustomerView[] }> {
    const visible = visibleCustomers(actor);
    const conditions = [visible.sql];
    const params = [...visible.params];
    if (filters.stage) { conditions.push('c.stage = ?'); params.push(filters.stage); }
    if (filters.assigned_to) { conditions.push('c.assigned_to = ?'); params.push(filters.assigned_to); }
    if (filters.search) {
      conditions.push(`(c.first_name ilike ? or c.last_name ilike ? or (c.first_name || ' ' || c.last_name) ilike ? or c.email ilike ? or c.company ilike ?)`);
      params.push(...Array<string>(5).fill(containsPattern(filters.search)));
    }
    const where = conditions.join(' and ');
    const reads = await this.#reads.for(actor);
    const [rows, total] = await Promise.all([
      queryRows<CustomerRow>(reads, `select ${COLUMNS} from ${FROM} where ${where} order by c.created_at desc, c.id desc limit ? offset ?`,
        [...params, page.limit, page.offset]),
      queryOne<{ count: number }>(reads, `select count(*)::int as count from customer c where ${where}`, params),
    ]);
    return { count: total?.count ?? 0, results: rows.map(view) };
  }

  async get(actor: Actor, customerId: string): Promise<CustomerDetail> {
    const visible = visibleCustomers(actor);
    const row = await queryOne<CustomerRow>(this.#orm.em, `select ${COLUMNS} from ${FROM} where c.id = ? and ${visible.sql}`, [customerId, ...visible.params]);
    assertThat(row, 'resource.not_found', 'No such customer');
    return this.#withInteractions(this.#orm.em, row, visibleCustomers(actor, { organizationColumn: 'i.organization_id' }));
  }

  /** In the actor's organization, created by the actor. */
  async create(actor: Actor, fields: CustomerFields): Promise<CustomerDetail> {
    const input = withoutEmptyText(fields);
    const organizationId = ownOrganization(actor);
    return this.#orm.em.fork().transactional(async (em) => {
      await this.#assertEmailFree(em, organizationId, input.email);
      if (input.assigned_to) await this.#assertAssignable(em, organizationId, input.assigned_to);
      const customer = em.create(Customer, {
        organization: organizationId, firstName: input.first_name, lastName: input.last_name, email: input.email,
        phone: input.phone ?? null, company: input.company ?? null, address: input.address ?? null, notes: input.notes ?? null,
        stage: input.stage ?? 'LEAD', createdBy: actor.userId ?? null, assignedTo: input.assigned_to ?? null,
      });
      await em.flush();
      recordAudit(em, auditEntry(actor, {
        action: 'customer.create', resource: 'customer', resourceId: customer.id, organizationId,
        details: { stage: customer.stage, assigned_to: input.assigned_to ?? null },
      }));
      return this.#written(em, customer.id, organizationId);
    }).catch(rethrowEmailTaken);
  }

  /** PUT: every field replaced; optional ones left out are cleared, except the stage, which is kept (a pipeline state is never reset by omission). */
  async replace(actor: Actor, customerId: string, input: CustomerFields): Promise<CustomerDetail> {
    return this.update(actor, customerId, {
      phone: null, company: null, address: null, notes: null, assigned_to: null, ...input,
    });
  }

  /** PATCH: the fields given. A changed stage is recorded like PATCH /stage does, so the history has every move. */
  async update(actor: Actor, customerId: string, fields: CustomerChanges): Promise<CustomerDetail> {
    const changes = withoutEmptyText(fields);
    return this.#orm.em.fork().transactional(async (em) => {
      const current = await this.#lockVisible(em, actor, customerId);
      if (changes.email !== undefined && changes.email.toLowerCase() !== current.email.toLowerCase()) {
        await this.#assertEmailFree(em, current.organization_id, changes.email, current.id);
      }
      if (changes.assigned_to && changes.assigned_to !== current.assigned_to) await this.#assertAssignable(em, current.organization_id, changes.assigned_to);
      await this.#write(em, actor, current.id, changes);
      const stageMove = changes.stage !== undefined && changes.stage !== current.stage
        ? await this.#recordStageChange(em, actor, current, changes.stage)
        : undefined;
      recordAudit(em, auditEntry(actor, {
        action: 'customer.update', resource: 'customer', resourceId: current.id, organizationId: current.organization_id,
        details: { fields: Object.keys(changes), ...(stageMove ? { stage: { from: current.stage, to: changes.stage }, interaction_id: stageMove } : {}) },
      }));
      return this.#written(em, current.id, current.organization_id);
    }).catch(rethrowEmailTaken);
  }

  /**
   * PATCH /customers/:id/stage: the new stage, a NOTE interaction saying so and the audit row,
   * all in one transaction. Setting the stage it already has changes and records nothing.
   */
  async changeStage(actor: Actor, customerId: string, stage: CustomerStage): Promise<CustomerDetail> {
    return this.#orm.em.fork().transactional(async (em) => {
      const current = await this.#lockVisible(em, actor, customerId);
      if (current.stage !== stage) {
        await this.#write(em, actor, current.id, { stage });
        const interactionId = await this.#recordStageChange(em, actor, current, stage);
        recordAudit(em, auditEntry(actor, {
          action: 'customer.stage_change', resource: 'customer', resourceId: current.id, organizationId: current.organization_id,
          details: { from: current.stage, to: stage, interaction_id: interactionId },
        }));
      }
      return this.#written(em, current.id, current.organization_id);
    });
  }

  /** The customer's interactions go with it (foreign key cascade). */
  async delete(actor: Actor, customerId: string): Promise<void> {
    await this.#orm.em.fork().transactional(async (em) => {
      const current = await this.#lockVisible(em, actor, customerId);
      const visible = visibleCustomers(actor);
      await executeStatement(em, `delete from customer c where c.id = ? and ${visible.sql}`, [current.id, ...visible.params]);
      recordAudit(em, auditEntry(actor, {
        action: 'customer.delete', resource: 'customer', resourceId: current.id, organizationId: current.organization_id,
        details: { stage: current.stage },
      }));
    });
  }

  /**
   * The visible customer, locked until the transaction ends so concurrent changes apply one after
   * the other; else 404. NO KEY UPDATE, since the id never changes: interactions may still be
   * added meanwhile (their foreign key takes KEY SHARE, which this lock does not block).
   */
  async #lockVisible(em: EntityManager, actor: Actor, customerId: string): Promise<LockedCustomer> {
    const visible = visibleCustomers(actor);
    const row = await queryOne<LockedCustomer>(em,
      `select c.id, c.organization_id, c.email, c.stage, c.assigned_to from customer c where c.id = ? and ${visible.sql} for no key update`,
      [customerId, ...visible.params]);
    assertThat(row, 'resource.not_found', 'No such customer');
    return row;
  }

  /** One UPDATE of the given columns, still under the visibility condition. */
  async #write(em: EntityManager, actor: Actor, customerId: string, changes: CustomerChanges): Promise<void> {
    const columns = WRITABLE.filter((column) => changes[column] !== undefined);
    const visible = visibleCustomers(actor);
    await executeStatement(em,
      `update customer c set ${[...columns.map((column) => `${column} = ?`), 'updated_at = ?'].join(', ')} where c.id = ? and ${visible.sql}`,
      [...columns.map((column) => changes[column]), new Date(), customerId, ...visible.params]);
  }

  async #recordStageChange(em: EntityManager, actor: Actor, customer: LockedCustomer, to: CustomerStage): Promise<string> {
    const interaction = em.create(CustomerInteraction, {
      organization: customer.organization_id, customer: customer.id, interactionType: 'NOTE',
      subject: stageChangeSubject(customer.stage, to), description: '', createdBy: actor.userId ?? null,
    });
    await em.flush();
    return interaction.id;
  }

  /** Case-insensitive, over the whole organization: the unique index holds it whoever can see the other row. */
  async #assertEmailFree(em: EntityManager, organizationId: string, email: string, exceptId?: string): Promise<void> {
    const taken = await queryOne(em,
      'select 1 from customer where organization_id = ? and lower(email) = lower(?) and (?::uuid is null or id <> ?)',
      [organizationId, email, exceptId ?? null, exceptId ?? null]);
    if (taken) throw emailTaken();
  }

  async #assertAssignable(em: EntityManager, organizationId: string, userId: string): Promise<void> {
    const user = await queryOne(em, 'select 1 from app_user where id = ? and organization_id = ? and is_active', [userId, organizationId]);
    if (!user) throw fieldError(['body', 'assigned_to'], 'must be an active user of the organization', 'invalid_assignee');
  }

  /**
   * A customer as the actor just wrote it. Pinned to its organization but not to ownership: a
   * change may hand the customer to someone else, and the answer still shows what was written.
   */
  async #written(em: EntityManager, customerId: string, organizationId: string): Promise<CustomerDetail> {
    const row = await queryOne<CustomerRow>(em, `select ${COLUMNS} from ${FROM} where c.id = ? and c.organization_id = ?`, [customerId, organizationId]);
    assertThat(row, 'resource.not_found', 'No such customer');
    return this.#withInteractions(em, row, { sql: 'i.organization_id = ?', params: [organizationId], byOwner: false });
  }

  /** `scope` is the condition the customer row was read under, repeated on its interactions. */
  async #withInteractions(em: EntityManager, row: CustomerRow, scope: SqlCondition): Promise<CustomerDetail> {
    // One after the other: inside a transaction both would share one connection anyway.
    const interactions = await queryRows<InteractionRow>(em,
      `select ${INTERACTION_COLUMNS} from ${INTERACTION_FROM} where i.customer_id = ? and ${scope.sql} order by i.created_at desc, i.id desc limit ?`,
      [row.id, ...scope.params, EMBEDDED_INTERACTIONS]);
    const total = await queryOne<{ count: number }>(em,
      `select count(*)::int as count from customer_interaction i join customer c on c.id = i.customer_id where i.customer_id = ? and ${scope.sql}`,
      [row.id, ...scope.params]);
    return { ...view(row), interactions: interactions.map(interactionView), interaction_count: total?.count ?? 0 };
  }
}
