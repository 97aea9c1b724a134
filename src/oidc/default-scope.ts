// RFC 6749 section 3.3: when a client omits `scope`, the server "MUST either process the request
// using a pre-defined default value or fail the request". node-oidc-provider grants a
// client_credentials request without `scope` no scope at all, a token every API call then refuses.
// Latchkey's default is the scope the client registered (RFC 7591 section 2), as the password
// grant does (grants/password.ts). The other grants already have one: a refresh keeps the scope
// of its grant (RFC 6749 section 6), and a code or device code the scope the user consented to.
import type { Provider } from 'oidc-provider';

/** Grants whose scope comes from the token request itself. */
const GRANTS_WITH_REQUESTED_SCOPE = new Set(['client_credentials']);

/**
 * Every grant handler reads the requested scopes through the request context's
 * `requestParamScopes`; answering the registered ones there, and only there, keeps the provider's
 * own checks (the client's allow-list, the resource server's scopes) in force for the default.
 */
export function defaultToRegisteredScope(provider: Provider): void {
  const Context = provider.OIDCContext;
  const requested = Object.getOwnPropertyDescriptor(Context.prototype, 'requestParamScopes')?.get;
  // Fail at start, not silently per request, if an upgrade of the provider moves this.
  if (!requested) throw new Error('node-oidc-provider no longer reads requested scopes from OIDCContext#requestParamScopes');
  class ContextWithDefaultScope extends Context {}
  Object.defineProperty(ContextWithDefaultScope.prototype, 'requestParamScopes', {
    configurable: true,
    get(this: InstanceType<typeof Context>): Set<string> {
      const params = this.params as { scope?: unknown; grant_type?: unknown } | undefined;
      const registered = this.client?.scope;
      if (this.route === 'token' && params?.scope === undefined && GRANTS_WITH_REQUESTED_SCOPE.has(String(params?.grant_type)) && registered) {
        return new Set(registered.split(' ').filter(Boolean));
      }
      return requested.call(this) as Set<string>;
    },
  });
  // The provider builds each request's context from `this.OIDCContext`.
  Object.defineProperty(provider, 'OIDCContext', { value: ContextWithDefaultScope });
}
