import { Migration } from '@mikro-orm/migrations';

// Roles get a display name people write ("Sales Manager") beside a stable machine key
// ("sales_manager") that tokens' `roles` claims and permission checks use. Existing roles keep
// their lowercase names as keys, so tokens minted before the change keep working. Names are unique
// per organization whatever their case.
export class Migration20261124000000RoleKeys extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "role" add column "key" varchar(64) null;`);
    this.addSql(`update "role" set "key" = "name";`);
    this.addSql(`alter table "role" alter column "key" set not null;`);
    this.addSql(`alter table "role" drop constraint "role_organization_id_name_unique";`);
    this.addSql(`alter table "role" add constraint "role_organization_id_key_unique" unique ("organization_id", "key");`);
    this.addSql(`create unique index "role_organization_id_lower_name_unique" on "role" ("organization_id", lower("name"));`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "role_organization_id_lower_name_unique";`);
    this.addSql(`alter table "role" drop constraint "role_organization_id_key_unique";`);
    this.addSql(`update "role" set "name" = "key";`);
    this.addSql(`alter table "role" add constraint "role_organization_id_name_unique" unique ("organization_id", "name");`);
    this.addSql(`alter table "role" drop column "key";`);
  }
}
