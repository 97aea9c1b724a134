/** Scopes of API.md section 2: OpenID Connect's, and the coarse API scopes. */
export const OIDC_SCOPES = ['openid', 'profile', 'email', 'offline_access'] as const;
export const API_SCOPES = ['crm:read', 'crm:write', 'users:read', 'users:write', 'rbac:read', 'rbac:write', 'audit:read'] as const;

type ApiScope = (typeof API_SCOPES)[number];

/**
 * Which coarse API scope each permission falls under: a token may carry a scope when its user
 * holds at least one permission beneath it, so custom roles earn scopes as built-in ones do.
 */
const SCOPE_OF_PERMISSION_RESOURCE: Record<string, { read: ApiScope; write: ApiScope }> = {
  customers: { read: 'crm:read', write: 'crm:write' },
  interactions: { read: 'crm:read', write: 'crm:write' },
  statistics: { read: 'crm:read', write: 'crm:write' },
  users: { read: 'users:read', write: 'users:write' },
  organizations: { read: 'users:read', write: 'users:write' },
  locations: { read: 'users:read', write: 'users:write' },
  clients: { read: 'users:read', write: 'users:write' },
  roles: { read: 'rbac:read', write: 'rbac:write' },
  permissions: { read: 'rbac:read', write: 'rbac:write' },
  audit: { read: 'audit:read', write: 'audit:read' },
};

export function apiScopesForPermissions(permissions: Iterable<string>): Set<string> {
  const scopes = new Set<string>();
  for (const permission of permissions) {
    const [resource, action] = permission.split(':');
    const scope = resource ? SCOPE_OF_PERMISSION_RESOURCE[resource] : undefined;
    if (scope) scopes.add(action === 'read' ? scope.read : scope.write);
  }
  return scopes;
}
