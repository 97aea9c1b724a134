import { Migration } from '@mikro-orm/migrations';

// Deleting a user sets created_by to null on their interactions: without an index that walks the table.
export class Migration20261123500000InteractionAuthorIndex extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create index "customer_interaction_created_by_index" on "customer_interaction" ("created_by");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "customer_interaction_created_by_index";`);
  }
}
