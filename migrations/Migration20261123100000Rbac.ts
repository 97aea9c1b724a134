import { Migration } from '@mikro-orm/migrations';

// Permissions (global `resource:action`) and the roles that hold them; an organization column for
// provider artefacts that belong to one (initial access tokens).
export class Migration20261123100000Rbac extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "permission" ("id" uuid not null, "name" varchar(64) not null, "resource" varchar(32) not null, "action" varchar(32) not null, "description" text null, "is_builtin" boolean not null default false, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "permission" add constraint "permission_name_unique" unique ("name");`);
    this.addSql(`create table "role_permission" ("role_id" uuid not null, "permission_id" uuid not null, primary key ("role_id", "permission_id"));`);
    this.addSql(`alter table "role_permission" add constraint "role_permission_role_id_foreign" foreign key ("role_id") references "role" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "role_permission" add constraint "role_permission_permission_id_foreign" foreign key ("permission_id") references "permission" ("id") on update cascade on delete cascade;`);
    this.addSql(`create index "role_permission_permission_id_index" on "role_permission" ("permission_id");`);
    this.addSql(`alter table "oidc_artifact" add "organization_id" uuid null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "oidc_artifact" drop column "organization_id";`);
    this.addSql(`drop table if exists "role_permission" cascade;`);
    this.addSql(`drop table if exists "permission" cascade;`);
  }
}
