// Development sign-in: paste a token (`make token ROLE=commander`). Production signs in through the
// province's identity provider instead.
import { claims, setToken, token } from "../auth";
import { go } from "../router";

export function mountLogin(root: HTMLElement, next: string): () => void {
  root.innerHTML = `
    <main class="login">
      <h1>Smart110 指挥中心</h1>
      <form id="login-form">
        <label for="login-token">开发令牌（JWT）</label>
        <textarea id="login-token" name="token" rows="6" required
          placeholder="make token ROLE=commander STATION=S01"></textarea>
        <p class="error" id="login-error" role="alert"></p>
        <button type="submit">登录</button>
      </form>
      <p class="hint">也可在地址后加 <code>#token=…</code> 打开；令牌只保存在本标签页。</p>
    </main>`;
  const form = root.querySelector<HTMLFormElement>("#login-form")!;
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = (form.elements.namedItem("token") as HTMLTextAreaElement).value;
    setToken(value);
    if (!token() || !claims()) {
      root.querySelector("#login-error")!.textContent = "令牌无效或已过期";
      return;
    }
    go(next);
  });
  return () => {};
}
