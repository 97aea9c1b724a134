import { Migration } from '@mikro-orm/migrations';

// Multi-factor authentication (API.md section 4): a user's second factors, one row each, and their
// recovery codes (hashed). `mfa_factor` holds what every kind shares plus TOTP's own columns; a
// passkey adds its credential's columns to it. One TOTP factor per user, confirmed or not.
export class Migration20261202200000Mfa extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "mfa_factor" (
      "id" uuid not null primary key,
      "user_id" uuid not null references "app_user" ("id") on update cascade on delete cascade,
      "kind" text not null check ("kind" in ('totp', 'passkey')),
      "name" varchar(64) null,
      "secret_ciphertext" text null,
      "last_used_step" bigint null,
      "confirmed_at" timestamptz null,
      "last_used_at" timestamptz null,
      "created_at" timestamptz not null default now()
    );`);
    this.addSql('create index "mfa_factor_user_id_index" on "mfa_factor" ("user_id");');
    this.addSql(`create unique index "mfa_factor_user_id_totp_unique" on "mfa_factor" ("user_id") where "kind" = 'totp';`);
    this.addSql(`create table "recovery_code" (
      "id" uuid not null primary key,
      "user_id" uuid not null references "app_user" ("id") on update cascade on delete cascade,
      "code_hash" varchar(64) not null,
      "used_at" timestamptz null,
      "created_at" timestamptz not null default now()
    );`);
    this.addSql('create index "recovery_code_user_id_index" on "recovery_code" ("user_id");');
    this.addSql('alter table "organization" add column "mfa_required" boolean not null default false;');
  }

  override async down(): Promise<void> {
    this.addSql('alter table "organization" drop column "mfa_required";');
    this.addSql('drop table if exists "recovery_code";');
    this.addSql('drop table if exists "mfa_factor";');
  }
}
