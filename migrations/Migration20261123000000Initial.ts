import { Migration } from '@mikro-orm/migrations';

// The identity core: organizations, users and roles, the OAuth client registry, the provider's
// long-lived artefacts, signing keys, server secrets and the audit trail.
export class Migration20261123000000Initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "audit_log" ("id" uuid not null, "occurred_at" timestamptz not null, "organization_id" uuid null, "actor_id" uuid null, "actor_client_id" varchar(128) null, "target_id" varchar(128) null, "action" varchar(64) not null, "resource" varchar(64) not null, "resource_id" varchar(128) null, "status" text not null, "ip" varchar(64) null, "user_agent" varchar(512) null, "details" jsonb null, primary key ("id"));`);
    this.addSql(`create index "audit_log_organization_id_occurred_at_index" on "audit_log" ("organization_id", "occurred_at");`);
    this.addSql(`create index "audit_log_actor_id_occurred_at_index" on "audit_log" ("actor_id", "occurred_at");`);
    this.addSql(`create index "audit_log_target_id_occurred_at_index" on "audit_log" ("target_id", "occurred_at");`);
    this.addSql(`alter table "audit_log" add constraint "audit_log_status_check" check ("status" in ('success', 'failure'));`);
    this.addSql(`create table "oidc_artifact" ("model" varchar(32) not null, "id" varchar(128) not null, "grant_id" varchar(128) null, "account_id" varchar(128) null, "client_id" varchar(128) null, "payload" jsonb not null, "expires_at" timestamptz null, "consumed_at" timestamptz null, "created_at" timestamptz not null, primary key ("model", "id"));`);
    this.addSql(`create index "oidc_artifact_grant_id_index" on "oidc_artifact" ("grant_id");`);
    this.addSql(`create index "oidc_artifact_account_id_index" on "oidc_artifact" ("account_id");`);
    this.addSql(`create index "oidc_artifact_expires_at_index" on "oidc_artifact" ("expires_at");`);
    this.addSql(`create table "organization" ("id" uuid not null, "slug" varchar(64) not null, "name" varchar(200) not null, "description" text null, "max_users" int null, "is_active" boolean not null default true, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "organization" add constraint "organization_slug_unique" unique ("slug");`);
    this.addSql(`create table "role" ("id" uuid not null, "organization_id" uuid null, "name" varchar(64) not null, "description" text null, "is_builtin" boolean not null default false, "is_active" boolean not null default true, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "role" add constraint "role_organization_id_name_unique" unique ("organization_id", "name");`);
    this.addSql(`create table "server_secret" ("name" varchar(64) not null, "value" text not null, "created_at" timestamptz not null, primary key ("name"));`);
    this.addSql(`create table "signing_key" ("kid" varchar(64) not null, "alg" varchar(16) not null, "private_jwk" jsonb not null, "public_jwk" jsonb not null, "created_at" timestamptz not null, "retire_at" timestamptz null, primary key ("kid"));`);
    this.addSql(`create table "app_user" ("id" uuid not null, "organization_id" uuid not null, "email" varchar(254) not null, "username" varchar(64) null, "first_name" varchar(100) not null default '', "last_name" varchar(100) not null default '', "password_hash" varchar(255) not null, "is_active" boolean not null default true, "is_verified" boolean not null default false, "last_login_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "app_user" add constraint "app_user_organization_id_email_unique" unique ("organization_id", "email");`);
    this.addSql(`alter table "app_user" add constraint "app_user_organization_id_username_unique" unique ("organization_id", "username");`);
    this.addSql(`create table "oauth_client" ("client_id" varchar(128) not null, "organization_id" uuid null, "owner_id" uuid null, "kind" text not null default 'application', "first_party" boolean not null default false, "metadata" jsonb not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("client_id"));`);
    this.addSql(`alter table "oauth_client" add constraint "oauth_client_kind_check" check ("kind" in ('application', 'personal', 'dynamic'));`);
    this.addSql(`create table "user_role" ("user_id" uuid not null, "role_id" uuid not null, primary key ("user_id", "role_id"));`);
    this.addSql(`alter table "role" add constraint "role_organization_id_foreign" foreign key ("organization_id") references "organization" ("id") on delete cascade;`);
    this.addSql(`alter table "app_user" add constraint "app_user_organization_id_foreign" foreign key ("organization_id") references "organization" ("id") on delete cascade;`);
    this.addSql(`alter table "oauth_client" add constraint "oauth_client_organization_id_foreign" foreign key ("organization_id") references "organization" ("id") on delete cascade;`);
    this.addSql(`alter table "oauth_client" add constraint "oauth_client_owner_id_foreign" foreign key ("owner_id") references "app_user" ("id") on delete cascade;`);
    this.addSql(`alter table "user_role" add constraint "user_role_user_id_foreign" foreign key ("user_id") references "app_user" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "user_role" add constraint "user_role_role_id_foreign" foreign key ("role_id") references "role" ("id") on update cascade on delete cascade;`);
    this.addSql(`create index "oauth_client_owner_id_index" on "oauth_client" ("owner_id");`);
    this.addSql(`create index "oauth_client_organization_id_index" on "oauth_client" ("organization_id");`);
    this.addSql(`create index "user_role_role_id_index" on "user_role" ("role_id");`);
  }

  override async down(): Promise<void> {
    for (const table of ['user_role', 'oauth_client', 'app_user', 'role', 'organization', 'signing_key', 'server_secret', 'oidc_artifact', 'audit_log']) {
      this.addSql(`drop table if exists "${table}" cascade;`);
    }
  }
}
