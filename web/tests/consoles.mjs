// Drives the call-taker console (接警台) and the dispatcher board (调度台) in Debian's Chromium,
// headless, through the gateway: a call-taker picks the place on the map and types a report (the
// classification appears while typing), files it; its case appears on the dispatcher board, the
// dispatcher offers it to a recommended unit, that unit's officer accepts through the API and the
// board shows it accepted. Then the call-taker corrects the report's classification with a reason
// (改类) and the board shows the new type; the dispatcher offers the case to another recommended
// unit, escalates it a level (升级) and closes it (结案). Two reports posted through the API a few
// hundred metres apart are both candidates for a third call between them: the call-taker merges it
// (合并) into the later one; the dispatcher cancels (撤销) the earlier one's case. Prints one JSON
// document; tests/web/test_consoles.py starts the suite, runs this and judges the result.
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
const CORRECTION_REASON = "报警人补充：双方互殴，并非抢劫";
const ESCALATE_REASON = "涉案人员持刀，请分局指挥";
const CLOSE_NOTES = "双方已调解，刀具已收缴";
const CANCEL_NOTES = "回拨核实，报警人称看错了";
const EARLIER_WORDS = "路口有人抢了我的手机";
const LATER_WORDS = "有人抢了一个女孩的包";
const MERGE_WORDS = "刚看到有人抢东西往东边跑了";
// The merge's place: in the north-east (S04/S05/S09), away from every other test's reports, by a
// random stretch, so that no earlier report of this run or another is a candidate.
const HERE = { longitude: 114.345 + Math.random() * 0.05, latitude: 30.62 + Math.random() * 0.05 };
let step = "open";
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
  // As the API has it now, before the call-taker corrects it below.
  result.reportAsFiled = await api("GET", `/v1/${result.report}`, callTakerToken);
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
  // As the API has it now, before the dispatcher closes it below.
  result.caseAfterAccept = await api("GET", `/v1/${result.consoleCase}`, dispatcherToken);
  await board.screenshot({ path: `${shots}/consoles-dispatcher-accepted.png` });

  // -- 改类: the call-taker corrects the filed report's classification, with a reason ---------------
  step = "correct";
  await desk.locator("#correct summary").click();
  await desk.selectOption("#correct-type", "FIGHT");
  await desk.selectOption("#correct-form select[name=priority]", "2");
  await desk.fill("#correct-form input[name=reason]", CORRECTION_REASON);
  await desk.click("#correct-form button[type=submit]");
  await desk.waitForFunction(() => window.smart110Console.classification()?.corrected, null, { timeout: WAIT_MS });
  result.corrected = await desk.evaluate(() => window.smart110Console.classification());
  result.correctedText = await desk.locator("#filed").innerText();
  await board.waitForFunction((name) => document.querySelector(`#board-cases li[data-name="${name}"] .type`)?.textContent === "打架斗殴",
                              result.consoleCase, { timeout: WAIT_MS });
  result.boardTypeAfterCorrection = await board.locator(`#board-cases li[data-name="${result.consoleCase}"] .type`).innerText();
  await desk.screenshot({ path: `${shots}/consoles-call-taker-corrected.png` });

  // -- 增派/改派: the case offered to another recommended unit ------------------------------------
  step = "offer another unit";
  await board.waitForFunction((u) => window.smart110Board.recommended().some((r) => r !== u), unit, { timeout: WAIT_MS });
  const other = await board.evaluate((u) => window.smart110Board.recommended().find((r) => r !== u), unit);
  result.otherUnit = other;
  await board.click(`#recommendations tr[data-unit="${other}"] [data-offer]`);
  await board.waitForFunction((u) => window.smart110Board.assignments().some((a) => a.unit === u && a.state === 1), other,
                              { timeout: WAIT_MS });
  result.otherAssignment = (await board.evaluate(() => window.smart110Board.assignments())).find((a) => a.unit === other).name;

  // -- 升级: a level up, with a reason ------------------------------------------------------------
  step = "escalate";
  result.levelBefore = (await board.evaluate(() => window.smart110Board.detail())).level;
  await board.fill("#escalate-form input[name=reason]", ESCALATE_REASON);
  await board.click("#escalate-form button");
  await board.waitForFunction((l) => window.smart110Board.detail()?.level === l + 1, result.levelBefore, { timeout: WAIT_MS });
  result.levelAfter = (await board.evaluate(() => window.smart110Board.detail())).level;
  await board.screenshot({ path: `${shots}/consoles-dispatcher-escalated.png` });

  // -- 结案: closed with an outcome and notes -------------------------------------------------------
  step = "close";
  await board.selectOption("#close-form select[name=outcome]", "3"); // OUTCOME_MEDIATED: 调解处理
  await board.fill("#close-form input[name=notes]", CLOSE_NOTES);
  await board.click("#close-form button");
  await board.waitForFunction(() => window.smart110Board.detail()?.status === 6, null, { timeout: WAIT_MS });
  await board.waitForFunction((name) => !window.smart110Board.caseNames().includes(name), result.consoleCase,
                              { timeout: WAIT_MS });
  result.closedText = await board.locator("#case-detail").innerText();
  await board.screenshot({ path: `${shots}/consoles-dispatcher-closed.png` });

  // -- 合并: a call between two open reports, merged into the later one ---------------------------
  step = "merge";
  const east = 0.0044; // ≈ 420 m at this latitude: the two are not one another's repeats
  result.earlier = (await api("POST", "/v1/reports", callTakerToken, { requestId: randomUUID(), report: {
    channel: "CHANNEL_PHONE", caller: { phoneNumber: `136${String(Math.floor(Math.random() * 1e8)).padStart(8, "0")}` },
    location: { point: { longitude: HERE.longitude, latitude: HERE.latitude } }, description: EARLIER_WORDS } })).name;
  result.later = (await api("POST", "/v1/reports", callTakerToken, { requestId: randomUUID(), report: {
    channel: "CHANNEL_PHONE", caller: { phoneNumber: `135${String(Math.floor(Math.random() * 1e8)).padStart(8, "0")}` },
    location: { point: { longitude: HERE.longitude + east, latitude: HERE.latitude } }, description: LATER_WORDS } })).name;
  const mid = { longitude: HERE.longitude + east / 2, latitude: HERE.latitude };
  await desk.evaluate(({ longitude, latitude }) => window.smart110Console.flyTo(longitude, latitude), mid);
  await desk.waitForTimeout(900);
  const at = await desk.evaluate(({ longitude, latitude }) => window.smart110Console.pixelOf(longitude, latitude), mid);
  await desk.mouse.click(at.x, at.y);
  await desk.fill("#f-phone", `134${String(Math.floor(Math.random() * 1e8)).padStart(8, "0")}`);
  await desk.locator("#f-description").pressSequentially(MERGE_WORDS, { delay: 10 });
  await desk.waitForFunction((names) => names.every((n) => window.smart110Console.preview()?.candidates.includes(n)),
                             [result.earlier, result.later], { timeout: WAIT_MS });
  result.candidates = await desk.evaluate(() => window.smart110Console.preview().candidates);
  result.duplicatesText = await desk.locator("#duplicates").innerText();
  await desk.click(`#duplicates [data-merge="${result.later}"]`);
  await desk.screenshot({ path: `${shots}/consoles-call-taker-merge.png` });
  await desk.click("#file-report");
  await desk.waitForFunction((later) => window.smart110Console.mergedInto() === later
    && document.querySelector("#filed-merged")?.textContent.includes(later), result.later, { timeout: WAIT_MS });
  result.merged = await desk.evaluate(() => window.smart110Console.filed());
  result.mergedText = await desk.locator("#filed").innerText();

  // -- 撤销: the earlier report's case cancelled, with a reason --------------------------------------
  step = "cancel";
  await board.waitForFunction((report) => document.querySelector(`#board-cases li[data-report="${report}"]`),
                              result.earlier, { timeout: WAIT_MS });
  const earlierCase = await board.locator(`#board-cases li[data-report="${result.earlier}"]`).getAttribute("data-name");
  result.earlierCase = earlierCase;
  await board.click(`#board-cases li[data-name="${earlierCase}"]`);
  await board.waitForSelector(`#case-detail[data-name="${earlierCase}"] #cancel-form`, { timeout: WAIT_MS });
  await board.selectOption("#cancel-form select[name=reason]", "2"); // CANCEL_REASON_FALSE_ALARM: 误报
  await board.fill("#cancel-form input[name=notes]", CANCEL_NOTES);
  await board.click("#cancel-form button");
  await board.waitForFunction(() => window.smart110Board.detail()?.status === 7, null, { timeout: WAIT_MS });
  await board.waitForFunction((name) => !window.smart110Board.caseNames().includes(name), earlierCase, { timeout: WAIT_MS });
  result.cancelledText = await board.locator("#case-detail").innerText();
  const boardError = await board.locator("#panel-error").innerText();
  if (boardError) result.errors.push(`board: ${boardError}`);
  await board.screenshot({ path: `${shots}/consoles-dispatcher-cancelled.png` });
} catch (err) {
  result.failure = `at step ${step}: ${String(err?.stack ?? err)}`;
  for (const [i, page] of pages.entries()) {
    try { await page.screenshot({ path: `${shots}/consoles-failure-${i}.png` }); } catch {}
  }
} finally {
  await browser.close();
}
result.requests = [...new Set(result.requests)];
process.stdout.write(JSON.stringify(result) + "\n");
