// Dynamic client registration (RFC 7591) and its management (RFC 7592) on node-oidc-provider,
// held to Latchkey's rules: registering needs an initial access token an admin issued
// (POST /api/v1/clients/initial-access-tokens), each token registers one client, that client joins
// the admin's organization, and its secret is shown once, in the registration response only.
import { errors, type Configuration, type KoaContextWithOIDC, type Provider } from 'oidc-provider';

import type { Logger } from '../platform/logger.ts';
import type { ProviderClientModels } from '../services/applications.service.ts';
import { defaultScope, metadataProblems, normalizeScope, responseTypesFor } from '../services/client-metadata.ts';
import type { ClientRegistry } from '../services/client-registry.service.ts';
import { generateClientId, generateClientSecret, isHashedClientSecret } from '../services/client-secrets.ts';

/** Every initial access token Latchkey issues carries this policy; the registration access token inherits it. */
export const REGISTRATION_POLICY = 'latchkey';

type RegistrationFeature = NonNullable<NonNullable<Configuration['features']>['registration']>;
type Metadata = Record<string, unknown>;

/** ['redirect_uris', 0] as redirect_uris[0], the way the provider names fields in its descriptions. */
function pathText(path: (string | number)[]): string {
  return path.map((part, index) => (typeof part === 'number' ? `[${part}]` : index === 0 ? part : `.${part}`)).join('');
}

function invalid(description: string): never {
  // The provider answers invalid_redirect_uri for descriptions about redirect_uris (RFC 7591 section 3.2.2).
  throw new errors.InvalidClientMetadata(description);
}

/**
 * Runs inside the provider's registration step, after the body is read and before the client is
 * stored: Latchkey's rules, then the provider's own validation, and only then the initial access
 * token is spent, so a refused request does not burn it, and of two racing requests one wins.
 */
async function applyLatchkeyRules(ctx: KoaContextWithOIDC, properties: Metadata): Promise<void> {
  const oidc = ctx.oidc as unknown as {
    route: string;
    provider: Provider;
    client?: { first_party?: unknown };
    entities: { InitialAccessToken?: { jti: string } };
  };
  // RFC 7591 section 2: the server decides what a client may be; first-party is an admin's decision.
  if (properties.first_party !== undefined && properties.first_party !== false) {
    invalid('first_party cannot be registered; an administrator decides it');
  }
  delete properties.first_party;
  if (oidc.route === 'client_update' && oidc.client?.first_party === true) properties.first_party = true;

  const grantTypes = Array.isArray(properties.grant_types) ? (properties.grant_types as unknown[]).map(String) : ['authorization_code'];
  // RFC 7591 section 2.1 defaults response_types to "code" even for a client_credentials-only
  // client, which then "needs" a redirect URI; as in the admin API, they follow from grant_types.
  if (properties.response_types === undefined) properties.response_types = responseTypesFor(grantTypes);
  properties.scope = normalizeScope(properties.scope) ?? defaultScope(grantTypes);
  const [problem] = metadataProblems(properties, { firstParty: properties.first_party === true });
  if (problem) invalid(`${pathText(problem.path)} ${problem.message}`);
  await oidc.provider.Client.validate(properties as Parameters<Provider['Client']['validate']>[0]);

  if (oidc.route === 'registration') {
    const token = oidc.entities.InitialAccessToken;
    if (!token) throw new errors.InvalidToken('initial access token required');
    try {
      // Atomic in the adapter (UPDATE ... WHERE consumed_at IS NULL): one racer wins.
      await oidc.provider.InitialAccessToken.adapter.consume(token.jti);
    } catch (error) {
      if (error instanceof errors.InvalidGrant) throw new errors.InvalidToken('initial access token already used');
      throw error;
    }
  }
}

export function registrationFeature(): RegistrationFeature {
  return {
    enabled: true,
    // RFC 7591 section 3: open registration is off; only an admin's initial access token opens it.
    initialAccessToken: true,
    idFactory: () => generateClientId(),
    // 256-bit, like every client secret (API.md section 2); the adapter stores only its hash.
    secretFactory: async () => generateClientSecret(),
    policies: { [REGISTRATION_POLICY]: applyLatchkeyRules as NonNullable<RegistrationFeature['policies']>[string] },
  };
}

function bearerToken(ctx: KoaContextWithOIDC): string | undefined {
  const [scheme, value] = (ctx.get('authorization') || '').split(' ');
  return scheme?.toLowerCase() === 'bearer' && value ? value : undefined;
}

function refuseToken(ctx: KoaContextWithOIDC, realm: string, description: string): void {
  // RFC 6750 section 3.1, as the provider answers a missing or unknown initial access token.
  ctx.status = 401;
  ctx.set('WWW-Authenticate', `Bearer realm="${realm}", error="invalid_token", error_description="${description}"`);
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error: 'invalid_token', error_description: description };
}

export interface RegistrationStepDependencies {
  clientRegistry: ClientRegistry;
  logger: Logger;
}

/**
 * Steps around the provider's registration routes. Before POST /oauth/reg: a spent initial
 * access token, or one Latchkey did not issue (without its policy, so without its rules), is
 * refused. After a registration: the client joins the organization its token was issued for.
 * After an RFC 7592 read or update: the stored secret (a hash) is not shown.
 */
export function registrationSteps(provider: Provider, registrationPath: string, deps: RegistrationStepDependencies) {
  return async function guardRegistration(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
    // The provider's router matches paths case-insensitively and with a trailing slash; so does this.
    if (ctx.method === 'POST' && ctx.path.replace(/(.)\/$/, '$1').toLowerCase() === registrationPath.toLowerCase()) {
      const value = bearerToken(ctx);
      const stored = value ? await provider.InitialAccessToken.adapter.find(value) as { consumed?: unknown; policies?: string[] } | undefined : undefined;
      if (stored?.consumed) return refuseToken(ctx, provider.issuer, 'initial access token already used');
      if (stored && !stored.policies?.includes(REGISTRATION_POLICY)) return refuseToken(ctx, provider.issuer, 'initial access token not issued by the admin API');
    }
    await next();

    const route = ctx.oidc?.route;
    if (route === 'registration' && ctx.status === 201) {
      const clientId = ctx.oidc.entities.Client?.clientId;
      const tokenId = ctx.oidc.entities.InitialAccessToken?.jti;
      if (!clientId || !tokenId) return;
      try {
        await deps.clientRegistry.adoptDynamicClient(clientId, tokenId, {
          action: 'client.register', resource: 'client', resourceId: clientId, ip: ctx.ip, userAgent: ctx.get('user-agent') || null,
          details: { kind: 'dynamic', client_name: (ctx.body as Metadata | undefined)?.client_name ?? null },
        });
      } catch (error) {
        // A client outside its organization would be invisible to the admin who allowed it: undo.
        deps.logger.error({ err: error, clientId }, 'registered client could not join its organization; removing it');
        await deps.clientRegistry.remove(clientId);
        throw error;
      }
    } else if ((route === 'client' || route === 'client_update') && ctx.status === 200) {
      // RFC 7592 section 3 lets a read repeat the secret; Latchkey keeps only its hash and shows
      // a secret once. A fresh plaintext (an update that made the client confidential) stays.
      const body = ctx.body as Metadata | undefined;
      if (body && isHashedClientSecret(body.client_secret)) {
        delete body.client_secret;
        delete body.client_secret_expires_at;
      }
    }
  };
}

/** The provider's client validation and initial access tokens, for the admin API's service. */
export function providerClientModels(current: () => Provider): ProviderClientModels {
  return {
    async checkClientMetadata(metadata) {
      const method = metadata.token_endpoint_auth_method ?? 'client_secret_basic';
      // The id and secret are made only after validation, but the provider's schema wants both
      // present to judge the rest; these stand-ins are never stored.
      const identity: Metadata = {
        client_id: 'lk_validation',
        ...(method === 'client_secret_basic' || method === 'client_secret_post' ? { client_secret: 'not-stored-validation-only' } : {}),
      };
      try {
        await current().Client.validate({ ...identity, ...metadata } as Parameters<Provider['Client']['validate']>[0]);
        return undefined;
      } catch (error) {
        if (error instanceof errors.InvalidClientMetadata || error instanceof errors.InvalidRedirectUri) {
          const refusal = error as unknown as { error: string; error_description?: string };
          return { error: refusal.error, description: refusal.error_description ?? refusal.error };
        }
        throw error;
      }
    },
    async issueInitialAccessToken(expiresIn) {
      const issuedAt = Math.floor(Date.now() / 1000);
      const token = new (current().InitialAccessToken)({ expiresIn, policies: [REGISTRATION_POLICY] });
      const value = await token.save();
      return { value, id: token.jti, expiresAt: new Date((issuedAt + expiresIn) * 1000) };
    },
    async discardInitialAccessToken(id) {
      await current().InitialAccessToken.adapter.destroy(id);
    },
  };
}
