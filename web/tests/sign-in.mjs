// Signs in to the big screen (指挥大屏) through the identity provider, in Debian's Chromium, headless:
// opens the app without a token, is sent to the provider (OpenID Connect, authorization code with
// PKCE), chooses a person on its login page, comes back and waits for the screen's live links; then
// waits for that short-lived token to expire, for the screen to say so, and for it to sign in again
// by itself. Prints one JSON document; tests/web/test_sign_in.py starts the suite and judges it.
//
//   GATEWAY_URL=http://127.0.0.1:8080 IDP_URL=http://127.0.0.1:8090 PERSON=idp-commander TTL=20 \
//     SCREENSHOTS=build/screenshots node web/tests/sign-in.mjs
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const gateway = process.env.GATEWAY_URL;
const idp = process.env.IDP_URL;
const person = process.env.PERSON ?? "idp-commander";
const ttl = process.env.TTL ?? "20";
const shots = process.env.SCREENSHOTS ?? "build/screenshots";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
mkdirSync(shots, { recursive: true });

const result = { errors: [], requests: [], steps: [] };
const step = (name) => result.steps.push(name);
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist", "--no-sandbox"],
});
const allLive = () => {
  const links = window.smart110BigScreen?.links() ?? {};
  return ["警情", "警力", "预警"].every((k) => links[k]?.state === "live");
};
const storedToken = () => sessionStorage.getItem("smart110.token");
try {
  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  page.on("pageerror", (e) => result.errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") result.errors.push(`console: ${m.text()}`); });
  page.on("request", (r) => result.requests.push(new URL(r.url()).origin + new URL(r.url()).pathname));

  // No token: the app sends the browser to the provider.
  step("open the app without a token");
  await page.goto(`${gateway}/#/big-screen`);
  await page.waitForURL((url) => url.origin === idp && url.pathname === "/authorize", { timeout: 20_000 });
  const authorize = new URL(page.url());
  result.authorize = Object.fromEntries(authorize.searchParams);
  result.loginPageText = await page.locator("main").innerText();
  await page.screenshot({ path: `${shots}/sign-in-provider.png` });

  step("sign in at the provider");
  await page.locator(`input[name=person][value="${person}"]`).check();
  await page.locator("select[name=ttl]").selectOption(ttl);
  await page.locator("#sign-in").click();
  await page.waitForURL((url) => url.origin === gateway, { timeout: 20_000 });
  await page.waitForSelector(".screen[data-map-ready=true]", { timeout: 30_000 });
  await page.waitForFunction(allLive, null, { timeout: 30_000 });
  result.addressBar = page.url();
  result.firstToken = await page.evaluate(storedToken);
  result.links = await page.evaluate(() => window.smart110BigScreen.links());
  result.header = await page.locator("body").innerText().then((t) => t.slice(0, 400));
  await page.screenshot({ path: `${shots}/sign-in-big-screen.png` });

  // The token expires: the screen says so and signs in again through the provider's session.
  step("wait for the token to expire");
  await page.waitForSelector(".session-expired", { timeout: (Number(ttl) + 20) * 1000 });
  result.expiredText = await page.locator(".session-expired").innerText();
  await page.screenshot({ path: `${shots}/sign-in-expired.png` });
  step("signed in again");
  await page.waitForFunction((first) => {
    const t = sessionStorage.getItem("smart110.token");
    return t && t !== first;
  }, result.firstToken, { timeout: 30_000, polling: 200 });
  await page.waitForSelector(".screen[data-map-ready=true]", { timeout: 30_000 });
  await page.waitForFunction(allLive, null, { timeout: 30_000 });
  result.secondToken = await page.evaluate(storedToken);
  result.addressBarAgain = page.url();
  result.linksAgain = await page.evaluate(() => window.smart110BigScreen.links());
  step("done");
} catch (err) {
  result.failure = `${result.steps.at(-1)}: ${String(err?.stack ?? err)}`;
  try { await browser.contexts()[0]?.pages()[0]?.screenshot({ path: `${shots}/sign-in-failure.png` }); } catch {}
} finally {
  await browser.close();
}
result.requests = [...new Set(result.requests)];
process.stdout.write(JSON.stringify(result) + "\n");
