import { Migration } from '@mikro-orm/migrations';

// Locations of an organization (seed 004) and the users assigned to them. The partial unique
// index keeps one primary location per user even when two assignments race.
export class Migration20261123200000Locations extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "location" ("id" uuid not null, "organization_id" uuid not null, "name" varchar(200) not null, "code" varchar(32) not null, "description" text null, "address" varchar(500) null, "city" varchar(100) null, "state" varchar(100) null, "country" varchar(100) null, "postal_code" varchar(20) null, "is_active" boolean not null default true, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "location" add constraint "location_organization_id_code_unique" unique ("organization_id", "code");`);
    this.addSql(`alter table "location" add constraint "location_organization_id_foreign" foreign key ("organization_id") references "organization" ("id") on delete cascade;`);
    this.addSql(`create table "user_location" ("user_id" uuid not null, "location_id" uuid not null, "is_primary" boolean not null default false, "assigned_at" timestamptz not null, primary key ("user_id", "location_id"));`);
    this.addSql(`create index "user_location_location_id_index" on "user_location" ("location_id");`);
    this.addSql(`create unique index "user_location_one_primary_per_user" on "user_location" ("user_id") where is_primary;`);
    this.addSql(`alter table "user_location" add constraint "user_location_user_id_foreign" foreign key ("user_id") references "app_user" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "user_location" add constraint "user_location_location_id_foreign" foreign key ("location_id") references "location" ("id") on update cascade on delete cascade;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "user_location" cascade;`);
    this.addSql(`drop table if exists "location" cascade;`);
  }
}
