// The Smart110 web front-end: one app, a page per screen: the big screen (指挥大屏), the call-taker
// console (接警台), the dispatcher board (调度台) and the officer's phone view (民警手机), with the same
// API client and sign-in: through the province's identity provider when the gateway names one
// (signin.ts), else with a development token. When the token expires the page says so and signs in
// again (the provider's session brings the user straight back, with a new token).
import "./style.css";
import { claims, clearToken, hasRole, signedInVia, storedExpiry, takeTokenFromFragment, token } from "./auth";
import { currentRoute, go, type Page } from "./router";
import { mountLogin } from "./pages/login";
import { completeSignIn, loadConfig, provider, signInWithProvider, signOutAtProvider } from "./signin";
import { bigScreen } from "./pages/big-screen/page";
import { intakeConsole } from "./pages/intake-console";
import { dispatchBoard } from "./pages/dispatch-board";
import { phone } from "./pages/phone/page";

const PAGES: Page[] = [bigScreen, intakeConsole, dispatchBoard, phone];
const HOME = bigScreen.path;
/** Where a signed-in user lands: the first page their roles may open (an officer: the phone view). */
const home = (): string => PAGES.find((p) => !p.roles.length || hasRole(...p.roles))?.path ?? HOME;

const root = document.querySelector<HTMLElement>("#app")!;
let unmount: () => void = () => {};
/** Shown on the login page: why the user is there again. */
let notice = "";
/** The provider refused or failed the last sign-in: stay on the login page rather than loop. */
let providerFailed = false;
let expiryTimer: number | undefined;

const REDIRECT_PAUSE_MS = 1_500;

function render(): void {
  takeTokenFromFragment();
  unmount();
  unmount = () => {};
  const route = currentRoute();
  if (route === "/logout") {
    const via = signedInVia();
    clearToken();
    if (via === "oidc" && provider()) {
      signOutAtProvider().catch(() => go("/login"));
      return;
    }
    go("/login");
    return;
  }
  watchExpiry();
  if (!token()) {
    document.title = "登录 · Smart110";
    const next = route === "/login" || route === "/" ? "/" : route;
    if (provider() && route !== "/login" && !providerFailed) {
      root.innerHTML = `<main class="message"><h1>正在跳转到统一身份认证…</h1></main>`;
      signInWithProvider(next).catch((e) => showLogin(next, `无法连接统一身份认证：${message(e)}`));
      return;
    }
    showLogin(next, notice);
    return;
  }
  notice = "";
  if (route === "/" || route === "/login") {
    go(home());
    return;
  }
  const page = PAGES.find((p) => p.path === route);
  if (!page) {
    root.innerHTML = `<main class="message"><h1>页面不存在</h1><p><a href="#${HOME}">返回指挥大屏</a></p></main>`;
    return;
  }
  if (page.roles.length && !hasRole(...page.roles)) {
    const c = claims();
    root.innerHTML = `<main class="message"><h1>无权打开「${page.title}」</h1>
      <p>当前身份 ${c?.name ?? ""}（${c?.roles.join("、") ?? ""}）</p><p><a href="#/logout">换一个令牌</a></p></main>`;
    return;
  }
  document.title = `${page.title} · Smart110`;
  unmount = page.mount(root);
}

function showLogin(next: string, why: string): void {
  providerFailed = true;
  unmount();
  unmount = mountLogin(root, next, why);
}

/** Says so when the token expires, then signs in again. */
function watchExpiry(): void {
  window.clearTimeout(expiryTimer);
  const exp = storedExpiry();
  if (exp === null || !token()) return;
  // setTimeout waits at most 2^31 - 1 ms.
  expiryTimer = window.setTimeout(expired, Math.min(Math.max(exp - Date.now(), 0) + 50, 2 ** 31 - 1));
}

function expired(): void {
  if (token()) {
    watchExpiry();
    return;
  }
  const route = currentRoute();
  const next = route === "/login" || route === "/" ? "/" : route;
  const again = signedInVia() === "oidc" && provider() !== null;
  clearToken();
  document.querySelector(".session-expired")?.remove();
  const banner = document.createElement("div");
  banner.className = "session-expired";
  banner.setAttribute("role", "alert");
  banner.textContent = again ? "登录已过期，正在通过统一身份认证重新登录…" : "登录已过期，请重新登录";
  document.body.append(banner);
  if (again) {
    window.setTimeout(() => {
      signInWithProvider(next).catch((e) => {
        banner.remove();
        showLogin(next, `登录已过期；无法连接统一身份认证：${message(e)}`);
      });
    }, REDIRECT_PAUSE_MS);
  } else {
    notice = "登录已过期，请重新登录";
    window.setTimeout(() => {
      banner.remove();
      render();
    }, REDIRECT_PAUSE_MS);
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function start(): Promise<void> {
  await loadConfig();
  try {
    const back = await completeSignIn();
    if (back !== null) history.replaceState(null, "", back === "/" ? "/" : `/#${back}`);
  } catch (e) {
    providerFailed = true;
    notice = `统一身份认证登录失败：${message(e)}`;
  }
  window.addEventListener("hashchange", render);
  render();
}

void start();
