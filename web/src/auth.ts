// The user's JWT (the same one every API call carries). Production signs in through the province's
// identity provider (signin.ts: the provider's access token); for development a token comes from the login page or from the URL fragment
// `#token=…`, which browsers never send to a server (so it never reaches a log) and which is removed
// from the address bar as soon as it is read. Kept for this tab only (sessionStorage).

const STORAGE_KEY = "smart110.token";
/** How the token came: "oidc" from the identity provider, "dev" a development token. */
const VIA_KEY = "smart110.signin";

export type SignedInVia = "oidc" | "dev";

export interface Claims {
  sub: string;
  name?: string;
  roles: string[];
  station?: string;
  district?: string;
  exp?: number;
}

/** Reads `token=` from the fragment (`#token=…` or `#/page?token=…`), keeps it and removes it from
 * the address bar, leaving the page's route. */
export function takeTokenFromFragment(): void {
  const raw = location.hash.replace(/^#/, "");
  const [route, query] = raw.startsWith("/") ? splitOnce(raw, "?") : ["", raw];
  const params = new URLSearchParams(query);
  const token = params.get("token");
  if (!token) return;
  setToken(token);
  params.delete("token");
  const rest = params.toString();
  const hash = route || rest ? `#${route}${rest ? `?${rest}` : ""}` : "";
  history.replaceState(history.state, "", `${location.pathname}${location.search}${hash}`);
}

function splitOnce(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ""] : [s.slice(0, i), s.slice(i + 1)];
}

export function setToken(token: string, via: SignedInVia = "dev"): void {
  sessionStorage.setItem(STORAGE_KEY, token.trim());
  sessionStorage.setItem(VIA_KEY, via);
}

export function clearToken(): void {
  sessionStorage.removeItem(STORAGE_KEY);
  sessionStorage.removeItem(VIA_KEY);
}

export function signedInVia(): SignedInVia {
  return sessionStorage.getItem(VIA_KEY) === "oidc" ? "oidc" : "dev";
}

/** The kept token's expiry (ms since the epoch), even once it has passed; null without one. */
export function storedExpiry(): number | null {
  const t = sessionStorage.getItem(STORAGE_KEY);
  const exp = t ? decode(t)?.exp : undefined;
  return exp === undefined ? null : exp * 1000;
}

/** The current token, or null when there is none or it has expired. */
export function token(): string | null {
  const t = sessionStorage.getItem(STORAGE_KEY);
  if (!t) return null;
  const claims = decode(t);
  if (!claims || (claims.exp !== undefined && claims.exp * 1000 <= Date.now())) return null;
  return t;
}

/** The token's claims, as the gateway will see them once it has verified the signature (this side
 * only reads them to label the screen and choose what to offer). */
export function claims(): Claims | null {
  const t = token();
  return t ? decode(t) : null;
}

export function hasRole(...roles: string[]): boolean {
  const c = claims();
  return !!c && c.roles.some((r) => roles.includes(r));
}

function decode(t: string): Claims | null {
  const part = t.split(".")[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const bytes = Uint8Array.from(json, (ch) => ch.charCodeAt(0));
    const c = JSON.parse(new TextDecoder().decode(bytes));
    return { ...c, roles: Array.isArray(c.roles) ? c.roles : [] };
  } catch {
    return null;
  }
}
