import { Migration } from '@mikro-orm/migrations';

// The transactional outbox (API.md section 4, "Mail"): a message (a mail now, a webhook later) is a
// row written in the same transaction as the change that causes it, and a delivery worker in every
// process claims and sends it. The partial index holds only what is waiting or being sent, so the
// claim (status = 'pending' and next_attempt_at <= now(), oldest first) and the lease check stay
// cheap however many sent rows the table keeps.
export class Migration20261202000000Outbox extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "outbox_message" (
      "id" uuid not null primary key,
      "kind" varchar(32) not null,
      "payload" jsonb not null,
      "status" text not null default 'pending' check ("status" in ('pending', 'sending', 'sent', 'failed')),
      "attempts" int not null default 0,
      "next_attempt_at" timestamptz not null default now(),
      "last_error" text null,
      "created_at" timestamptz not null default now(),
      "sent_at" timestamptz null
    );`);
    this.addSql(`create index "outbox_message_status_next_attempt_at_index" on "outbox_message" ("status", "next_attempt_at")
      where "status" in ('pending', 'sending');`);
    this.addSql(`create index "outbox_message_kind_status_created_at_index" on "outbox_message" ("kind", "status", "created_at");`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists "outbox_message";');
  }
}
