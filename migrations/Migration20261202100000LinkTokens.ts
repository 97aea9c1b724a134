import { Migration } from '@mikro-orm/migrations';

// Single-use link tokens (API.md section 4, "Mail"; issue 14 part 3): the token a mailed link
// carries (e-mail verification, password reset, invitation) is stored only as its SHA-256 hash, so
// a copy of the table opens no account. A token is consumed by one conditional UPDATE (consumed_at
// is null, revoked_at is null, expires_at > now()), so of two clicks exactly one wins. The partial
// index finds a user's live tokens of one purpose, which a new link or a password change revokes;
// the expiry index serves the cleanup job, which deletes rows a week past their expiry.
export class Migration20261202100000LinkTokens extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "link_token" (
      "id" uuid not null primary key,
      "token_hash" char(64) not null,
      "purpose" varchar(32) not null,
      "user_id" uuid null references "app_user" ("id") on update cascade on delete cascade,
      "organization_id" uuid null references "organization" ("id") on update cascade on delete cascade,
      "data" jsonb not null default '{}',
      "created_at" timestamptz not null default now(),
      "expires_at" timestamptz not null,
      "consumed_at" timestamptz null,
      "revoked_at" timestamptz null
    );`);
    this.addSql(`create unique index "link_token_token_hash_unique" on "link_token" ("token_hash");`);
    this.addSql(`create index "link_token_user_id_purpose_index" on "link_token" ("user_id", "purpose")
      where "consumed_at" is null and "revoked_at" is null;`);
    this.addSql(`create index "link_token_organization_id_index" on "link_token" ("organization_id");`);
    this.addSql(`create index "link_token_expires_at_index" on "link_token" ("expires_at");`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists "link_token";');
  }
}
