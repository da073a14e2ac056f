// Measures the big screen (指挥大屏) in Debian's Chromium, headless (software WebGL), through the
// gateway: time to first render (page load to the map drawn and every live link up), time from a
// report's POST to its marker on the map, and frame times with many units and incidents moving
// (synthetic ones added through the page's benchmark hook: the sample city has fewer). Prints one
// JSON document; tools/benches/web.py starts the suite, runs this and writes bench-results/web.json.
//
//   GATEWAY_URL=… SCREEN_TOKEN=… REPORT_TOKEN=… UNITS=2000 INCIDENTS=500 node web/tests/big-screen-bench.mjs
import { chromium } from "playwright-core";
import { randomUUID } from "node:crypto";

const gateway = process.env.GATEWAY_URL;
const screenToken = process.env.SCREEN_TOKEN;
const reportToken = process.env.REPORT_TOKEN;
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const UNITS = Number(process.env.UNITS ?? 2000);
const INCIDENTS = Number(process.env.INCIDENTS ?? 500);
const REPORTS = Number(process.env.REPORTS ?? 5);
const FRAME_SECONDS = Number(process.env.FRAME_SECONDS ?? 8);

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : null; };
const summary = (xs) => ({ count: xs.length, p50_ms: pct(xs, 50), p95_ms: pct(xs, 95), max_ms: xs.length ? Math.max(...xs) : null,
  mean_ms: xs.length ? Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 10) / 10 : null });

async function caseOf(report) {
  for (let i = 0; i < 200; i++) {
    const doc = await (await fetch(`${gateway}/v1/cases?pageSize=50`, { headers: { Authorization: `Bearer ${screenToken}` } })).json();
    const found = (doc.cases ?? []).find((c) => c.report === report);
    if (found) return found.name;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no case for ${report}`);
}

const result = {};
const browser = await chromium.launch({
  executablePath, headless: true,
  args: ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist", "--no-sandbox"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  const t0 = Date.now();
  await page.goto(`${gateway}/#token=${screenToken}`);
  await page.waitForSelector(".screen[data-map-ready=true]", { timeout: 30_000 });
  result.mapReadyMs = Date.now() - t0;
  await page.waitForFunction(() => {
    const links = window.smart110BigScreen?.links() ?? {};
    return ["警情", "警力", "预警"].every((k) => links[k]?.state === "live");
  }, null, { timeout: 30_000, polling: 20 });
  result.firstRenderMs = Date.now() - t0;

  // Report to marker: each report at a place of its own, timed from the POST to the map drawing it.
  const toMarker = [];
  for (let i = 0; i < REPORTS; i++) {
    // Far apart (about 1 km) and each its own caller, so that intake merges none as a duplicate.
    const point = { longitude: 114.26 + i * 0.01 + Math.random() * 0.002, latitude: 30.60 + Math.random() * 0.002 };
    const posted = Date.now();
    const resp = await fetch(`${gateway}/v1/reports`, {
      method: "POST", headers: { Authorization: `Bearer ${reportToken}`, "Content-Type": "application/json" },
      body: JSON.stringify({ requestId: randomUUID(), report: {
        channel: "CHANNEL_PHONE", caller: { phoneNumber: `136${String(Math.floor(Math.random() * 1e8)).padStart(8, "0")}` },
        location: { point }, description: `压测第${i + 1}起：小区门口有人打架` } }),
    });
    if (!resp.ok) throw new Error(`POST /v1/reports: ${resp.status} ${await resp.text()}`);
    const filed = await resp.json();
    if (filed.mergedInto) continue; // a duplicate opens no case of its own
    const report = filed.name;
    const name = await caseOf(report);
    await page.waitForFunction((n) => window.smart110BigScreen.renderedCaseNames().includes(n), name, { timeout: 10_000, polling: 10 });
    toMarker.push(Date.now() - posted);
  }
  result.reportToMarker = summary(toMarker);

  // Frame time with many units and incidents moving: every frame moves them all and redraws.
  await page.evaluate(([u, c]) => window.smart110BigScreen.simulate(u, c), [UNITS, INCIDENTS]);
  const frames = async (coverage) => page.evaluate(async ([seconds, coverage]) => {
    window.smart110BigScreen.setCoverage(coverage);
    await new Promise((r) => setTimeout(r, 500));
    const times = [];
    let last = performance.now();
    const end = last + seconds * 1000;
    await new Promise((resolve) => {
      const tick = (t) => {
        times.push(t - last); last = t;
        window.smart110BigScreen.moveSimulated();
        if (t < end) requestAnimationFrame(tick); else resolve();
      };
      requestAnimationFrame(tick);
    });
    return { times: times.slice(1), circles: window.smart110BigScreen.coverageCircles() };
  }, [FRAME_SECONDS, coverage]);
  const plain = await frames(false);
  result.frames = { units: UNITS, incidents: INCIDENTS, ...summary(plain.times.map((x) => Math.round(x * 10) / 10)),
                    fps: Math.round((plain.times.length / FRAME_SECONDS) * 10) / 10 };
  const withCircles = await frames(true);
  result.framesWithCircles = { circles: withCircles.circles, ...summary(withCircles.times.map((x) => Math.round(x * 10) / 10)),
                               fps: Math.round((withCircles.times.length / FRAME_SECONDS) * 10) / 10 };
} catch (err) {
  result.failure = String(err?.stack ?? err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
