import type { MikroORM } from '@mikro-orm/postgresql';

import { defineRoute } from '../../http/define-route.ts';
import { AppError, assertThat } from '../../http/errors.ts';
import { findActiveProfile } from '../../services/users.service.ts';
import { UserProfileResponse } from './me.schemas.ts';

export function meRoutes(deps: { orm: MikroORM }) {
  return [
    defineRoute({
      method: 'get',
      path: '/me',
      tag: 'Me',
      summary: 'The user the access token acts for',
      responses: { 200: UserProfileResponse },
      errors: ['auth.user_required', 'resource.not_found'],
      handler: async ({ auth }) => {
        if (!auth.userId) throw new AppError('auth.user_required', 'This token acts for a client, not a user');
        const profile = await findActiveProfile(deps.orm, auth.userId);
        assertThat(profile, 'resource.not_found', 'The user of this token no longer exists or is disabled');
        return { status: 200, body: profile };
      },
    }),
  ];
}
