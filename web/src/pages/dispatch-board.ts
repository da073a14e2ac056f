// 调度台: the dispatcher's board. Open cases by priority, live from WatchCases (gRPC-Web, resuming
// by itself); a chosen case shows its units and timeline (GetCase) and the recommended units
// (RecommendUnits: distance, ETA, reason) to offer it to or reassign it with (OfferCase); it can be
// escalated a level (EscalateCase), closed with an outcome (CloseCase) or cancelled with a reason
// (CancelCase). Offers being accepted show as they happen: every change of a case on the watch
// re-reads that case. Each unit's report-back shows with its outcome, notes and evidence; a photo
// kept by dispatch opens from its evidence store (DownloadEvidence).
import { ConnectError } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { claims } from "../auth";
import { dispatch } from "../api/grpc";
import { incidentTypeName, loadIncidentTypes } from "../api/incident-types";
import { Live, type LinkState } from "../api/live";
import { requestId } from "../api/rest";
import type { Page } from "../router";
import {
  AssignmentState, CancelReason, CaseLevel, Outcome,
  type CaseChange, type DispatchCase, type Recommendation,
} from "../gen/smart110/dispatch/v1/dispatch_service_pb";
import { CityMap } from "./big-screen/map";
import { loadStations } from "./big-screen/page";
import {
  CASE_LEVEL_NAMES, CASE_STATUS_NAMES, PRIORITY_COLOURS, PRIORITY_NAMES, caseActive, clock, escapeHtml,
} from "./big-screen/model";
import { keepForms } from "./forms";
import "./consoles.css";

export const ASSIGNMENT_STATE_NAMES: Record<number, string> = {
  [AssignmentState.OFFERED]: "待接单", [AssignmentState.ACCEPTED]: "已接单", [AssignmentState.DECLINED]: "已拒绝",
  [AssignmentState.EXPIRED]: "超时未接", [AssignmentState.EN_ROUTE]: "出警途中", [AssignmentState.ON_SCENE]: "已到场",
  [AssignmentState.CLEARED]: "处置完毕", [AssignmentState.REPORTED_BACK]: "已反馈", [AssignmentState.CANCELLED]: "已撤回",
  [AssignmentState.WITHDRAWN]: "已收队",
};
const OUTCOME_NAMES: [Outcome, string][] = [
  [Outcome.MEDIATED, "调解处理"], [Outcome.ASSISTANCE_GIVEN, "提供帮助"], [Outcome.NO_ISSUE_FOUND, "现场无警情"],
  [Outcome.ADMINISTRATIVE_CASE, "行政案件"], [Outcome.CRIMINAL_CASE, "刑事案件"], [Outcome.REFERRED, "移交处理"],
];
const CANCEL_NAMES: [CancelReason, string][] = [
  [CancelReason.DUPLICATE, "重复报警"], [CancelReason.FALSE_ALARM, "误报或虚假警情"],
  [CancelReason.CALLER_WITHDREW, "报警人撤警"], [CancelReason.HANDLED_BY_PHONE, "电话处置完毕"],
];
const OUTCOME_LABEL = new Map(OUTCOME_NAMES);
/** Evidence dispatch keeps itself (UploadEvidence): its storage URI is its name, read by DownloadEvidence. */
const STORED_EVIDENCE = /^cases\/[^/]+\/assignments\/[^/]+\/evidence\/[^/]+$/;
const LINK_NAMES: Record<LinkState, string> = { connecting: "连接中", live: "实时", behind: "延迟", disconnected: "已断开" };

const ms = (t: Timestamp | undefined) => (t ? timestampMs(t) : 0);
const errorText = (err: unknown) => (err instanceof ConnectError ? err.rawMessage : err instanceof Error ? err.message : String(err));
const minutes = (s: number) => (s < 60 ? `${s}秒` : `${Math.round(s / 60)}分钟`);

function layout(): string {
  const c = claims();
  return `
  <div class="board">
    <header class="bar">
      <h1>调度台 <small>派警 · 改派 · 升级 · 结案</small></h1>
      <div class="links"><span class="link connecting" id="link">警情：连接中</span></div>
      <div class="who">${escapeHtml(c?.name ?? c?.sub ?? "")} <a href="#/logout">退出</a></div>
    </header>
    <aside class="panel open-cases">
      <h2>在办警情 <span class="big" id="open-count">0</span></h2>
      <ol class="cases scroll" id="board-cases"></ol>
    </aside>
    <main class="map-area"><div id="map"></div></main>
    <aside class="panel side" id="case-panel"><p class="muted">选择左侧警情进行调度</p></aside>
  </div>`;
}

function mount(root: HTMLElement): () => void {
  root.innerHTML = layout();
  const $ = <T extends HTMLElement>(sel: string) => root.querySelector<T>(sel)!;
  const cases = new Map<string, DispatchCase>();
  let selected: string | null = null;
  let detail: DispatchCase | null = null;
  let recommendations: Recommendation[] = [];
  /** Photos read from the evidence store, by name, as object URLs. */
  const photos = new Map<string, string>();
  let cityMap: CityMap | null = null;
  let frame = 0;
  let stopped = false;
  const timers: number[] = [];

  function byPriority(): DispatchCase[] {
    return [...cases.values()].sort((a, b) => a.priority - b.priority || b.level - a.level
      || (ms(a.reportTime) || ms(a.createTime)) - (ms(b.reportTime) || ms(b.createTime)));
  }

  function schedule(): void {
    if (!frame) frame = requestAnimationFrame(draw);
  }

  function draw(): void {
    frame = 0;
    const list = byPriority();
    $("#open-count").textContent = String(list.length);
    $("#board-cases").innerHTML = list.map((c) => `
      <li data-name="${escapeHtml(c.name)}" data-report="${escapeHtml(c.report)}" class="case p${c.priority}${c.name === selected ? " followed" : ""}">
        <span class="prio" style="background:${PRIORITY_COLOURS[c.priority] ?? "#888"}">${PRIORITY_NAMES[c.priority] ?? c.priority}</span>
        <span class="type">${escapeHtml(incidentTypeName(c.incidentType))}</span>
        <span class="what">${escapeHtml(c.summary || incidentTypeName(c.incidentType))}</span>
        <span class="status s${c.status}">${CASE_STATUS_NAMES[c.status] ?? ""}</span>
        <span class="where">${escapeHtml(c.stationId)} · ${CASE_LEVEL_NAMES[c.level] ?? ""} · ${escapeHtml(c.addressText)}</span>
        <time>${clock(ms(c.reportTime) || ms(c.createTime))}</time>
      </li>`).join("") || `<li class="empty">暂无在办警情</li>`;
    void cityMap?.setCases({
      type: "FeatureCollection",
      features: list.filter((c) => c.location?.point).map((c) => ({
        type: "Feature", geometry: { type: "Point", coordinates: [c.location!.point!.longitude, c.location!.point!.latitude] },
        properties: { name: c.name, priority: c.priority, status: c.status, stationId: c.stationId, followed: c.name === selected },
      })),
    });
  }

  // -- the chosen case -----------------------------------------------------------------------------
  async function select(name: string): Promise<void> {
    selected = name;
    recommendations = [];
    schedule();
    await Promise.all([refreshDetail(name), refreshRecommendations(name)]);
  }

  async function refreshDetail(name: string): Promise<void> {
    try {
      const c = await dispatch.getCase({ name });
      if (selected !== name || stopped) return;
      detail = c;
      drawPanel();
    } catch (err) {
      if (selected === name) $("#case-panel").innerHTML = `<p class="error">${escapeHtml(errorText(err))}</p>`;
    }
  }

  async function refreshRecommendations(name: string): Promise<void> {
    try {
      const r = await dispatch.recommendUnits({ name, maxResults: 6 });
      if (selected !== name) return;
      recommendations = r.recommendations;
    } catch (err) {
      recommendations = [];
      if (selected === name) panelError(errorText(err));
    }
    drawPanel();
  }

  function panelError(text: string): void {
    const el = root.querySelector("#panel-error");
    if (el) el.textContent = text;
  }

  function drawPanel(): void {
    const c = detail;
    if (!c || c.name !== selected) return;
    const open = caseActive(c.status);
    const nextLevel = c.level < CaseLevel.PROVINCE ? c.level + 1 : 0;
    // The panel is redrawn as the case moves: what the dispatcher has chosen or typed in its forms stays.
    const panel = $("#case-panel");
    const restore = panel.querySelector<HTMLElement>("#case-detail")?.dataset.name === c.name ? keepForms(panel) : null;
    panel.innerHTML = `
      <section class="case-detail" id="case-detail" data-name="${escapeHtml(c.name)}" data-status="${c.status}" data-level="${c.level}">
        <h2><span class="prio" style="background:${PRIORITY_COLOURS[c.priority] ?? "#888"}">${PRIORITY_NAMES[c.priority] ?? ""}</span>
          ${escapeHtml(c.summary || incidentTypeName(c.incidentType))}</h2>
        <p class="meta"><span class="type">${escapeHtml(incidentTypeName(c.incidentType))}</span> · ${escapeHtml(c.name)} · ${CASE_STATUS_NAMES[c.status] ?? ""} · ${CASE_LEVEL_NAMES[c.level] ?? ""} · ${escapeHtml(c.stationId)} · ${escapeHtml(c.addressText)}</p>
        ${c.instructions ? `<p class="instructions">${escapeHtml(c.instructions)}</p>` : ""}
        <h3>出警单位</h3>
        <ul class="assignments" id="assignments">${c.assignments.map((a) => `
          <li data-unit="${escapeHtml(a.unit)}" data-state="${a.state}" class="a${a.state}">
            ${escapeHtml(a.callSign || a.unit)} · <b>${ASSIGNMENT_STATE_NAMES[a.state] ?? ""}</b>
            ${a.acceptTime ? ` · 接单 ${clock(ms(a.acceptTime))}` : a.offerExpireTime && a.state === AssignmentState.OFFERED ? ` · ${clock(ms(a.offerExpireTime))} 前答复` : ""}
            <small>${escapeHtml(a.reason)}</small>
            ${a.outcome ? `<p class="report-back">回告：${escapeHtml(OUTCOME_LABEL.get(a.outcome) ?? "")}${a.notes ? ` · ${escapeHtml(a.notes)}` : ""}</p>` : ""}
            ${a.evidence.length ? `<ul class="evidence">${a.evidence.map((e) => `
              <li data-uri="${escapeHtml(e.storageUri)}">${STORED_EVIDENCE.test(e.storageUri)
                ? `<button type="button" data-evidence="${escapeHtml(e.storageUri)}">查看照片</button>` : escapeHtml(e.storageUri)}
                <small>${escapeHtml(e.contentType)} · ${Math.ceil(Number(e.sizeBytes) / 1024)}KB</small>
                ${photos.has(e.storageUri) ? `<img alt="现场照片" src="${photos.get(e.storageUri)}">` : ""}</li>`).join("")}</ul>` : ""}</li>`).join("") || "<li>尚未派警</li>"}</ul>
        ${open ? `
        <h3>推荐警力</h3>
        <table class="counts recs"><thead><tr><th>单位</th><th>距离</th><th>预计到达</th><th>理由</th><th></th></tr></thead>
          <tbody id="recommendations">${recommendations.map((r, i) => `
            <tr data-unit="${escapeHtml(r.unit)}"><td>${escapeHtml(r.callSign || r.unit)}${r.crossStation ? " <small>跨所</small>" : ""}</td>
              <td>${r.distanceM < 1000 ? `${Math.round(r.distanceM)}米` : `${(r.distanceM / 1000).toFixed(1)}公里`}</td>
              <td>${minutes(r.etaSeconds)}${r.positionStale ? " <small>位置过时</small>" : ""}</td>
              <td class="reason">${escapeHtml(r.reason)}</td>
              <td><button data-offer="${i}">${c.assignments.some((a) => a.state === AssignmentState.ACCEPTED) ? "增派" : "派警"}</button></td></tr>`).join("")
            || `<tr><td colspan="5" class="muted">暂无可推荐警力</td></tr>`}</tbody></table>
        <div class="actions">
          ${nextLevel ? `<form id="escalate-form"><label>升级至${CASE_LEVEL_NAMES[nextLevel]} <input name="reason" required placeholder="升级原因"></label><button>升级</button></form>` : ""}
          <form id="close-form"><label>结案 <select name="outcome">${OUTCOME_NAMES.map(([v, n]) => `<option value="${v}">${n}</option>`).join("")}</select></label>
            <input name="notes" placeholder="处置情况"><button>结案</button></form>
          <form id="cancel-form"><label>撤销 <select name="reason">${CANCEL_NAMES.map(([v, n]) => `<option value="${v}">${n}</option>`).join("")}</select></label>
            <input name="notes" placeholder="说明（误报、电话处置须填写）"><button>撤销</button></form>
        </div>` : ""}
        <p class="error" id="panel-error" role="alert"></p>
        <h3>处置过程</h3>
        <ol class="timeline">${c.timeline.map((t) => `<li><time>${clock(ms(t.stamp?.time))}</time> ${escapeHtml(t.action)} ${escapeHtml(t.detail)}</li>`).join("")}</ol>
      </section>`;
    restore?.();
  }

  async function act(run: () => Promise<unknown>): Promise<void> {
    const name = selected;
    if (!name) return;
    try {
      await run();
      root.querySelectorAll<HTMLFormElement>("#case-panel form").forEach((f) => f.reset());
      await Promise.all([refreshDetail(name), refreshRecommendations(name)]);
    } catch (err) {
      panelError(errorText(err));
    }
  }

  async function showPhoto(name: string): Promise<void> {
    try {
      const body = await dispatch.downloadEvidence({ name });
      photos.set(name, URL.createObjectURL(new Blob([body.data as BlobPart], { type: body.contentType })));
      drawPanel();
    } catch (err) {
      panelError(`证据读取失败：${errorText(err)}`);
    }
  }

  // -- live: the open cases ------------------------------------------------------------------------
  const live: Live<CaseChange> = new Live({
    label: "警情",
    open: (after, signal, onHeader) => dispatch.watchCases({ afterSequence: after }, { signal, onHeader }),
    onReset: () => { cases.clear(); schedule(); },
    onMessage: (change) => {
      const c = change.dispatchCase;
      if (c) {
        if (!change.inView || !caseActive(c.status)) cases.delete(c.name); else cases.set(c.name, c);
        // An offer accepted, declined or expired changes the case: re-read the one in view.
        if (c.name === selected && change.action !== "SNAPSHOT") void refreshDetail(c.name);
        schedule();
      }
      return change.sequence;
    },
    onState: (state, detailText) => {
      const el = $("#link");
      el.className = `link ${state}`;
      el.textContent = `警情：${LINK_NAMES[state]}${detailText && state !== "live" ? ` ${detailText}` : ""}`;
      el.dataset.state = state;
    },
  }).start();
  // Offers move on their own (an officer's phone, an offer's expiry): the chosen case is re-read now and then too.
  timers.push(window.setInterval(() => { if (selected) void refreshDetail(selected); }, 5_000));

  root.addEventListener("click", (ev) => {
    const t = ev.target as HTMLElement;
    const item = t.closest<HTMLElement>("#board-cases li[data-name]");
    if (item) { void select(item.dataset.name!); return; }
    const shown = t.closest<HTMLElement>("[data-evidence]");
    if (shown) { void showPhoto(shown.dataset.evidence!); return; }
    const offer = t.closest<HTMLElement>("[data-offer]");
    if (offer && selected) {
      const r = recommendations[Number(offer.dataset.offer)];
      offer.setAttribute("disabled", "");
      void act(() => dispatch.offerCase({ requestId: requestId(), name: selected!, unit: r.unit, role: r.role,
                                          reason: `调度员派警：${r.reason}` }));
    }
  });
  root.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = ev.target as HTMLFormElement;
    const get = (n: string) => (f.elements.namedItem(n) as HTMLInputElement).value.trim();
    const name = selected;
    if (!name || !detail) return;
    if (f.id === "escalate-form") {
      void act(() => dispatch.escalateCase({ requestId: requestId(), name, level: detail!.level + 1, reason: get("reason") }));
    } else if (f.id === "close-form") {
      void act(() => dispatch.closeCase({ requestId: requestId(), name, outcome: Number(get("outcome")) as Outcome, notes: get("notes") }));
    } else if (f.id === "cancel-form") {
      void act(() => dispatch.cancelCase({ requestId: requestId(), name, reason: Number(get("reason")) as CancelReason, notes: get("notes") }));
    }
  });

  // `#/dispatch-board?case=cases/…` opens that case, open or ended (e.g. to see its report-back).
  const asked = new URLSearchParams(location.hash.split("?")[1] ?? "").get("case");
  if (asked) void select(asked.startsWith("cases/") ? asked : `cases/${asked}`);

  loadIncidentTypes().then(() => { if (!stopped) { schedule(); drawPanel(); } })
    .catch((err) => panelError(`警情类型加载失败：${errorText(err)}`));

  loadStations().then((stations) => {
    if (stopped) return;
    cityMap = new CityMap($("#map"), stations, (name) => void select(name));
    cityMap.map.once("load", () => { root.querySelector(".board")!.setAttribute("data-map-ready", "true"); schedule(); });
  }).catch((err) => panelError(`底图加载失败：${errorText(err)}`));

  // Read by the browser tests: what the board shows now.
  (window as unknown as Record<string, unknown>).smart110Board = {
    caseNames: () => byPriority().map((c) => c.name),
    link: () => live.state,
    assignments: () => (detail?.assignments ?? []).map((a) => ({ unit: a.unit, state: a.state, name: a.name })),
    detail: () => (detail ? { name: detail.name, status: detail.status, level: detail.level } : null),
    /** Photos shown: name -> [width, height] of the image as the browser decoded it. */
    photos: () => Object.fromEntries([...root.querySelectorAll<HTMLImageElement>(".evidence img")].map((img) =>
      [img.closest("li")!.dataset.uri, [img.naturalWidth, img.naturalHeight]])),
    recommended: () => recommendations.map((r) => r.unit),
  };

  return () => {
    stopped = true;
    live.stop();
    timers.forEach((t) => window.clearInterval(t));
    if (frame) cancelAnimationFrame(frame);
    cityMap?.destroy();
    photos.forEach((u) => URL.revokeObjectURL(u));
    delete (window as unknown as Record<string, unknown>).smart110Board;
  };
}

export const dispatchBoard: Page = {
  path: "/dispatch-board",
  title: "调度台",
  // Those who watch and dispatch cases (services/dispatch/policy.py WatchCases, OfferCase).
  roles: ["dispatcher", "commander"],
  mount,
};
