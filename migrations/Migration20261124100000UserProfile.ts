import { Migration } from '@mikro-orm/migrations';

// Profile attributes of a user as seed 002 records them: the company they name (free text, not
// the Latchkey organization the user belongs to), a contact person, phone and e-mail, a postal
// address, an industry and what they use the service for.
export class Migration20261124100000UserProfile extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "app_user"
      add column "organisation" varchar(200) null,
      add column "contact_name" varchar(200) null,
      add column "contact_phone" varchar(32) null,
      add column "contact_email" varchar(254) null,
      add column "address" varchar(500) null,
      add column "industry" varchar(100) null,
      add column "use_case" text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "app_user"
      drop column "organisation", drop column "contact_name", drop column "contact_phone", drop column "contact_email",
      drop column "address", drop column "industry", drop column "use_case";`);
  }
}
