import { defineRoute } from '../../http/define-route.ts';
import { PageQuery, offsetOf, pageEnvelope, pageEnvelopeSchema } from '../../http/pagination.ts';
import type { Config } from '../../platform/config.ts';
import type { InvitationsService } from '../../services/invitations.service.ts';
import { InvitationCreateBody, InvitationParams, InvitationResponse, OrganizationInvitationsParams } from './invitations.schemas.ts';

// Inviting adds a user, so it needs what creating one needs; the pending list is read like users.
const READ = { scope: 'users:read', permission: 'users:read' } as const;
const WRITE = { scope: 'users:write', permission: 'users:write' } as const;

/** What these routes use (built in src/dependencies.ts). */
export interface InvitationsRoutesDependencies {
  config: Pick<Config, 'issuer'>;
  invitations: InvitationsService;
}

export function invitationsRoutes(deps: InvitationsRoutesDependencies) {
  const invitations = deps.invitations;
  return [
    defineRoute({
      method: 'post', path: '/organizations/:id/invitations', tag: 'Invitations', ...WRITE,
      summary: 'Invite an address to the organization with a role: mails a link to /account/accept-invitation (7 days); a pending invitation of the same address is replaced',
      params: OrganizationInvitationsParams, body: InvitationCreateBody, responses: { 201: InvitationResponse },
      errors: ['invitation.already_member', 'organization.inactive'],
      handler: async (input) => ({ status: 201, body: await invitations.create(input.actor, input.params.id, input.body) }),
    }),
    defineRoute({
      method: 'get', path: '/organizations/:id/invitations', tag: 'Invitations', ...READ,
      summary: 'Pending invitations of the organization (neither accepted, withdrawn, replaced nor expired), newest first',
      params: OrganizationInvitationsParams, query: PageQuery, responses: { 200: pageEnvelopeSchema(InvitationResponse) },
      handler: async (input) => {
        const { query, ctx } = input;
        const { count, results } = await invitations.list(input.actor, input.params.id, { limit: query.page_size, offset: offsetOf(query) });
        return { status: 200, body: pageEnvelope(ctx, deps.config.issuer, query, count, results) };
      },
    }),
    defineRoute({
      method: 'delete', path: '/organizations/:id/invitations/:invitation_id', tag: 'Invitations', ...WRITE,
      summary: 'Withdraw a pending invitation: its link then says it was withdrawn',
      params: InvitationParams, responses: { 204: null },
      handler: async (input) => {
        await invitations.withdraw(input.actor, input.params.id, input.params.invitation_id);
        return { status: 204 };
      },
    }),
  ];
}
