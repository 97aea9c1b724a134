import { Migration } from '@mikro-orm/migrations';

// The cleanup job deletes sent outbox rows some days after they were sent, and failed ones some
// days after they were written (services/cleanup.service.ts). Each delete batch walks one of these
// partial indexes oldest first, so it reads only the rows of its status, however many the table
// holds of the others.
export class Migration20261202310000OutboxRetention extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create index "outbox_message_sent_at_index" on "outbox_message" ("sent_at") where "status" = 'sent';`);
    this.addSql(`create index "outbox_message_failed_created_at_index" on "outbox_message" ("created_at") where "status" = 'failed';`);
  }

  override async down(): Promise<void> {
    this.addSql('drop index if exists "outbox_message_sent_at_index";');
    this.addSql('drop index if exists "outbox_message_failed_created_at_index";');
  }
}
