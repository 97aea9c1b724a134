// The OpenAPI 3.1 document, generated from the same route declarations (and zod schemas) that
// validate requests (STYLE.md "One schema, three jobs"). JSON Schema 2020-12 is OpenAPI 3.1's own
// dialect, so zod's converter output is used as is; named schemas become components.
import { z, type ZodType } from 'zod';

import type { Config } from '../platform/config.ts';
import { VERSION } from '../platform/version.ts';
import type { RouteDefinition } from './define-route.ts';
import { ERROR_CATALOGUE } from '../platform/errors.ts';

type JsonSchema = Record<string, unknown>;

const PROBLEM_SCHEMA: JsonSchema = {
  type: 'object',
  description: 'RFC 9457 problem details',
  required: ['type', 'title', 'status'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', enum: Object.keys(ERROR_CATALOGUE) },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        required: ['path', 'message', 'code'],
        properties: { path: { type: 'array', items: { type: ['string', 'integer'] } }, message: { type: 'string' }, code: { type: 'string' } },
      },
    },
    // Extension members (RFC 9457 section 3.2) of the sign-in answers that need a second factor.
    error: { type: 'string', description: 'auth.mfa_required and auth.mfa_enrollment_required: the same refusal in OAuth\'s words (mfa_required, mfa_enrollment_required)' },
    mfa_token: { type: 'string', description: 'auth.mfa_required: send it with a code to POST /api/v1/auth/mfa within 5 minutes' },
  },
};

const TITLE_OF_STATUS = new Map<number, string>();
for (const { status, title } of Object.values(ERROR_CATALOGUE)) if (!TITLE_OF_STATUS.has(status)) TITLE_OF_STATUS.set(status, title);

class SchemaCollector {
  readonly components: Record<string, JsonSchema> = { Problem: PROBLEM_SCHEMA };

  /** The schema with its named parts moved to components and references pointing there. */
  convert(schema: ZodType, io: 'input' | 'output'): JsonSchema {
    const converted = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema;
    const { $schema: _dialect, $defs, ...rest } = converted as JsonSchema & { $defs?: Record<string, JsonSchema> };
    for (const [name, definition] of Object.entries($defs ?? {})) this.components[name] ??= SchemaCollector.#relink(definition) as JsonSchema;
    return SchemaCollector.#relink(rest) as JsonSchema;
  }

  static #relink(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((item) => SchemaCollector.#relink(item));
    if (!value || typeof value !== 'object') return value;
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [
      key,
      key === '$ref' && typeof inner === 'string' ? inner.replace('#/$defs/', '#/components/schemas/') : SchemaCollector.#relink(inner),
    ]));
  }
}

/** koa-router's `/users/:id` is OpenAPI's `/users/{id}`. */
export function openApiPath(path: string): string {
  return path.replace(/:(\w+)/g, '{$1}');
}

function parametersOf(collector: SchemaCollector, schema: ZodType | undefined, location: 'path' | 'query') {
  if (!schema) return [];
  const converted = collector.convert(schema, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(converted.properties ?? {}).map(([name, property]) => ({
    name, in: location, required: location === 'path' || (converted.required ?? []).includes(name), schema: property,
  }));
}

export function buildOpenApiDocument(routes: RouteDefinition[], config: Pick<Config, 'issuer'>, prefix: string) {
  const collector = new SchemaCollector();
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = `${prefix}${openApiPath(route.path)}`;
    const responses: Record<string, unknown> = {};
    for (const [status, schema] of Object.entries(route.responses)) {
      responses[status] = schema
        ? { description: 'Success', content: { 'application/json': { schema: collector.convert(schema, 'output') } } }
        : route.produces
          ? { description: 'Success: a streamed download', content: Object.fromEntries(route.produces.map((type) => [type, { schema: { type: 'string' } }])) }
          : { description: 'Success, no content' };
    }
    const errorStatuses = new Set<number>([400, 422, ...(route.authenticated === false ? [] : [401, 403]), ...(route.params ? [404] : []), 429, 503]);
    for (const code of route.errors ?? []) errorStatuses.add(ERROR_CATALOGUE[code].status);
    for (const status of [...errorStatuses].sort()) {
      const codes = (route.errors ?? []).filter((code) => ERROR_CATALOGUE[code].status === status);
      responses[String(status)] = {
        description: codes.length > 0 ? codes.join(', ') : TITLE_OF_STATUS.get(status) ?? 'Error',
        content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
      };
    }
    const operation: Record<string, unknown> = {
      operationId: `${route.method}${path.replace(/[^A-Za-z0-9]+(\w)?/g, (_match, letter: string | undefined) => (letter ?? '').toUpperCase())}`,
      tags: [route.tag],
      summary: route.summary,
      parameters: [...parametersOf(collector, route.params, 'path'), ...parametersOf(collector, route.query, 'query')],
      responses,
      ...(route.body ? { requestBody: { required: true, content: { 'application/json': { schema: collector.convert(route.body, 'input') } } } } : {}),
      security: route.authenticated === false ? [] : [{ bearer: [] }, { dpop: [] }, { oauth2: route.scope ? [route.scope] : [] }],
      ...(route.scope || route.permission ? { 'x-latchkey-scope': route.scope ?? null, 'x-latchkey-permission': route.permission ?? null } : {}),
    };
    if (route.permission) operation.description = `Needs the \`${route.permission}\` permission${route.scope ? ` and the \`${route.scope}\` scope` : ''}.`;
    (paths[path] ??= {})[route.method] = operation;
  }

  const discovery = `${config.issuer}/.well-known/openid-configuration`;
  return {
    openapi: '3.1.0',
    info: {
      title: 'Latchkey API',
      version: VERSION,
      description: [
        'The resource API of Latchkey. Every route takes an access token from Latchkey\'s OAuth 2.0 / OpenID Connect endpoints,',
        `described by discovery at ${discovery}: token \`${config.issuer}/oauth/token\`, authorization \`${config.issuer}/oauth/authorize\`,`,
        `introspection, revocation, PAR, device authorization, userinfo and JWKS. Errors are RFC 9457 problem+json.`,
      ].join(' '),
    },
    externalDocs: { description: 'OpenID Connect discovery (the OAuth endpoints)', url: discovery },
    servers: [{ url: config.issuer }],
    tags: [...new Set(routes.map((route) => route.tag))].map((name) => ({ name })),
    paths,
    components: {
      schemas: collector.components,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An access token for the audience ISSUER/api (opaque or RFC 9068 JWT)' },
        dpop: { type: 'http', scheme: 'dpop', description: 'A DPoP-bound access token with its proof in the DPoP header (RFC 9449)' },
        oauth2: {
          type: 'oauth2',
          flows: {
            clientCredentials: { tokenUrl: `${config.issuer}/oauth/token`, scopes: scopeDescriptions() },
            authorizationCode: { authorizationUrl: `${config.issuer}/oauth/authorize`, tokenUrl: `${config.issuer}/oauth/token`, scopes: scopeDescriptions() },
          },
        },
        openIdConnect: { type: 'openIdConnect', openIdConnectUrl: discovery },
      },
    },
  };
}

function scopeDescriptions(): Record<string, string> {
  return {
    'crm:read': 'Read customers, interactions and statistics',
    'crm:write': 'Change customers and interactions',
    'users:read': 'Read users, organizations, locations and clients',
    'users:write': 'Administer users, organizations, locations and clients',
    'rbac:read': 'Read roles and permissions',
    'rbac:write': 'Change roles and permissions',
    'audit:read': 'Read the audit trail',
  };
}
