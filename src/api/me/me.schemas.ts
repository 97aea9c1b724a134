import { z } from 'zod';

export const UserProfileResponse = z.object({
  id: z.uuid(),
  email: z.string(),
  username: z.string().nullable(),
  first_name: z.string(),
  last_name: z.string(),
  full_name: z.string(),
  is_active: z.boolean(),
  is_verified: z.boolean(),
  roles: z.array(z.string()),
  organization: z.object({ id: z.uuid(), slug: z.string(), name: z.string() }),
  last_login_at: z.iso.datetime().nullable(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
}).meta({ id: 'UserProfile' });
