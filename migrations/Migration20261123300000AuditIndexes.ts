import { Migration } from '@mikro-orm/migrations';

// Indexes for reading the audit trail newest first by keyset, (occurred_at, id) < (?, ?): one per
// organization (it supersedes the (organization_id, occurred_at) index, its own prefix) and one
// across organizations for the super admin's list, exports and platform statistics.
export class Migration20261123300000AuditIndexes extends Migration {
  override async up(): Promise<void> {
    this.addSql(`drop index if exists "audit_log_organization_id_occurred_at_index";`);
    this.addSql(`create index "audit_log_organization_id_occurred_at_id_index" on "audit_log" ("organization_id", "occurred_at", "id");`);
    this.addSql(`create index "audit_log_occurred_at_id_index" on "audit_log" ("occurred_at", "id");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "audit_log_occurred_at_id_index";`);
    this.addSql(`drop index if exists "audit_log_organization_id_occurred_at_id_index";`);
    this.addSql(`create index "audit_log_organization_id_occurred_at_index" on "audit_log" ("organization_id", "occurred_at");`);
  }
}
