// Sign-in: through the province's identity provider (统一身份认证) when the gateway names one
// (signin.ts), and, for development, a pasted token (`make token ROLE=commander`).
import { claims, setToken, token } from "../auth";
import { go } from "../router";
import { provider, signInWithProvider } from "../signin";

/** `notice`: why the user is here again (their sign-in expired, the provider refused it). */
export function mountLogin(root: HTMLElement, next: string, notice = ""): () => void {
  const idp = provider();
  const devForm = `
      <form id="login-form">
        <label for="login-token">开发令牌（JWT）</label>
        <textarea id="login-token" name="token" rows="6" required
          placeholder="make token ROLE=commander STATION=S01"></textarea>
        <p class="error" id="login-error" role="alert"></p>
        <button type="submit">登录</button>
      </form>
      <p class="hint">也可在地址后加 <code>#token=…</code> 打开；令牌只保存在本标签页。</p>`;
  root.innerHTML = `
    <main class="login">
      <h1>Smart110 指挥中心</h1>
      <p class="notice" id="login-notice" role="status">${escape(notice)}</p>
      ${idp ? `<button type="button" id="login-oidc" class="primary">通过统一身份认证登录</button>
      <details class="dev-login"><summary>开发令牌登录</summary>${devForm}</details>` : devForm}
    </main>`;
  root.querySelector<HTMLButtonElement>("#login-oidc")?.addEventListener("click", (ev) => {
    (ev.currentTarget as HTMLButtonElement).disabled = true;
    signInWithProvider(next).catch((e) => {
      root.querySelector("#login-notice")!.textContent = `无法连接统一身份认证：${e instanceof Error ? e.message : e}`;
      (ev.target as HTMLButtonElement).disabled = false;
    });
  });
  const form = root.querySelector<HTMLFormElement>("#login-form")!;
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = (form.elements.namedItem("token") as HTMLTextAreaElement).value;
    setToken(value, "dev");
    if (!token() || !claims()) {
      root.querySelector("#login-error")!.textContent = "令牌无效或已过期";
      return;
    }
    go(next);
  });
  return () => {};
}

function escape(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}
