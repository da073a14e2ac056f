// Production sign-in through the province's identity provider (统一身份认证): OpenID Connect, the
// authorization code flow with PKCE (oidc-client-ts). Which provider, and the front-end's client id
// there, come at run time from the gateway (`GET /config.json`, gateway/render.py); without one only
// development tokens sign in (pages/login.ts). The provider redirects back to `/?code=…&state=…`;
// the code is exchanged for tokens at once and removed from the address bar. The access token is
// the bearer token of every API call (auth.ts), kept for this tab only.
import { UserManager, WebStorageStateStore } from "oidc-client-ts";
import { setToken } from "./auth";

export interface ProviderSettings {
  authority: string;
  clientId: string;
  scope: string;
}

export interface WebConfig {
  oidc: ProviderSettings | null;
}

let config: WebConfig = { oidc: null };
let manager: UserManager | null = null;

/** Reads the sign-in settings the gateway serves; none when it serves none (development). */
export async function loadConfig(): Promise<WebConfig> {
  try {
    const resp = await fetch("/config.json", { headers: { Accept: "application/json" }, cache: "no-cache" });
    if (resp.ok) config = { oidc: null, ...(await resp.json()) };
  } catch {
    config = { oidc: null };
  }
  manager = config.oidc ? newManager(config.oidc) : null;
  return config;
}

export function provider(): ProviderSettings | null {
  return config.oidc;
}

function newManager(p: ProviderSettings): UserManager {
  const store = new WebStorageStateStore({ store: sessionStorage });
  return new UserManager({
    authority: p.authority,
    client_id: p.clientId,
    scope: p.scope,
    response_type: "code",
    // The one page the gateway serves: index.html at /.
    redirect_uri: `${location.origin}/`,
    post_logout_redirect_uri: `${location.origin}/`,
    userStore: store,
    stateStore: store,
    loadUserInfo: false,
    // Renewal is a new sign-in when the token expires (main.ts), which the provider's own session
    // answers without asking again.
    automaticSilentRenew: false,
    monitorSession: false,
  });
}

/** Goes to the identity provider to sign in; back at `returnTo` (a route such as `/big-screen`). */
export async function signInWithProvider(returnTo: string): Promise<void> {
  if (!manager) throw new Error("no identity provider configured");
  await manager.signinRedirect({ state: { returnTo } });
}

/** On the provider's redirect back (`?code=…&state=…` or `?error=…`): exchanges the code for the
 * tokens, keeps the access token and cleans the address bar. Returns the route to open, or null
 * when this is no redirect back. Throws, with the provider's reason, when the sign-in failed. */
export async function completeSignIn(): Promise<string | null> {
  const params = new URLSearchParams(location.search);
  if (!params.has("state") || !(params.has("code") || params.has("error"))) return null;
  const clean = () => history.replaceState(null, "", `${location.pathname}${location.hash}`);
  if (!manager) {
    clean();
    return null;
  }
  try {
    const user = await manager.signinRedirectCallback();
    setToken(user.access_token, "oidc");
    const returnTo = (user.state as { returnTo?: string } | undefined)?.returnTo;
    return returnTo && returnTo.startsWith("/") ? returnTo : "/";
  } finally {
    clean();
  }
}

/** Ends the session at the provider too (otherwise it would sign the same person in again). */
export async function signOutAtProvider(): Promise<void> {
  if (!manager) return;
  await manager.removeUser();
  await manager.signoutRedirect();
}
