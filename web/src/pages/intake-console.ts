// 接警台: the call-taker's console. As the call-taker types, PreviewReport (intake) shows the
// classification, priority, confidence and reason, the station with jurisdiction and the open
// incidents the report would repeat; the place comes from a click on the city's own map or from the
// standard address gazetteer (SearchAddresses); a consultation is offered the knowledge base's
// answer (GET /v1/knowledge:search). Once filed (ReportIncident) the call-taker may merge it into a
// candidate (MergeReport), correct its classification with a reason (UpdateReport) and follow the
// dispatch case it became (ListCases by report). Incident types show by their Chinese names and the
// correction picks one from intake's taxonomy, grouped by category. Calls go over gRPC-Web with the
// user's JWT.
import { ConnectError } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { claims } from "../auth";
import { dispatch, intake } from "../api/grpc";
import { incidentType, incidentTypeName, incidentTypesByCategory, loadIncidentTypes } from "../api/incident-types";
import { rest, requestId } from "../api/rest";
import type { Page } from "../router";
import {
  Category, Channel, type DuplicateCandidate, type Report, type ReportPreview, type ReportSchema, type ScoredAddress,
} from "../gen/smart110/intake/v1/intake_service_pb";
import { LocationSource } from "../gen/smart110/common/v1/common_pb";
import type { DispatchCase } from "../gen/smart110/dispatch/v1/dispatch_service_pb";
import { CityMap } from "./big-screen/map";
import { loadStations } from "./big-screen/page";
import { CASE_STATUS_NAMES, PRIORITY_COLOURS, PRIORITY_NAMES, clock, escapeHtml } from "./big-screen/model";
import { ASSIGNMENT_STATE_NAMES } from "./dispatch-board";
import { keepForms } from "./forms";
import "./consoles.css";

/** Pause after the last keystroke before asking for a preview. */
const PREVIEW_DEBOUNCE_MS = 250;
const CASE_POLL_MS = 1_500;

export const CATEGORY_NAMES: Record<number, string> = {
  [Category.POLICE]: "警情（派警）", [Category.NON_POLICE]: "非警务（转12345）",
  [Category.CONSULTATION]: "咨询（即问即复）", [Category.INVALID]: "无效报警",
};
const CHANNEL_NAMES: [Channel, string][] = [
  [Channel.PHONE, "电话"], [Channel.SMS, "短信"], [Channel.WECHAT, "微信"], [Channel.APP, "APP"],
  [Channel.VIDEO, "视频"], [Channel.SILENT_ALARM, "无声报警"], [Channel.WALK_IN, "来所报警"],
  [Channel.HOTLINE_12345, "12345转来"],
];

interface KnowledgeHit { entry: { entryId: string; topic: string; question: string; answer: string }; score: number }

const errorText = (err: unknown) => (err instanceof ConnectError ? err.rawMessage : err instanceof Error ? err.message : String(err));

function layout(): string {
  const c = claims();
  return `
  <div class="console">
    <header class="bar">
      <h1>接警台 <small>受理 · 定位 · 研判</small></h1>
      <div class="who">${escapeHtml(c?.name ?? c?.sub ?? "")} <a href="#/logout">退出</a></div>
    </header>
    <form class="panel report-form" id="report-form" autocomplete="off">
      <h2>报警登记</h2>
      <label>报警渠道 <select name="channel" id="f-channel">${CHANNEL_NAMES.map(([v, n]) => `<option value="${v}">${n}</option>`).join("")}</select></label>
      <label>报警人电话 <input name="phone" id="f-phone" inputmode="tel" placeholder="13800000000"></label>
      <label>报警人姓名 <input name="callerName" id="f-name"></label>
      <label>报警内容 <textarea name="description" id="f-description" rows="5" placeholder="报警人所述情况"></textarea></label>
      <label>地址 <span class="row"><input name="address" id="f-address" placeholder="标准地址或编码"><button type="button" id="address-search">查地址</button></span></label>
      <ol class="addresses" id="address-results"></ol>
      <p class="point" id="f-point">未定位：点击地图或查询标准地址</p>
      <p class="error" id="form-error" role="alert"></p>
      <button type="submit" id="file-report" class="primary">登记并流转</button>
    </form>
    <main class="map-area"><div id="map"></div></main>
    <aside class="panel side">
      <section id="preview" class="preview"><h2>智能研判</h2><p class="muted">输入报警内容后自动研判</p></section>
      <section id="duplicates"></section>
      <section id="knowledge"></section>
      <section id="filed"></section>
    </aside>
  </div>`;
}

function mount(root: HTMLElement): () => void {
  root.innerHTML = layout();
  const $ = <T extends HTMLElement>(sel: string) => root.querySelector<T>(sel)!;
  const form = $<HTMLFormElement>("#report-form");
  let point: { longitude: number; latitude: number } | null = null;
  let pointFromClick = false;
  let addressCode = "";
  let preview: ReportPreview | null = null;
  let previewSeq = 0;
  let debounce = 0;
  let knowledgeQuery = "";
  let mergeTarget = "";
  let filed: Report | null = null;
  let followed: DispatchCase | null = null;
  let cityMap: CityMap | null = null;
  const timers: number[] = [];
  let stopped = false;

  const value = (name: string) => ((form.elements.namedItem(name) as HTMLInputElement).value ?? "").trim();

  function draft(): MessageInitShape<typeof ReportSchema> {
    const r: MessageInitShape<typeof ReportSchema> = {
      channel: Number(value("channel")) as Channel,
      caller: { phoneNumber: value("phone"), name: value("callerName") },
      description: value("description"),
      addressText: value("address"),
      addressCode,
    };
    if (point && pointFromClick) {
      r.location = { point, accuracyM: 30, source: LocationSource.CALL_TAKER };
    }
    return r;
  }

  // -- the preview as the call-taker types ---------------------------------------------------------
  function schedulePreview(): void {
    window.clearTimeout(debounce);
    debounce = window.setTimeout(() => void runPreview(), PREVIEW_DEBOUNCE_MS);
  }

  async function runPreview(): Promise<void> {
    const d = draft();
    if (!d.description && !d.addressText && !d.location) return;
    const seq = ++previewSeq;
    try {
      const p = await intake.previewReport({ report: d });
      if (seq !== previewSeq || stopped) return;
      preview = p;
      $("#form-error").textContent = "";
      if (!pointFromClick && p.point) point = { longitude: p.point.longitude, latitude: p.point.latitude };
      drawPreview();
      drawDuplicates();
      void offerKnowledge();
      drawPoint();
    } catch (err) {
      if (seq === previewSeq) $("#preview").innerHTML = `<h2>智能研判</h2><p class="error">${escapeHtml(errorText(err))}</p>`;
    }
  }

  function drawPreview(): void {
    const p = preview;
    if (!p?.classification) return;
    const c = p.classification;
    $("#preview").innerHTML = `
      <h2>智能研判</h2>
      <dl class="classification" data-category="${c.category}" data-priority="${c.priority}" data-type="${escapeHtml(c.incidentType)}">
        <dt>类别</dt><dd id="pv-category">${CATEGORY_NAMES[c.category] ?? ""}</dd>
        <dt>警情类型</dt><dd id="pv-type">${escapeHtml(incidentTypeName(c.incidentType))}</dd>
        <dt>等级</dt><dd><span class="prio" style="background:${PRIORITY_COLOURS[c.priority] ?? "#888"}" id="pv-priority">${PRIORITY_NAMES[c.priority] ?? c.priority}</span></dd>
        <dt>置信度</dt><dd id="pv-confidence">${Math.round(c.confidence * 100)}%</dd>
        <dt>依据</dt><dd id="pv-reason">${escapeHtml(c.reason)}</dd>
        <dt>属地</dt><dd id="pv-station">${escapeHtml(p.stationId || "未定位")}${p.gridId ? ` · 网格 ${escapeHtml(p.gridId)}` : ""}${p.borderCase ? " · 边界警情" : ""}</dd>
      </dl>
      ${p.needsConfirmation ? `<p class="confirm" id="pv-confirm">研判把握不足，请接警员确认或更正分类</p>` : ""}
      ${p.addressMatch?.address ? `<p class="muted">标准地址：${escapeHtml(p.addressMatch.address.fullAddress)}（匹配度 ${p.addressMatch.confidence.toFixed(2)}）</p>` : ""}`;
  }

  function drawDuplicates(): void {
    const list = preview?.duplicateCandidates ?? [];
    $("#duplicates").innerHTML = list.length ? `
      <h2>疑似重复警情 <span class="big">${list.length}</span></h2>
      <ol class="candidates">${list.map((d: DuplicateCandidate) => `
        <li data-report="${escapeHtml(d.report)}" class="${mergeTarget === d.report ? "sel" : ""}">
          <span class="what">${escapeHtml(d.description || incidentTypeName(d.incidentType))}</span>
          <span class="meta">${escapeHtml(incidentTypeName(d.incidentType))} · ${escapeHtml(d.stationId)} · ${clock(d.receiveTime ? timestampMs(d.receiveTime) : 0)}${d.master ? " · 登记时将自动合并" : ""}</span>
          <span class="meta">${escapeHtml(d.reason)}</span>
          <button type="button" data-merge="${escapeHtml(d.report)}">${mergeTarget === d.report ? "取消合并" : "合并到此警情"}</button>
        </li>`).join("")}</ol>` : "";
  }

  async function offerKnowledge(): Promise<void> {
    const c = preview?.classification;
    const text = value("description");
    const asks = c && (c.category === Category.CONSULTATION || c.category === Category.NON_POLICE);
    if (!asks || text.length < 4) { $("#knowledge").innerHTML = ""; knowledgeQuery = ""; return; }
    if (text === knowledgeQuery) return;
    knowledgeQuery = text;
    try {
      const doc = await rest.get<{ results: KnowledgeHit[]; answerThreshold: number }>("/v1/knowledge:search", { query: text, pageSize: 3 });
      if (knowledgeQuery !== text) return;
      const best = doc.results[0];
      $("#knowledge").innerHTML = best ? `
        <h2>知识库答复 <small>${escapeHtml(best.entry.topic)} · 匹配度 ${best.score.toFixed(2)}</small></h2>
        <div class="answer" id="kb-answer"><p class="q">${escapeHtml(best.entry.question)}</p><p>${escapeHtml(best.entry.answer)}</p></div>
        ${best.score >= doc.answerThreshold ? `<p class="muted">可直接答复报警人（即问即复）</p>` : `<p class="muted">匹配度不足，登记后转专家答复</p>`}` : "";
    } catch (err) {
      $("#knowledge").innerHTML = `<p class="error">${escapeHtml(errorText(err))}</p>`;
    }
  }

  // -- the place: the map or the gazetteer ---------------------------------------------------------
  function drawPoint(): void {
    $("#f-point").textContent = point
      ? `定位：${point.longitude.toFixed(5)}, ${point.latitude.toFixed(5)}${pointFromClick ? "（地图选点）" : "（标准地址）"}`
      : "未定位：点击地图或查询标准地址";
    const features: GeoJSON.Feature[] = [];
    if (point) features.push({ type: "Feature", geometry: { type: "Point", coordinates: [point.longitude, point.latitude] },
                               properties: { name: "draft", priority: preview?.classification?.priority ?? 4, status: 1, followed: true } });
    void cityMap?.setCases({ type: "FeatureCollection", features });
  }

  async function searchAddresses(): Promise<void> {
    const q = value("address");
    if (!q) return;
    try {
      const found = await intake.searchAddresses({ query: q, pageSize: 8 });
      $("#address-results").innerHTML = found.results.map((s: ScoredAddress, i) => `
        <li data-i="${i}"><button type="button" data-address="${i}">${escapeHtml(s.address?.fullAddress ?? "")}</button>
          <small>${escapeHtml(s.address?.addressCode ?? "")} · ${s.score.toFixed(2)}</small></li>`).join("") || `<li class="muted">无匹配的标准地址</li>`;
      addressHits = found.results;
    } catch (err) {
      $("#address-results").innerHTML = `<li class="error">${escapeHtml(errorText(err))}</li>`;
    }
  }
  let addressHits: ScoredAddress[] = [];

  // -- filing, merging, correcting, following ------------------------------------------------------
  async function fileReport(ev: Event): Promise<void> {
    ev.preventDefault();
    const button = $<HTMLButtonElement>("#file-report");
    button.disabled = true;
    $("#form-error").textContent = "";
    try {
      let report = await intake.reportIncident({ requestId: requestId(), report: draft() });
      if (mergeTarget && report.mergedInto !== mergeTarget) {
        report = await intake.mergeReport({ requestId: requestId(), name: report.name, master: mergeTarget,
                                            reason: "接警员核实为同一警情" });
      }
      filed = report;
      followed = null;
      startNextCall();
      drawFiled();
      void followCase();
    } catch (err) {
      $("#form-error").textContent = errorText(err);
    } finally {
      button.disabled = false;
    }
  }

  /** The form is cleared for the next call; the filed report stays on the side with its case. A
   * preview still on its way is dropped (it would show the filed report as its own duplicate). */
  function startNextCall(): void {
    window.clearTimeout(debounce);
    previewSeq += 1;
    form.reset();
    point = null;
    pointFromClick = false;
    addressCode = "";
    mergeTarget = "";
    preview = null;
    knowledgeQuery = "";
    addressHits = [];
    $("#address-results").innerHTML = "";
    $("#preview").innerHTML = `<h2>智能研判</h2><p class="muted">输入报警内容后自动研判</p>`;
    $("#duplicates").innerHTML = "";
    $("#knowledge").innerHTML = "";
    drawPoint();
  }

  let correctFormKey = "";

  function drawFiled(): void {
    const r = filed;
    if (!r) return;
    const c = r.classification;
    const caseBlock = followed ? `
      <div class="case" id="followed-case" data-name="${escapeHtml(followed.name)}" data-status="${followed.status}">
        <h3>处警 ${escapeHtml(followed.name)}</h3>
        <p>${CASE_STATUS_NAMES[followed.status] ?? ""} · ${PRIORITY_NAMES[followed.priority] ?? ""} · ${escapeHtml(followed.stationId)}</p>
        <ul>${followed.assignments.map((a) => `<li>${escapeHtml(a.callSign || a.unit)} · ${ASSIGNMENT_STATE_NAMES[a.state] ?? ""}</li>`).join("") || "<li>等待派警</li>"}</ul>
      </div>` : r.mergedInto ? "" : c?.category === Category.POLICE ? `<p class="muted">等待生成处警…</p>` : "";
    // The live case redraws this block as it changes: a correction being written survives it (open,
    // with what was chosen and typed) while the report and its classification stay the same.
    const formKey = `${r.name}|${c?.category}|${c?.incidentType}|${c?.priority}|${c?.corrected}`;
    const restore = formKey === correctFormKey ? keepForms($("#filed")) : null;
    correctFormKey = formKey;
    $("#filed").innerHTML = `
      <h2>已登记 <small id="filed-name">${escapeHtml(r.name)}</small></h2>
      ${r.mergedInto ? `<p class="merged" id="filed-merged">已合并至 ${escapeHtml(r.mergedInto)}${followed ? "，处警如下" : ""}</p>` : ""}
      <p>${CATEGORY_NAMES[c?.category ?? 0] ?? ""} · ${escapeHtml(incidentTypeName(c?.incidentType))} · ${PRIORITY_NAMES[c?.priority ?? 0] ?? ""}${c?.corrected ? " · 已更正" : ""}</p>
      ${caseBlock}
      <details id="correct"><summary>更正分类</summary>
        <form id="correct-form" class="correct">
          <label>类别 <select name="category">${Object.entries(CATEGORY_NAMES).map(([v, n]) => `<option value="${v}" ${Number(v) === c?.category ? "selected" : ""}>${n}</option>`).join("")}</select></label>
          <label>警情类型 <select name="incidentType" id="correct-type">${typeOptions(c?.incidentType ?? "")}</select></label>
          <label>等级 <select name="priority">${[1, 2, 3, 4].map((p) => `<option value="${p}" ${p === c?.priority ? "selected" : ""}>${PRIORITY_NAMES[p]}</option>`).join("")}</select></label>
          <label>更正原因 <input name="reason" required placeholder="例如：报警人补充说明有人持刀"></label>
          <p class="error" id="correct-error"></p>
          <button type="submit">提交更正</button>
        </form>
      </details>`;
    restore?.();
  }

  /** The taxonomy's types grouped by category, the report's own selected (by itself, while the
   * taxonomy is still loading or if it is newer than the taxonomy). */
  function typeOptions(current: string): string {
    const groups = incidentTypesByCategory();
    const known = groups.some((g) => g.types.some((t) => t.code === current));
    return (current && !known ? `<option value="${escapeHtml(current)}" selected>${escapeHtml(incidentTypeName(current))}</option>` : "")
      + groups.map((g) => `<optgroup label="${escapeHtml(g.name)}">${g.types.map((t) =>
        `<option value="${escapeHtml(t.code)}" ${t.code === current ? "selected" : ""}>${escapeHtml(t.displayName)}</option>`).join("")}</optgroup>`).join("");
  }

  async function correct(ev: Event): Promise<void> {
    ev.preventDefault();
    if (!filed) return;
    const f = ev.target as HTMLFormElement;
    const get = (n: string) => (f.elements.namedItem(n) as HTMLInputElement).value.trim();
    try {
      filed = await intake.updateReport({
        requestId: requestId(),
        report: { name: filed.name, classification: { category: Number(get("category")) as Category,
                                                      incidentType: get("incidentType"), priority: Number(get("priority")) } },
        updateMask: { paths: ["classification"] },
        reason: get("reason"),
      });
      drawFiled();
    } catch (err) {
      root.querySelector("#correct-error")!.textContent = errorText(err);
    }
  }

  async function followCase(): Promise<void> {
    const r = filed;
    if (!r || stopped) return;
    try {
      const page = await dispatch.listCases({ report: r.mergedInto || r.name, pageSize: 1 });
      if (filed !== r) return;
      const c = page.cases[0];
      if (c && (!followed || followed.updateTime?.seconds !== c.updateTime?.seconds || followed.assignments.length !== c.assignments.length
                || followed.status !== c.status)) {
        followed = c;
        drawFiled();
      }
    } catch {
      // Not this user's to see, or not there yet: tried again below.
    }
  }
  timers.push(window.setInterval(() => void followCase(), CASE_POLL_MS));

  // -- wiring --------------------------------------------------------------------------------------
  form.addEventListener("input", (ev) => {
    const t = ev.target as HTMLElement;
    if (t.id === "f-address") { addressCode = ""; if (!pointFromClick) point = null; }
    schedulePreview();
  });
  form.addEventListener("change", schedulePreview);
  form.addEventListener("submit", (ev) => void fileReport(ev));
  // A type belongs to one category: choosing it chooses that.
  root.addEventListener("change", (ev) => {
    const t = ev.target as HTMLSelectElement;
    if (t.id !== "correct-type") return;
    const chosen = incidentType(t.value);
    const category = t.form?.elements.namedItem("category") as HTMLSelectElement | null;
    if (chosen && category) category.value = String(chosen.category);
  });
  root.addEventListener("submit", (ev) => { if ((ev.target as HTMLElement).id === "correct-form") void correct(ev); });
  root.addEventListener("click", (ev) => {
    const t = ev.target as HTMLElement;
    if (t.id === "address-search") { void searchAddresses(); return; }
    const a = t.closest<HTMLElement>("[data-address]");
    if (a) {
      const hit = addressHits[Number(a.dataset.address)];
      if (hit?.address) {
        ($("#f-address") as HTMLInputElement).value = hit.address.fullAddress;
        addressCode = hit.address.addressCode;
        pointFromClick = false;
        point = hit.address.point ? { longitude: hit.address.point.longitude, latitude: hit.address.point.latitude } : null;
        $("#address-results").innerHTML = "";
        if (point) void cityMap?.flyTo(point.longitude, point.latitude);
        drawPoint();
        schedulePreview();
      }
      return;
    }
    const m = t.closest<HTMLElement>("[data-merge]");
    if (m) { mergeTarget = mergeTarget === m.dataset.merge ? "" : m.dataset.merge!; drawDuplicates(); }
  });

  loadIncidentTypes().then(() => {
    if (stopped) return;
    drawPreview();
    drawDuplicates();
    drawFiled();
  }).catch((err) => { $("#form-error").textContent = `警情类型加载失败：${errorText(err)}`; });

  loadStations().then((stations) => {
    if (stopped) return;
    cityMap = new CityMap($("#map"), stations, () => {});
    cityMap.map.on("click", (e) => {
      point = { longitude: e.lngLat.lng, latitude: e.lngLat.lat };
      pointFromClick = true;
      drawPoint();
      schedulePreview();
    });
    cityMap.map.once("load", () => root.querySelector(".console")!.setAttribute("data-map-ready", "true"));
  }).catch((err) => { $("#form-error").textContent = `底图加载失败：${errorText(err)}`; });

  // Read by the browser tests: what the console shows now.
  (window as unknown as Record<string, unknown>).smart110Console = {
    preview: () => (preview?.classification ? {
      category: preview.classification.category, incidentType: preview.classification.incidentType,
      incidentTypeName: incidentTypeName(preview.classification.incidentType),
      priority: preview.classification.priority, reason: preview.classification.reason,
      stationId: preview.stationId, candidates: preview.duplicateCandidates.map((d) => d.report),
    } : null),
    filed: () => filed?.name ?? null,
    /** The correction's choice of types: [category name, [code, Chinese name, selected][]][]. */
    correctionTypes: () => [...root.querySelectorAll<HTMLOptGroupElement>("#correct-type optgroup")].map((g) => [
      g.label, [...g.querySelectorAll("option")].map((o) => [o.value, o.textContent, o.selected])]),
    caseName: () => followed?.name ?? null,
    flyTo: (lon: number, lat: number) => cityMap?.flyTo(lon, lat),
    /** Where a place is on the screen now (for a click on the map at a known place). */
    pixelOf: (lon: number, lat: number) => {
      const canvas = cityMap?.map.getCanvas().getBoundingClientRect();
      const p = cityMap?.map.project([lon, lat]);
      return canvas && p ? { x: canvas.left + p.x, y: canvas.top + p.y } : null;
    },
    classification: () => filed?.classification ? {
      category: filed.classification.category, incidentType: filed.classification.incidentType,
      priority: filed.classification.priority, corrected: filed.classification.corrected,
    } : null,
    mergedInto: () => filed?.mergedInto ?? null,
  };

  return () => {
    stopped = true;
    window.clearTimeout(debounce);
    timers.forEach((t) => window.clearInterval(t));
    cityMap?.destroy();
    delete (window as unknown as Record<string, unknown>).smart110Console;
  };
}

export const intakeConsole: Page = {
  path: "/intake-console",
  title: "接警台",
  // Those who take reports and preview them (services/intake/policy.py PreviewReport).
  roles: ["call_taker", "commander"],
  mount,
};
