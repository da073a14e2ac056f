// Drives the officer's phone view (民警手机) in Debian's Chromium, headless, at a phone's size
// (390×844, touch), through the gateway: the officer opens it with a development token in the URL
// fragment, sees the offer, accepts it, goes en route, arrives, clears and reports back with an
// outcome, notes and a photo (a PNG, uploaded to dispatch's evidence store as it is chosen). The
// browser's geolocation is set, so the page reports the unit's position. Then a dispatcher opens the
// case on the board (调度台) and views the photo from the report-back. Prints one JSON document; tests/web/test_phone.py posts the report, picks the unit the
// case is offered to, runs this and judges the result through the API.
//
//   GATEWAY_URL=… PHONE_TOKEN=… DISPATCHER_TOKEN=… ASSIGNMENT=cases/…/assignments/… LONGITUDE=… LATITUDE=… \
//     SCREENSHOTS=build/screenshots node web/tests/phone.mjs
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const gateway = process.env.GATEWAY_URL;
const token = process.env.PHONE_TOKEN;
const dispatcherToken = process.env.DISPATCHER_TOKEN;
const assignment = process.env.ASSIGNMENT;
const longitude = Number(process.env.LONGITUDE);
const latitude = Number(process.env.LATITUDE);
const shots = process.env.SCREENSHOTS ?? "build/screenshots";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const WAIT_MS = Number(process.env.WAIT_MS ?? 10_000);
// The photo attached at report-back (a PNG): its bytes decide the SHA-256 the API must show.
const PHOTO = Buffer.from(process.env.PHOTO_HEX, "hex");
mkdirSync(shots, { recursive: true });

const result = { errors: [], requests: [], steps: [] };
const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
const card = `article.assignment[data-name="${assignment}"]`;
const stateIs = (page, state) => page.waitForSelector(`${card}[data-state="${state}"]`, { timeout: WAIT_MS });
try {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
    geolocation: { longitude, latitude, accuracy: 12 }, permissions: ["geolocation"], locale: "zh-CN",
  });
  const page = await context.newPage();
  page.on("pageerror", (e) => result.errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") result.errors.push(`console: ${m.text()}`); });
  page.on("request", (r) => result.requests.push(new URL(r.url()).origin));

  const t0 = Date.now();
  await page.goto(`${gateway}/#token=${token}`);
  // An officer lands on the phone view; the offer arrives on the live stream.
  await stateIs(page, "OFFERED");
  result.offerShownMs = Date.now() - t0;
  result.addressBar = page.url();
  result.unit = await page.evaluate(() => window.smart110Phone.unit());
  // The type by its Chinese name once the taxonomy is in (a code until then).
  await page.waitForFunction((sel) => !/^[A-Z_]*$/.test(document.querySelector(`${sel} .type`)?.textContent ?? ""),
                             card, { timeout: WAIT_MS }).catch(() => {});
  result.offerText = await page.locator(card).innerText();
  result.pageWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.screenshot({ path: `${shots}/phone-offer.png` });

  await page.locator(`${card} button[data-act=accept]`).tap();
  await stateIs(page, "ACCEPTED");
  result.steps.push("ACCEPTED");
  await page.locator(`${card} button[data-act=EN_ROUTE]`).tap();
  await stateIs(page, "EN_ROUTE");
  result.steps.push("EN_ROUTE");
  // The unit's own status comes on its own update, a moment after the assignment's: waited for, and
  // read as it stands if it never comes (the test then says what it showed).
  await page.waitForSelector('#unit-status[data-status="EN_ROUTE"]', { timeout: WAIT_MS }).catch(() => {});
  result.statusEnRoute = await page.locator("#unit-status").getAttribute("data-status");
  await page.locator(`${card} button[data-act=ON_SCENE]`).tap();
  await stateIs(page, "ON_SCENE");
  result.steps.push("ON_SCENE");
  await page.screenshot({ path: `${shots}/phone-on-scene.png` });
  await page.locator(`${card} button[data-act=CLEARED]`).tap();
  await stateIs(page, "CLEARED");
  result.steps.push("CLEARED");

  const form = page.locator(`${card} form[data-report]`);
  await form.locator("select[name=outcome]").selectOption("MEDIATED");
  await form.locator("textarea[name=notes]").fill("双方已调解，伤者无大碍");
  // A file of a type the store refuses says so and is not attached.
  await form.locator("input[type=file]").setInputFiles({ name: "说明.txt", mimeType: "text/plain", buffer: Buffer.from("x") });
  await page.waitForFunction((sel) => document.querySelector(`${sel} .error`)?.textContent.includes("说明.txt"), card,
                             { timeout: WAIT_MS });
  result.refusedText = await page.locator(`${card} .error`).innerText();
  await form.locator("input[type=file]").setInputFiles({ name: "现场.png", mimeType: "image/png", buffer: PHOTO });
  await page.waitForSelector(`${card} ul.evidence li[data-uri]`, { timeout: WAIT_MS });
  result.evidenceText = await page.locator(`${card} ul.evidence`).innerText();
  result.uploadedUri = await page.locator(`${card} ul.evidence li[data-uri]`).first().getAttribute("data-uri");
  await page.screenshot({ path: `${shots}/phone-report-back.png` });
  await form.locator("button[type=submit]").tap();
  await stateIs(page, "REPORTED_BACK");
  result.steps.push("REPORTED_BACK");
  result.reportedText = await page.locator(card).innerText();

  // The position the browser gave, sent to the unit.
  await page.waitForFunction(() => window.smart110Phone.positionsSent() > 0, null, { timeout: WAIT_MS });
  result.positionText = await page.locator("#position").innerText();

  // The panic button asks first: nothing is sent until the officer confirms.
  await page.locator("#panic").tap();
  result.confirmShown = await page.locator("#emergency-yes").isVisible();
  await page.screenshot({ path: `${shots}/phone-emergency-confirm.png` });
  await page.locator("#emergency-no").tap();
  result.statusAfterCancel = await page.locator("#unit-status").getAttribute("data-status");
  // Back at the station (在所): a status of the officer's own.
  await page.locator('#statuses button[data-status="AT_STATION"]').tap();
  await page.waitForSelector('#unit-status[data-status="AT_STATION"]', { timeout: WAIT_MS });
  result.statusSet = "AT_STATION";
  result.link = await page.evaluate(() => window.smart110Phone.link());
  await page.screenshot({ path: `${shots}/phone-done.png` });

  // The dispatcher opens the case on the board: the report-back with its photo, read from the store.
  const caseName = assignment.split("/assignments/")[0];
  const boardContext = await browser.newContext({ viewport: { width: 1680, height: 1000 }, locale: "zh-CN" });
  const board = await boardContext.newPage();
  board.on("pageerror", (e) => result.errors.push(`board pageerror: ${e.message}`));
  board.on("console", (m) => { if (m.type() === "error") result.errors.push(`board console: ${m.text()}`); });
  await board.goto(`${gateway}/#/dispatch-board?case=${caseName}&token=${dispatcherToken}`);
  const item = `#assignments li[data-unit="${result.unit}"]`;
  await board.waitForSelector(`#case-detail[data-name="${caseName}"] ${item} [data-evidence]`, { timeout: WAIT_MS });
  result.boardReportText = await board.locator(item).innerText();
  await board.locator(`${item} [data-evidence]`).first().click();
  await board.waitForFunction(() => Object.values(window.smart110Board.photos()).some(([w]) => w > 0), null,
                              { timeout: WAIT_MS });
  result.boardPhotos = await board.evaluate(() => window.smart110Board.photos());
  await board.screenshot({ path: `${shots}/phone-board-evidence.png` });
} catch (err) {
  result.failure = String(err?.stack ?? err);
  for (const [i, p] of browser.contexts().flatMap((c) => c.pages()).entries()) {
    try {
      await p.screenshot({ path: `${shots}/phone-failure-${i}.png` });
      result.failure += `\npage ${i} (${p.url()}): ${(await p.locator("body").innerText()).slice(0, 600)}`;
    } catch {}
  }
} finally {
  await browser.close();
}
result.requests = [...new Set(result.requests)];
console.log(JSON.stringify(result));
