// The caller of a request as every layer sees it (docs/architecture.md glossary "actor"). It lives
// on the ground floor because both sides use it: the route pipeline in http/ builds it once per
// request from the verified token, and services decide with it and record it in audit rows.

/** Who is acting: the token's user, client, organization and roles, plus where the request came from. */
export interface Actor {
  /** The user the token acts for; absent for an application's machine token. */
  userId?: string;
  clientId: string;
  organizationId?: string;
  roles: readonly string[];
  ip?: string;
  userAgent?: string;
}
