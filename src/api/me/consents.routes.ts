// The clients a user has authorized, and withdrawing that authorization (API.md "Auth", ASVS 10.7.3).
import { defineRoute } from '../../http/define-route.ts';
import { assertThat } from '../../platform/errors.ts';
import { PageQuery, offsetOf, pageEnvelope, pageEnvelopeSchema } from '../../http/pagination.ts';
import type { Config } from '../../platform/config.ts';
import type { ConsentsService } from '../../services/consents.service.ts';
import { actingUser } from '../../services/self-service.service.ts';
import { ConsentClientParams, ConsentResponse } from './consents.schemas.ts';

/** What these routes use (built in src/dependencies.ts). */
export interface ConsentsRoutesDependencies {
  config: Pick<Config, 'issuer'>;
  consents: ConsentsService;
}

export function consentsRoutes(deps: ConsentsRoutesDependencies) {
  const consents = deps.consents;

  return [
    defineRoute({
      method: 'get', path: '/me/consents', tag: 'Me', summary: 'The applications you have authorized, with the scopes you allowed',
      query: PageQuery, responses: { 200: pageEnvelopeSchema(ConsentResponse) }, errors: ['auth.user_required'],
      handler: async ({ auth, query, ctx }) => {
        const all = await consents.list(actingUser(auth));
        const page = all.slice(offsetOf(query), offsetOf(query) + query.page_size);
        return {
          status: 200,
          body: pageEnvelope(ctx, deps.config.issuer, query, all.length, page.map((consent) => ({
            client_id: consent.clientId,
            client_name: consent.clientName,
            scopes: consent.scopes,
            created_at: consent.createdAt.toISOString(),
            updated_at: consent.updatedAt.toISOString(),
          }))),
        };
      },
    }),

    defineRoute({
      method: 'delete', path: '/me/consents/:client_id', tag: 'Me',
      summary: 'Withdraw your authorization of an application; its tokens stop at the next call',
      params: ConsentClientParams, responses: { 204: null }, errors: ['auth.user_required', 'resource.not_found'],
      handler: async (input) => {
        const withdrawn = await consents.withdraw(input.actor, input.params.client_id);
        assertThat(withdrawn, 'resource.not_found', 'You have not authorized this application');
        return { status: 204 };
      },
    }),
  ];
}
