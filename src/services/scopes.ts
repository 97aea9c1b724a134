/** Scopes of API.md section 2: OpenID Connect's, and the coarse API scopes. */
export const OIDC_SCOPES = ['openid', 'profile', 'email', 'offline_access'] as const;
export const API_SCOPES = ['crm:read', 'crm:write', 'users:read', 'users:write', 'rbac:read', 'rbac:write', 'audit:read'] as const;

type ApiScope = (typeof API_SCOPES)[number];

/** The API scopes each built-in role may hold; a token never carries more than its user's roles allow. */
const ROLE_SCOPES: Record<string, readonly ApiScope[]> = {
  super_admin: API_SCOPES,
  admin: API_SCOPES,
  backoffice: ['crm:read', 'crm:write', 'users:read', 'rbac:read', 'audit:read'],
  agent: ['crm:read', 'crm:write', 'rbac:read'],
  premium_user: ['crm:read', 'crm:write', 'rbac:read'],
  basic_user: ['crm:read', 'rbac:read'],
  guest: [],
};

export function apiScopesForRoles(roles: readonly string[]): Set<string> {
  return new Set(roles.flatMap((role) => ROLE_SCOPES[role] ?? []));
}
