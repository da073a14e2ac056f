// The Smart110 web front-end: one app, a page per screen: the big screen (指挥大屏), the call-taker
// console (接警台), the dispatcher board (调度台) and the officer's phone view (民警手机), with the same
// API client and sign-in.
import "./style.css";
import { claims, clearToken, hasRole, takeTokenFromFragment, token } from "./auth";
import { currentRoute, go, type Page } from "./router";
import { mountLogin } from "./pages/login";
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

function render(): void {
  takeTokenFromFragment();
  unmount();
  unmount = () => {};
  const route = currentRoute();
  if (route === "/logout") {
    clearToken();
    go("/login");
    return;
  }
  if (!token()) {
    document.title = "登录 · Smart110";
    unmount = mountLogin(root, route === "/login" || route === "/" ? "/" : route);
    return;
  }
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

window.addEventListener("hashchange", render);
render();
