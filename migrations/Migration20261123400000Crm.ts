import { Migration } from '@mikro-orm/migrations';

// The CRM of seed 003: customers and their interactions, per organization. Every index leads with
// what each query pins: lists page by (organization_id, created_at); statistics count by stage and
// assignee; restricted callers match created_by OR assigned_to; the email is unique per
// organization whatever its case (an expression index, since the address keeps its given case).
// Interactions carry their customer's organization_id so organization-wide lists and 30-day
// counts read one index without joining customers.
export class Migration20261123400000Crm extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "customer" ("id" uuid not null, "organization_id" uuid not null, "first_name" varchar(100) not null, "last_name" varchar(100) not null, "email" varchar(254) not null, "phone" varchar(20) null, "company" varchar(200) null, "address" varchar(2000) null, "notes" varchar(2000) null, "stage" text not null default 'LEAD', "created_by" uuid null, "assigned_to" uuid null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "customer" add constraint "customer_stage_check" check ("stage" in ('LEAD', 'IN_PROGRESS', 'ACTIVE'));`);
    this.addSql(`create index "customer_organization_id_created_at_index" on "customer" ("organization_id", "created_at");`);
    this.addSql(`create index "customer_organization_id_stage_index" on "customer" ("organization_id", "stage");`);
    this.addSql(`create index "customer_organization_id_assigned_to_index" on "customer" ("organization_id", "assigned_to");`);
    this.addSql(`create index "customer_organization_id_created_by_index" on "customer" ("organization_id", "created_by");`);
    this.addSql(`create unique index "customer_organization_id_lower_email_unique" on "customer" ("organization_id", lower("email"));`);
    this.addSql(`alter table "customer" add constraint "customer_organization_id_foreign" foreign key ("organization_id") references "organization" ("id") on delete cascade;`);
    this.addSql(`alter table "customer" add constraint "customer_created_by_foreign" foreign key ("created_by") references "app_user" ("id") on delete set null;`);
    this.addSql(`alter table "customer" add constraint "customer_assigned_to_foreign" foreign key ("assigned_to") references "app_user" ("id") on delete set null;`);

    this.addSql(`create table "customer_interaction" ("id" uuid not null, "organization_id" uuid not null, "customer_id" uuid not null, "interaction_type" text not null, "subject" varchar(200) not null, "description" varchar(5000) not null default '', "created_by" uuid null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "customer_interaction" add constraint "customer_interaction_interaction_type_check" check ("interaction_type" in ('CALL', 'EMAIL', 'MEETING', 'NOTE'));`);
    this.addSql(`create index "customer_interaction_customer_id_created_at_index" on "customer_interaction" ("customer_id", "created_at");`);
    this.addSql(`create index "customer_interaction_organization_id_created_at_index" on "customer_interaction" ("organization_id", "created_at");`);
    this.addSql(`alter table "customer_interaction" add constraint "customer_interaction_organization_id_foreign" foreign key ("organization_id") references "organization" ("id") on delete cascade;`);
    this.addSql(`alter table "customer_interaction" add constraint "customer_interaction_customer_id_foreign" foreign key ("customer_id") references "customer" ("id") on delete cascade;`);
    this.addSql(`alter table "customer_interaction" add constraint "customer_interaction_created_by_foreign" foreign key ("created_by") references "app_user" ("id") on delete set null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "customer_interaction" cascade;`);
    this.addSql(`drop table if exists "customer" cascade;`);
  }
}
