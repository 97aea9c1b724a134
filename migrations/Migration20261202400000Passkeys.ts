import { Migration } from '@mikro-orm/migrations';

// Passkeys (WebAuthn, API.md "Multi-factor authentication"): a passkey is an `mfa_factor` of kind
// 'passkey' with its credential's columns. The credential id is unique across all users (the
// authenticator makes it at random, and a discoverable sign-in finds the user by it alone).
export class Migration20261202400000Passkeys extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "mfa_factor"
      add column "credential_id" text null,
      add column "public_key" bytea null,
      add column "sign_count" bigint null,
      add column "transports" text[] null,
      add column "aaguid" uuid null,
      add column "backed_up" boolean null;`);
    this.addSql(`create unique index "mfa_factor_credential_id_unique" on "mfa_factor" ("credential_id") where "credential_id" is not null;`);
    this.addSql(`alter table "mfa_factor" add constraint "mfa_factor_passkey_columns_check"
      check ("kind" <> 'passkey' or ("credential_id" is not null and "public_key" is not null and "sign_count" is not null));`);
  }

  override async down(): Promise<void> {
    this.addSql('delete from "mfa_factor" where "kind" = \'passkey\';');
    this.addSql('alter table "mfa_factor" drop constraint "mfa_factor_passkey_columns_check";');
    this.addSql('drop index "mfa_factor_credential_id_unique";');
    this.addSql(`alter table "mfa_factor" drop column "credential_id", drop column "public_key", drop column "sign_count",
      drop column "transports", drop column "aaguid", drop column "backed_up";`);
  }
}
