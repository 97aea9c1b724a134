import { Migration } from '@mikro-orm/migrations';

// Invitations to an organization (issue 14 part 6). An invitation is a link token of purpose
// 'invitation' (services/invitations.service.ts): its organization is the row's organization_id and
// the invited address is data->>'email'. At most one invitation per address and organization is
// pending: inviting the address again revokes the old one first, and this partial unique index
// makes that a rule of the database, not only of the code. It also serves the lookup of the pending
// invitation of an address.
export class Migration20261202300000Invitations extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create unique index "link_token_pending_invitation_unique" on "link_token" ("organization_id", (("data" ->> 'email')))
      where "purpose" = 'invitation' and "consumed_at" is null and "revoked_at" is null;`);
  }

  override async down(): Promise<void> {
    this.addSql('drop index if exists "link_token_pending_invitation_unique";');
  }
}
