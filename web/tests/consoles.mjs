// Drives the call-taker console (接警台) and the dispatcher board (调度台) in Debian's Chromium,
// headless, through the gateway: a call-taker picks the place on the map and types a report (the
// classification appears while typing), files it; its case appears on the dispatcher board, the
// dispatcher offers it to a recommended unit, that unit's officer accepts through the API and the
// board shows it accepted. Prints one JSON document; tests/web/test_consoles.py starts the suite,
// runs this and judges the result.
//
//   GATEWAY_URL=http://127.0.0.1:8080 CALL_TAKER_TOKEN=… DISPATCHER_TOKEN=… PYTHON=.venv/bin/python \
//     SCREENSHOTS=build/screenshots node web/tests/consoles.mjs
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { randomUUID } from "node:crypto";

const gateway = process.env.GATEWAY_URL;
const callTakerToken = process.env.CALL_TAKER_TOKEN;
const dispatcherToken = process.env.DISPATCHER_TOKEN;
const python = process.env.PYTHON ?? ".venv/bin/python";
const shots = process.env.SCREENSHOTS ?? "build/screenshots";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const WAIT_MS = Number(process.env.WAIT_MS ?? 15_000);
mkdirSync(shots, { recursive: true });

const phone = `137${String(Math.floor(Math.random() * 1e8)).padStart(8, "0")}`;
const FIRST_WORDS = "刚才在公交站有人持刀";
const MORE_WORDS = "抢了我的包，往北边跑了";

async function api(method, path, token, body) {
  const resp = await fetch(`${gateway}${path}`, {
    method, headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  if (!resp.ok) throw new Error(`${method} ${path}: ${resp.status} ${text}`);
  return JSON.parse(text);
}

const result = { errors: [], requests: [] };
const browser = await chromium.launch({
  executablePath, headless: true,
  args: ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist", "--no-sandbox"],
});
const pages = [];
async function open(route, token) {
  // Each desk in its own context: its own tab storage, its own token.
  const context = await browser.newContext({ viewport: { width: 1680, height: 1000 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => result.errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") result.errors.push(`console: ${m.text()}`); });
  page.on("request", (r) => result.requests.push(new URL(r.url()).origin));
  await page.goto(`${gateway}/#${route}?token=${token}`);
  pages.push(page);
  return page;
}

try {
  const board = await open("/dispatch-board", dispatcherToken);
  const desk = await open("/intake-console", callTakerToken);
  await board.waitForSelector(".board[data-map-ready=true]", { timeout: 20_000 });
  await board.waitForFunction(() => window.smart110Board?.link() === "live", null, { timeout: 20_000 });
  await desk.waitForSelector(".console[data-map-ready=true]", { timeout: 20_000 });
  result.consoleAddressBar = desk.url();

  // The place: a click on the city's map, a little off its centre (a place of its own on every run,
  // so that no earlier report makes this one a duplicate).
  const box = await desk.locator("#map canvas").boundingBox();
  const dx = Math.round((Math.random() - 0.5) * 160), dy = Math.round((Math.random() - 0.5) * 160);
  await desk.mouse.click(box.x + box.width / 2 + dx, box.y + box.height / 2 + dy);
  result.pointText = await desk.locator("#f-point").innerText();
  await desk.fill("#f-phone", phone);

  // The classification appears while the call-taker is still typing.
  await desk.locator("#f-description").pressSequentially(FIRST_WORDS, { delay: 25 });
  await desk.waitForFunction(() => !!window.smart110Console.preview(), null, { timeout: WAIT_MS });
  result.whileTyping = await desk.evaluate(() => window.smart110Console.preview());
  await desk.locator("#f-description").pressSequentially(MORE_WORDS, { delay: 25 });
  await desk.waitForFunction((words) => {
    const p = window.smart110Console.preview();
    return p && document.querySelector("#f-description").value.endsWith(words) && p.incidentType === "ROBBERY";
  }, MORE_WORDS, { timeout: WAIT_MS }).catch(() => {});
  // The type by its Chinese name once the taxonomy is in (a code until then).
  await desk.waitForFunction(() => !/^[A-Z_]*$/.test(document.querySelector("#pv-type")?.textContent ?? ""), null,
                             { timeout: WAIT_MS }).catch(() => {});
  await desk.waitForTimeout(400);
  result.preview = await desk.evaluate(() => window.smart110Console.preview());
  result.previewText = await desk.locator("#preview").innerText();
  result.previewTypeText = await desk.locator("#pv-type").innerText();
  await desk.screenshot({ path: `${shots}/consoles-call-taker-preview.png` });

  // Filed: the report, then the dispatch case that follows it.
  const filedAt = Date.now();
  await desk.click("#file-report");
  await desk.waitForFunction(() => window.smart110Console.filed() && window.smart110Console.caseName(), null, { timeout: WAIT_MS });
  result.report = await desk.evaluate(() => window.smart110Console.filed());
  result.consoleCase = await desk.evaluate(() => window.smart110Console.caseName());
  result.filedText = await desk.locator("#filed").innerText();
  result.correctionTypes = await desk.evaluate(() => window.smart110Console.correctionTypes());
  await desk.screenshot({ path: `${shots}/consoles-call-taker-filed.png` });

  // The case on the dispatcher board, live.
  await board.waitForFunction((name) => window.smart110Board.caseNames().includes(name), result.consoleCase,
                              { timeout: WAIT_MS, polling: 50 });
  result.fileToBoardMs = Date.now() - filedAt;
  await board.waitForFunction((name) => !/^[A-Z_]*$/.test(document.querySelector(`#board-cases li[data-name="${name}"] .type`)?.textContent ?? ""),
                              result.consoleCase, { timeout: WAIT_MS }).catch(() => {});
  result.boardCaseText = await board.locator(`#board-cases li[data-name="${result.consoleCase}"]`).innerText();
  result.boardCaseType = await board.locator(`#board-cases li[data-name="${result.consoleCase}"] .type`).innerText();
  await board.click(`#board-cases li[data-name="${result.consoleCase}"]`);
  await board.waitForSelector(`#case-detail[data-name="${result.consoleCase}"] #recommendations [data-offer]`, { timeout: WAIT_MS });
  result.recommendationText = await board.locator("#recommendations tr").first().innerText();
  result.boardDetailType = await board.locator("#case-detail .meta .type").innerText();
  result.before = await board.evaluate(() => window.smart110Board.assignments());
  const unit = await board.evaluate(() => window.smart110Board.recommended()[0]);
  result.offeredUnit = unit;
  await board.screenshot({ path: `${shots}/consoles-dispatcher-case.png` });

  // The dispatcher offers the case to the first recommended unit.
  await board.click(`#recommendations tr[data-unit="${unit}"] [data-offer]`);
  await board.waitForFunction((u) => window.smart110Board.assignments().some((a) => a.unit === u && a.state === 1), unit,
                              { timeout: WAIT_MS });
  const offer = (await board.evaluate(() => window.smart110Board.assignments())).find((a) => a.unit === unit && a.state === 1);
  result.assignment = offer.name;
  const panelError = await board.locator("#panel-error").innerText();
  if (panelError) result.errors.push(`board: ${panelError}`);
  await board.screenshot({ path: `${shots}/consoles-dispatcher-offered.png` });

  // That unit's officer accepts on the phone (here: the API, with an officer's token).
  const u = await api("GET", `/v1/${unit}`, dispatcherToken);
  const officer = u.officers[0].officerId;
  const officerToken = execFileSync(python, ["-m", "tools.token", "--role", "officer", "--station", u.stationId, "--sub", officer],
                                    { encoding: "utf8" }).trim();
  const acceptedAt = Date.now();
  result.accepted = await api("POST", `/v1/${offer.name}:accept`, officerToken, { requestId: randomUUID() });
  await board.waitForFunction((name) => window.smart110Board.assignments().some((a) => a.name === name && a.state === 2),
                              offer.name, { timeout: WAIT_MS, polling: 50 });
  result.acceptToBoardMs = Date.now() - acceptedAt;
  result.acceptedText = await board.locator(`#assignments li[data-unit="${unit}"]`).innerText();
  await board.screenshot({ path: `${shots}/consoles-dispatcher-accepted.png` });
} catch (err) {
  result.failure = String(err?.stack ?? err);
  for (const [i, page] of pages.entries()) {
    try { await page.screenshot({ path: `${shots}/consoles-failure-${i}.png` }); } catch {}
  }
} finally {
  await browser.close();
}
result.requests = [...new Set(result.requests)];
process.stdout.write(JSON.stringify(result) + "\n");
