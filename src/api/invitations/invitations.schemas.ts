import { z } from 'zod';

export const OrganizationInvitationsParams = z.object({ id: z.uuid({ error: 'expected a UUID' }) });

export const InvitationParams = z.object({
  id: z.uuid({ error: 'expected a UUID' }),
  invitation_id: z.uuid({ error: 'expected a UUID' }),
});

export const InvitationCreateBody = z.strictObject({
  email: z.email({ error: 'expected an email address' }).max(254),
  role: z.string().trim().min(1).max(64).describe('the role to give: its key, its name whatever the case, or its id; one of the organization\'s roles, never beyond your own'),
}).meta({ id: 'InvitationCreate' });

export const InvitationResponse = z.object({
  id: z.uuid(),
  organization_id: z.uuid(),
  email: z.string(),
  role: z.object({ id: z.uuid(), key: z.string(), name: z.string() }).nullable().describe('null when the role was deleted since'),
  invited_by: z.uuid().nullable().describe('the user who invited; null for an application\'s token'),
  created_at: z.iso.datetime(),
  expires_at: z.iso.datetime(),
}).meta({ id: 'Invitation' });
