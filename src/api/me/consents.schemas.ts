import { z } from 'zod';

export const ConsentResponse = z.object({
  client_id: z.string(),
  client_name: z.string(),
  scopes: z.array(z.string()),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
}).meta({ id: 'Consent' });

export const ConsentClientParams = z.object({ client_id: z.string().min(1).max(128) });
