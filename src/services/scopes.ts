/** Scopes of API.md section 2: OpenID Connect's, and the coarse API scopes. */
export const OIDC_SCOPES = ['openid', 'profile', 'email', 'offline_access'] as const;
export const API_SCOPES = ['crm:read', 'crm:write', 'users:read', 'users:write', 'rbac:read', 'rbac:write', 'audit:read'] as const;
