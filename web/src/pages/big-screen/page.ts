// 指挥大屏: the command centre's wall display (1920×1080 and larger). Live incidents (WatchCases),
// units (WatchUnits) and alerts (Subscribe) over gRPC-Web; stations and case details over REST; the
// incident heat map and today's volume against the same weekday from the warehouse (警情数据大水库)
// over REST, the cold map of available units from alerts. Every stream reconnects by itself and the header says how each one stands.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { claims, hasRole } from "../../auth";
import { alerts as alertsApi, dispatch } from "../../api/grpc";
import { incidentTypeName, loadIncidentTypes } from "../../api/incident-types";
import { Live, type LinkState } from "../../api/live";
import { rest, requestId, ApiError } from "../../api/rest";
import type { Page } from "../../router";
import {
  CaseStatus, DispatchCaseSchema, UnitKind, UnitSchema, UnitStatus, type CaseChange, type DispatchCase, type Unit, type UnitChange,
} from "../../gen/smart110/dispatch/v1/dispatch_service_pb";
import { AlertLevel, AlertState, type Alert, type AlertChange } from "../../gen/smart110/alerts/v1/alerts_service_pb";
import { CityMap, type CoverageCircle, type HeatCell, type HeatMode, type StationArea } from "./map";
import {
  ALERT_LEVEL_COLOURS, ALERT_LEVEL_NAMES, ALERT_RESPONDERS, ALERT_STATE_NAMES, CASE_LEVEL_NAMES, CASE_STATUS_NAMES,
  CIRCLE_MINUTES, PRIORITY_COLOURS, PRIORITY_NAMES, UNIT_STATUS_COLOURS, UNIT_STATUS_NAMES, caseActive, clock, escapeHtml,
  percent, reachMetres, unitAvailable,
} from "./model";

/** The dispatch service's own threshold (DISPATCH_POSITION_STALE_SECONDS): older fixes are greyed
 * here too, without waiting for the unit's next change. */
const POSITION_STALE_MS = 900_000;
/** A change that reaches the screen later than this after it happened: the screen is behind. */
const BEHIND_MS = 5_000;
const HEAT_REFRESH_MS = 30_000;
const NEWEST_LISTED = 60;
const HEARTBEAT_SECONDS = 15;
const STATS_REFRESH_MS = 60_000;
const WEEK_MS = 7 * 86_400_000;

interface IntakeStats { reports?: string; answeredWithin3s?: number; handedOffWithin30s?: number }
interface ThresholdCheck { count?: string }
interface CircleStats { total?: { arrived?: string; withinTargetRate?: number; overdueNotArrived?: string;
  tiers?: { targetSeconds: number; arrived?: string; withinTarget?: string }[] } }

const ms = (t: Timestamp | undefined) => (t ? timestampMs(t) : 0);

interface RestStation {
  stationId: string; displayName: string; district: string;
  headquarters?: { longitude: number; latitude: number };
  boundaryGeojson: string;
  grids: { gridId: string; displayName: string; boundaryGeojson: string }[];
}

export async function loadStations(): Promise<StationArea[]> {
  const out: StationArea[] = [];
  let pageToken = "";
  do {
    const page = await rest.get<{ stations: RestStation[]; nextPageToken: string }>(
      "/v1/stations", { pageSize: 100, pageToken });
    for (const s of page.stations) {
      out.push({
        stationId: s.stationId, name: s.displayName, district: s.district,
        hq: [s.headquarters?.longitude ?? 0, s.headquarters?.latitude ?? 0],
        boundary: JSON.parse(s.boundaryGeojson),
        grids: s.grids.map((g) => ({ gridId: g.gridId, name: g.displayName, boundary: JSON.parse(g.boundaryGeojson) })),
      });
    }
    pageToken = page.nextPageToken;
  } while (pageToken);
  return out;
}

const LINK_NAMES: Record<LinkState, string> = {
  connecting: "连接中", live: "实时", behind: "延迟", disconnected: "已断开",
};

function layout(): string {
  const c = claims();
  return `
  <div class="screen">
    <header class="bar">
      <h1>指挥大屏 <small>警情 · 警力 · 预警 一张图</small></h1>
      <div class="filters">
        <label>区县 <select id="f-district"><option value="">全部</option></select></label>
        <label>派出所 <select id="f-station"><option value="">全部</option></select></label>
        <label>等级 <select id="f-priority"><option value="">全部</option>
          <option value="1">一级</option><option value="2">二级及以上</option><option value="3">三级及以上</option></select></label>
      </div>
      <div class="links" id="links"></div>
      <div class="who">${escapeHtml(c?.name ?? c?.sub ?? "")} <a href="#/logout">退出</a></div>
      <time id="clock"></time>
    </header>
    <aside class="panel left">
      <section>
        <h2>在办警情 <span id="total-cases" class="big">0</span> 起 · 可用警力 <span id="total-units" class="big">0</span></h2>
        <table class="counts" id="district-counts"><thead><tr><th>区县</th><th>在办</th><th>待派</th><th>可用警力</th></tr></thead><tbody></tbody></table>
      </section>
      <section class="kpi" id="kpi">
        <h2>接警处警指标</h2>
        <table class="counts"><tbody>
          <tr><td>今日接警</td><td id="kpi-today" class="big">—</td><td id="kpi-week"></td></tr>
          <tr><td>3秒接听率</td><td id="kpi-answer" class="big">—</td><td></td></tr>
          <tr><td>30秒派警率</td><td id="kpi-handoff" class="big">—</td><td></td></tr>
          <tr><td>1-3-5分钟到场率</td><td id="kpi-circles" class="big">—</td><td id="kpi-tiers"></td></tr>
        </tbody></table>
      </section>
      <section class="grow">
        <h2>各派出所</h2>
        <div class="scroll"><table class="counts" id="station-counts"><thead><tr><th>派出所</th><th>在办</th><th>待派</th><th>可用</th><th>在岗</th></tr></thead><tbody></tbody></table></div>
      </section>
    </aside>
    <main class="map-area">
      <div id="map"></div>
      <div class="map-tools">
        <div class="switch" id="heat-mode" role="radiogroup" aria-label="热力图">
          <button data-mode="off" class="on">警情/警力</button>
          <button data-mode="heat">警情热力图</button>
          <button data-mode="cold">警力冰点图</button>
        </div>
        <button id="coverage-toggle" aria-pressed="false" title="空闲警力1、3、5分钟可到达范围">1-3-5分钟圈</button>
        <label>时间窗 <select id="heat-window"><option value="1">今日</option><option value="7">近7天</option><option value="30">近30天</option></select></label>
      </div>
      <div class="legend">
        ${[1, 2, 3, 4].map((p) => `<span><i style="background:${PRIORITY_COLOURS[p]}"></i>${PRIORITY_NAMES[p]}警情</span>`).join("")}
        ${[UnitStatus.AVAILABLE, UnitStatus.EN_ROUTE, UnitStatus.ON_SCENE, UnitStatus.EMERGENCY].map((s) =>
          `<span><i class="dot" style="background:${UNIT_STATUS_COLOURS[s]}"></i>${UNIT_STATUS_NAMES[s]}</span>`).join("")}
        <span><i class="dot stale"></i>位置过时</span>
      </div>
    </main>
    <aside class="panel right">
      <section class="grow">
        <h2>最新警情</h2>
        <ol class="cases scroll" id="case-list"></ol>
      </section>
      <section class="alerts-section">
        <h2>预警 <span id="alert-count" class="big">0</span></h2>
        <ol class="alerts scroll" id="alert-list"></ol>
      </section>
    </aside>
    <div class="detail" id="detail" hidden></div>
  </div>`;
}

function mount(root: HTMLElement): () => void {
  root.innerHTML = layout();
  const $ = <T extends HTMLElement>(sel: string) => root.querySelector<T>(sel)!;
  const cases = new Map<string, DispatchCase>();
  const units = new Map<string, Unit>();
  const alerts = new Map<string, Alert>();
  const links: Record<string, { state: LinkState; detail: string }> = {};
  const filter = { district: "", station: "", priority: 0 };
  let stations: StationArea[] = [];
  let districtOf = new Map<string, string>();
  let cityMap: CityMap | null = null;
  let heatMode: HeatMode = "off";
  let heatCells: HeatCell[] = [];
  let followed: string | null = null;
  let coverageOn = false;
  let coverageCount = 0;
  let stats: Record<string, unknown> = {};
  let dirty = true;
  let frame = 0;
  const timers: number[] = [];
  const lives: Live<unknown>[] = [];

  const canAcknowledge = hasRole(...ALERT_RESPONDERS);

  function schedule(): void {
    dirty = true;
    if (!frame) frame = requestAnimationFrame(draw);
  }

  function showLinks(): void {
    $("#links").innerHTML = Object.entries(links).map(([label, l]) =>
      `<span class="link ${l.state}" title="${escapeHtml(l.detail)}" data-link="${label}">${label}：${LINK_NAMES[l.state]}${
        l.detail && l.state !== "live" ? `<small>${escapeHtml(l.detail)}</small>` : ""}</span>`).join("");
  }

  function linkState(label: string) {
    links[label] = { state: "connecting", detail: "" };
    return (state: LinkState, detail: string) => { links[label] = { state, detail }; showLinks(); };
  }

  function inFilter(stationId: string): boolean {
    if (filter.station) return stationId === filter.station;
    if (filter.district) return districtOf.get(stationId) === filter.district;
    return true;
  }

  function visibleCases(): DispatchCase[] {
    return [...cases.values()]
      .filter((c) => inFilter(c.stationId) && (!filter.priority || c.priority <= filter.priority))
      .sort((a, b) => (ms(b.reportTime) || ms(b.createTime)) - (ms(a.reportTime) || ms(a.createTime)));
  }

  function unitStale(u: Unit): boolean {
    return u.positionStale || !u.positionTime || Date.now() - ms(u.positionTime) > POSITION_STALE_MS;
  }

  function draw(): void {
    frame = 0;
    if (!dirty) return;
    dirty = false;
    const shown = visibleCases();
    if (cityMap) {
      void cityMap.setCases({
        type: "FeatureCollection",
        features: shown.filter((c) => c.location?.point).map((c) => ({
          type: "Feature", geometry: { type: "Point", coordinates: [c.location!.point!.longitude, c.location!.point!.latitude] },
          properties: { name: c.name, priority: c.priority, status: c.status, stationId: c.stationId,
                        district: districtOf.get(c.stationId) ?? "", followed: c.name === followed },
        })),
      });
      void cityMap.setUnits({
        type: "FeatureCollection",
        features: [...units.values()].filter((u) => u.position && (u.position.longitude || u.position.latitude)).map((u) => ({
          type: "Feature", geometry: { type: "Point", coordinates: [u.position!.longitude, u.position!.latitude] },
          properties: { name: u.name, status: u.status, stale: unitStale(u), stationId: u.stationId,
                        district: districtOf.get(u.stationId) ?? "" },
        })),
      });
    }
    if (cityMap) void cityMap.setCoverage(coverageOn ? coverage() : null);
    // Newest incidents.
    $("#case-list").innerHTML = shown.slice(0, NEWEST_LISTED).map((c) => `
      <li data-name="${escapeHtml(c.name)}" class="case p${c.priority}${c.name === followed ? " followed" : ""}">
        <span class="prio" style="background:${PRIORITY_COLOURS[c.priority] ?? "#888"}">${PRIORITY_NAMES[c.priority] ?? c.priority}</span>
        <span class="type">${escapeHtml(incidentTypeName(c.incidentType))}</span>
        <span class="what">${escapeHtml(c.summary || incidentTypeName(c.incidentType))}</span>
        <span class="status s${c.status}">${CASE_STATUS_NAMES[c.status] ?? ""}</span>
        <span class="where">${escapeHtml(stationName(c.stationId))} · ${escapeHtml(c.addressText)}</span>
        <time>${clock(ms(c.reportTime) || ms(c.createTime))}</time>
      </li>`).join("") || `<li class="empty">暂无在办警情</li>`;
    // Alerts: the most severe and newest first.
    const active = [...alerts.values()]
      .filter((a) => !a.area?.stationId || inFilter(a.area.stationId))
      .sort((a, b) => b.level - a.level || ms(b.lastSeenTime) - ms(a.lastSeenTime));
    $("#alert-count").textContent = String(active.length);
    $("#alert-list").innerHTML = active.map((a) => `
      <li data-name="${escapeHtml(a.name)}" class="alert state${a.state}" style="border-color:${ALERT_LEVEL_COLOURS[a.level] ?? "#888"}">
        <span class="level" style="background:${ALERT_LEVEL_COLOURS[a.level] ?? "#888"}">${ALERT_LEVEL_NAMES[a.level] ?? ""}</span>
        <span class="what">${escapeHtml(a.summary)}</span>
        <span class="todo">${escapeHtml(a.suggestedAction)}</span>
        <span class="meta">${ALERT_STATE_NAMES[a.state] ?? ""} · ${clock(ms(a.lastSeenTime))}${a.count > 1n ? ` · ${a.count}次` : ""}</span>
        ${canAcknowledge && a.state === AlertState.FIRING ? `<button class="ack" data-ack="${escapeHtml(a.name)}">确认</button>` : ""}
      </li>`).join("") || `<li class="empty">暂无预警</li>`;
    drawCounts();
  }

  /** The 1-3-5 minute circles of the available units with a fresh position, widest first. */
  function coverage(): CoverageCircle[] {
    const out: CoverageCircle[] = [];
    for (const minutes of CIRCLE_MINUTES) {
      for (const u of units.values()) {
        if (!unitAvailable(u.status) || unitStale(u) || !u.position || !inFilter(u.stationId)) continue;
        out.push({ lon: u.position.longitude, lat: u.position.latitude, radiusM: reachMetres(u.kind, minutes), minutes,
                   stationId: u.stationId, district: districtOf.get(u.stationId) ?? "" });
      }
    }
    coverageCount = out.length;
    return out;
  }

  // -- statistics: intake's answer and hand-off shares, today against the same weekday, and arrivals --
  async function refreshStats(): Promise<void> {
    const now = new Date();
    const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate());
    const station = filter.station || undefined;
    const span = (from: Date, to: Date) => ({ startTime: from.toISOString(), endTime: to.toISOString(), stationId: station });
    try {
      // Report counts from the warehouse, to the second: today so far, and the same weekday a week ago
      // to the same time of day. The answer and hand-off shares stay intake's.
      const [today, todayCount, lastWeek, circles] = await Promise.all([
        rest.get<IntakeStats>("/v1/statistics/intake", span(midnight, now)),
        rest.get<ThresholdCheck>("/v1/warehouse/threshold", span(midnight, now)),
        rest.get<ThresholdCheck>("/v1/warehouse/threshold", span(new Date(midnight.getTime() - WEEK_MS), new Date(now.getTime() - WEEK_MS))),
        rest.get<CircleStats>("/v1/statistics/responseCircles", span(midnight, now)),
      ]);
      const n = Number(todayCount.count ?? 0), m = Number(lastWeek.count ?? 0);
      $("#kpi-today").textContent = String(n);
      $("#kpi-week").textContent = `上周同日 ${m}${m ? `（${n >= m ? "+" : ""}${Math.round(((n - m) / m) * 100)}%）` : ""}`;
      $("#kpi-answer").textContent = n ? percent(today.answeredWithin3s ?? 0) : "—";
      $("#kpi-handoff").textContent = n ? percent(today.handedOffWithin30s ?? 0) : "—";
      const t = circles.total ?? {};
      $("#kpi-circles").textContent = Number(t.arrived ?? 0) ? percent(t.withinTargetRate ?? 0) : "—";
      $("#kpi-tiers").textContent = (t.tiers ?? []).filter((x) => Number(x.arrived ?? 0))
        .map((x) => `${x.targetSeconds / 60}分钟 ${x.withinTarget ?? 0}/${x.arrived}`).join(" · ");
      stats = { todayReports: n, sameWeekdayReports: m, answeredWithin3s: today.answeredWithin3s ?? 0,
                handedOffWithin30s: today.handedOffWithin30s ?? 0, circlesArrived: Number(t.arrived ?? 0),
                circlesWithinTargetRate: t.withinTargetRate ?? 0 };
      delete links["指标"];
    } catch (err) {
      links["指标"] = { state: "disconnected", detail: err instanceof Error ? err.message : String(err) };
    }
    showLinks();
  }

  function stationName(id: string): string {
    return stations.find((s) => s.stationId === id)?.name ?? id;
  }

  function drawCounts(): void {
    type Row = { cases: number; pending: number; available: number; onDuty: number };
    const zero = (): Row => ({ cases: 0, pending: 0, available: 0, onDuty: 0 });
    const byStation = new Map<string, Row>(stations.map((s) => [s.stationId, zero()]));
    for (const c of cases.values()) {
      const row = byStation.get(c.stationId) ?? byStation.set(c.stationId, zero()).get(c.stationId)!;
      row.cases += 1;
      if (c.status === CaseStatus.PENDING) row.pending += 1;
    }
    for (const u of units.values()) {
      const row = byStation.get(u.stationId) ?? byStation.set(u.stationId, zero()).get(u.stationId)!;
      row.onDuty += 1;
      if (unitAvailable(u.status)) row.available += 1;
    }
    const byDistrict = new Map<string, Row>();
    for (const [id, row] of byStation) {
      const d = districtOf.get(id) ?? "其他";
      const sum = byDistrict.get(d) ?? byDistrict.set(d, zero()).get(d)!;
      sum.cases += row.cases; sum.pending += row.pending; sum.available += row.available; sum.onDuty += row.onDuty;
    }
    let totalCases = 0, totalAvailable = 0;
    for (const r of byDistrict.values()) { totalCases += r.cases; totalAvailable += r.available; }
    $("#total-cases").textContent = String(totalCases);
    $("#total-units").textContent = String(totalAvailable);
    $("#district-counts tbody").innerHTML = [...byDistrict].map(([d, r]) =>
      `<tr data-district="${escapeHtml(d)}" class="${filter.district === d ? "sel" : ""}"><td>${escapeHtml(d)}</td><td>${r.cases}</td><td class="${r.pending ? "warn" : ""}">${r.pending}</td><td>${r.available}</td></tr>`).join("");
    $("#station-counts tbody").innerHTML = [...byStation]
      .filter(([id]) => !filter.district || districtOf.get(id) === filter.district)
      .map(([id, r]) =>
        `<tr data-station="${id}" class="${filter.station === id ? "sel" : ""}"><td>${escapeHtml(stationName(id))}</td><td>${r.cases}</td><td class="${r.pending ? "warn" : ""}">${r.pending}</td><td>${r.available}</td><td>${r.onDuty}</td></tr>`).join("");
  }

  // -- live streams --------------------------------------------------------------------------------
  const caseLive: Live<CaseChange> = new Live({
    label: "警情",
    open: (after, signal, onHeader) => dispatch.watchCases({ afterSequence: after }, { signal, onHeader }),
    onReset: () => { cases.clear(); schedule(); },
    onMessage: (change) => {
      const c = change.dispatchCase;
      if (c) {
        if (!change.inView || !caseActive(c.status)) cases.delete(c.name);
        else cases.set(c.name, c);
        if (change.action !== "SNAPSHOT") {
          const lag = Date.now() - ms(c.updateTime);
          if (lag > BEHIND_MS) caseLive.behind(`警情延迟${Math.round(lag / 1000)}秒`); else caseLive.caughtUp();
          if (c.name === followed && c.location?.point) void cityMap?.flyTo(c.location.point.longitude, c.location.point.latitude);
          if (openDetail === c.name) void showDetail(c.name);
        }
        schedule();
      }
      return change.sequence;
    },
    onState: linkState("警情"),
  });
  const unitLive: Live<UnitChange> = new Live({
    label: "警力",
    heartbeatSeconds: HEARTBEAT_SECONDS,
    open: (after, signal, onHeader) => dispatch.watchUnits({ afterSequence: after }, { signal, onHeader }),
    onReset: () => { units.clear(); schedule(); },
    onMessage: (change) => {
      const u = change.unit;
      if (change.action !== "HEARTBEAT" && u?.name) {
        if (!u.onDuty || u.status === UnitStatus.OFF_DUTY) units.delete(u.name); else units.set(u.name, u);
        if (change.action === "CHANGED") {
          const lag = Date.now() - ms(change.recordTime);
          if (lag > BEHIND_MS) unitLive.behind(`警力延迟${Math.round(lag / 1000)}秒`); else unitLive.caughtUp();
        }
        schedule();
      }
      return change.sequence;
    },
    onState: linkState("警力"),
  });
  const alertLive: Live<AlertChange> = new Live({
    label: "预警",
    heartbeatSeconds: HEARTBEAT_SECONDS,
    open: (after, signal, onHeader) => alertsApi.subscribe(
      { afterSequence: after, includeActive: after === 0n, minLevel: AlertLevel.BLUE }, { signal, onHeader }),
    onReset: () => { alerts.clear(); schedule(); },
    onMessage: (change) => {
      const a = change.alert;
      if (change.action !== "HEARTBEAT" && a?.name) {
        if (a.state === AlertState.RESOLVED) alerts.delete(a.name); else alerts.set(a.name, a);
        schedule();
      }
      return change.sequence;
    },
    onState: linkState("预警"),
  });

  // -- heat map ------------------------------------------------------------------------------------
  async function refreshHeat(): Promise<void> {
    if (heatMode === "off" || !cityMap) { void cityMap?.setHeat([], "off"); return; }
    const days = Number(($("#heat-window") as HTMLSelectElement).value);
    const end = new Date();
    const today = new Date(end.getFullYear(), end.getMonth(), end.getDate());
    const b = cityMap.map.getBounds();
    const corners = (key: string) => ({
      [`${key}.southWest.longitude`]: b.getWest(), [`${key}.southWest.latitude`]: b.getSouth(),
      [`${key}.northEast.longitude`]: b.getEast(), [`${key}.northEast.latitude`]: b.getNorth(),
    });
    try {
      if (heatMode === "heat") {
        // Reports per H3 cell from the warehouse's rollups, over whole city days.
        const doc = await rest.get<{ cells?: { cell: string; count?: string }[] }>("/v1/warehouse/heatMap", {
          ...corners("box"), stationId: filter.station || undefined,
          startTime: new Date(today.getTime() - (days - 1) * 86_400_000).toISOString(), endTime: end.toISOString(),
        });
        heatCells = (doc.cells ?? []).map((c) => ({ cell: c.cell, incidents: Number(c.count ?? 0), available: 0, stationId: filter.station }));
      } else {
        // Available units per cell, from alerts (police strength now; the window only bounds its incident counts).
        const doc = await rest.get<{ cells: { cell: string; incidentCount: string; availableUnits: string; stationId: string }[] }>(
          "/v1/heatMap", { ...corners("bounds"), startTime: new Date(end.getTime() - 3600_000).toISOString(), endTime: end.toISOString() });
        heatCells = doc.cells.map((c) => ({ cell: c.cell, incidents: Number(c.incidentCount), available: Number(c.availableUnits), stationId: c.stationId }));
      }
      await cityMap.setHeat(heatCells, heatMode);
      links["热力"] = { state: "live", detail: "" };
    } catch (err) {
      links["热力"] = { state: "disconnected", detail: err instanceof Error ? err.message : String(err) };
    }
    showLinks();
  }

  // -- case detail ---------------------------------------------------------------------------------
  let openDetail: string | null = null;
  async function showDetail(name: string): Promise<void> {
    openDetail = name;
    const el = $("#detail");
    el.hidden = false;
    try {
      type Entry = { action: string; detail: string; stamp?: { actor: string; time: string } };
      const c = await rest.get<{
        name: string; summary: string; incidentType: string; priority: number; status: string; level: string;
        addressText: string; stationId: string; reportTime: string; instructions: string;
        timeline: Entry[]; assignments: { unit: string; state: string; role: string }[];
      }>(`/v1/${name}`);
      const related = [...alerts.values()].filter((a) => a.subject === name || a.relatedSubjects.includes(name));
      el.innerHTML = `
        <header><h2>${escapeHtml(c.summary || incidentTypeName(c.incidentType))}</h2>
          <button id="follow">${followed === name ? "取消跟随" : "跟随此警情"}</button><button id="close-detail">关闭</button></header>
        <p class="meta"><span class="type">${escapeHtml(incidentTypeName(c.incidentType))}</span> · ${PRIORITY_NAMES[c.priority] ?? c.priority} · ${CASE_STATUS_NAMES[CaseStatus[c.status.replace("CASE_STATUS_", "") as keyof typeof CaseStatus] as number] ?? c.status}
          · ${CASE_LEVEL_NAMES[levelValue(c.level)] ?? ""} · ${escapeHtml(stationName(c.stationId))} · ${escapeHtml(c.addressText)}
          · 报警时间 ${clock(Date.parse(c.reportTime))}</p>
        ${c.instructions ? `<p class="instructions">${escapeHtml(c.instructions)}</p>` : ""}
        <h3>出警单位</h3><ul>${c.assignments.map((a) => `<li>${escapeHtml(a.unit)} · ${escapeHtml(a.state.replace("ASSIGNMENT_STATE_", ""))}</li>`).join("") || "<li>暂无</li>"}</ul>
        <h3>预警</h3><ul>${related.map((a) => `<li>${ALERT_LEVEL_NAMES[a.level] ?? ""} ${escapeHtml(a.summary)}</li>`).join("") || "<li>无</li>"}</ul>
        <h3>处置过程</h3><ol class="timeline">${c.timeline.map((t) =>
          `<li><time>${clock(Date.parse(t.stamp?.time ?? ""))}</time> ${escapeHtml(t.action)} ${escapeHtml(t.detail)} <small>${escapeHtml(t.stamp?.actor ?? "")}</small></li>`).join("")}</ol>`;
    } catch (err) {
      el.innerHTML = `<header><h2>警情详情</h2><button id="close-detail">关闭</button></header>
        <p class="error">${escapeHtml(err instanceof ApiError ? err.message : String(err))}</p>`;
    }
  }
  function levelValue(level: string): number {
    return ({ CASE_LEVEL_STATION: 1, CASE_LEVEL_COUNTY: 2, CASE_LEVEL_CITY: 3, CASE_LEVEL_PROVINCE: 4 } as Record<string, number>)[level] ?? 0;
  }

  // -- interactions --------------------------------------------------------------------------------
  root.addEventListener("click", (ev) => {
    const target = ev.target as HTMLElement;
    const ack = target.closest<HTMLElement>("[data-ack]");
    if (ack) {
      ack.setAttribute("disabled", "");
      const name = ack.dataset.ack!;
      rest.post<Alert>(`/v1/${name}:acknowledge`, { requestId: requestId(), comment: "指挥大屏确认" })
        .then(() => {
          const a = alerts.get(name);
          if (a) { a.state = AlertState.ACKNOWLEDGED; schedule(); }
        })
        .catch((err) => { ack.removeAttribute("disabled"); ack.title = String(err.message ?? err); });
      return;
    }
    if (target.id === "close-detail") { $("#detail").hidden = true; openDetail = null; return; }
    if (target.id === "follow" && openDetail) {
      followed = followed === openDetail ? null : openDetail;
      target.textContent = followed ? "取消跟随" : "跟随此警情";
      const c = followed ? cases.get(followed) : undefined;
      if (c?.location?.point) void cityMap?.flyTo(c.location.point.longitude, c.location.point.latitude);
      schedule();
      return;
    }
    const item = target.closest<HTMLElement>("#case-list li[data-name]");
    if (item) { void showDetail(item.dataset.name!); return; }
    const dRow = target.closest<HTMLElement>("tr[data-district]");
    if (dRow) { setDistrict(filter.district === dRow.dataset.district ? "" : dRow.dataset.district!); return; }
    const sRow = target.closest<HTMLElement>("tr[data-station]");
    if (sRow) { setStation(filter.station === sRow.dataset.station ? "" : sRow.dataset.station!); return; }
    if (target.id === "coverage-toggle") {
      coverageOn = !coverageOn;
      target.classList.toggle("on", coverageOn);
      target.setAttribute("aria-pressed", String(coverageOn));
      schedule();
      return;
    }
    const mode = target.closest<HTMLElement>("#heat-mode button");
    if (mode) {
      heatMode = mode.dataset.mode as HeatMode;
      root.querySelectorAll("#heat-mode button").forEach((b) => b.classList.toggle("on", b === mode));
      void refreshHeat();
    }
  });
  function setDistrict(d: string): void {
    filter.district = d; filter.station = "";
    ($("#f-district") as HTMLSelectElement).value = d;
    fillStations();
    void cityMap?.filter(d || null, null);
    schedule();
  }
  function setStation(s: string): void {
    filter.station = s;
    ($("#f-station") as HTMLSelectElement).value = s;
    void cityMap?.filter(filter.district || null, s || null);
    schedule();
    void refreshStats();
  }
  function fillStations(): void {
    $("#f-station").innerHTML = `<option value="">全部</option>` + stations
      .filter((s) => !filter.district || s.district === filter.district)
      .map((s) => `<option value="${s.stationId}">${escapeHtml(s.name)}</option>`).join("");
  }
  $("#f-district").addEventListener("change", (ev) => setDistrict((ev.target as HTMLSelectElement).value));
  $("#f-station").addEventListener("change", (ev) => setStation((ev.target as HTMLSelectElement).value));
  $("#f-priority").addEventListener("change", (ev) => { filter.priority = Number((ev.target as HTMLSelectElement).value); schedule(); });
  $("#heat-window").addEventListener("change", () => void refreshHeat());

  const tick = () => { $("#clock").textContent = new Date().toLocaleString("zh-CN", { hour12: false }); };
  tick();
  timers.push(window.setInterval(tick, 1000));
  // Positions age without any change arriving: grey them as they pass the threshold.
  timers.push(window.setInterval(schedule, 30_000));
  timers.push(window.setInterval(() => void refreshHeat(), HEAT_REFRESH_MS));
  timers.push(window.setInterval(() => void refreshStats(), STATS_REFRESH_MS));
  void refreshStats();

  // -- start ---------------------------------------------------------------------------------------
  links["底图"] = { state: "connecting", detail: "" };
  showLinks();
  let stopped = false;
  loadIncidentTypes().then(() => {
    if (stopped) return;
    schedule();
    if (openDetail) void showDetail(openDetail);
  }).catch((err) => {
    links["警情类型"] = { state: "disconnected", detail: err instanceof Error ? err.message : String(err) };
    showLinks();
  });
  loadStations().then((loaded) => {
    stations = loaded;
    districtOf = new Map(stations.map((s) => [s.stationId, s.district]));
    $("#f-district").innerHTML = `<option value="">全部</option>` +
      [...new Set(stations.map((s) => s.district))].map((d) => `<option>${escapeHtml(d)}</option>`).join("");
    fillStations();
    delete links["底图"];
    cityMap = new CityMap($("#map"), stations, (name) => void showDetail(name));
    cityMap.map.once("load", () => { root.querySelector(".screen")!.setAttribute("data-map-ready", "true"); schedule(); });
    showLinks();
    schedule();
  }).catch((err) => {
    links["底图"] = { state: "disconnected", detail: err instanceof Error ? err.message : String(err) };
    showLinks();
  });
  for (const live of [caseLive, unitLive, alertLive] as Live<unknown>[]) lives.push(live.start());

  // Read by the browser tests (and handy from the console): what the screen shows now.
  (window as unknown as Record<string, unknown>).smart110BigScreen = {
    renderedCaseNames: () => cityMap?.renderedCaseNames() ?? [],
    listedCaseNames: () => [...root.querySelectorAll<HTMLElement>("#case-list li[data-name]")].map((li) => li.dataset.name),
    alertNames: () => [...alerts.keys()],
    links: () => ({ ...links }),
    coverageCircles: () => coverageCount,
    stats: () => ({ ...stats }),
    /** Benchmarks: adds synthetic units and incidents around the stations (the sample city has fewer). */
    simulate: (unitCount: number, caseCount: number) => {
      const at = timestampFromMs(Date.now());
      const near = (i: number) => {
        const s = stations[i % stations.length];
        return { longitude: s.hq[0] + (Math.random() - 0.5) * 0.04, latitude: s.hq[1] + (Math.random() - 0.5) * 0.04 };
      };
      for (let i = 0; i < unitCount; i++) {
        const st = stations[i % stations.length];
        units.set(`units/SIM-${i}`, create(UnitSchema, {
          name: `units/SIM-${i}`, unitId: `SIM-${i}`, stationId: st.stationId, kind: UnitKind.PATROL_CAR, onDuty: true,
          status: i % 3 ? UnitStatus.AVAILABLE : UnitStatus.EN_ROUTE, position: near(i), positionTime: at,
        }));
      }
      for (let i = 0; i < caseCount; i++) {
        const st = stations[i % stations.length];
        cases.set(`cases/SIM-${i}`, create(DispatchCaseSchema, {
          name: `cases/SIM-${i}`, stationId: st.stationId, priority: 1 + (i % 4), status: CaseStatus.PENDING,
          summary: "模拟警情", location: { point: near(i) }, reportTime: at, createTime: at,
        }));
      }
      schedule();
    },
    /** Benchmarks: moves every synthetic unit and incident a little and redraws. */
    moveSimulated: () => {
      const step = () => (Math.random() - 0.5) * 0.0008;
      for (const [name, u] of units) if (name.startsWith("units/SIM-") && u.position) {
        u.position.longitude += step(); u.position.latitude += step();
      }
      for (const [name, c] of cases) if (name.startsWith("cases/SIM-") && c.location?.point) {
        c.location.point.longitude += step(); c.location.point.latitude += step();
      }
      schedule();
    },
    setCoverage: (on: boolean) => { coverageOn = on; $("#coverage-toggle").classList.toggle("on", on); schedule(); },
  };

  return () => {
    stopped = true;
    lives.forEach((l) => l.stop());
    timers.forEach((t) => window.clearInterval(t));
    if (frame) cancelAnimationFrame(frame);
    cityMap?.destroy();
    delete (window as unknown as Record<string, unknown>).smart110BigScreen;
  };
}

export const bigScreen: Page = {
  path: "/big-screen",
  title: "指挥大屏",
  // Those who may watch cases live (services/dispatch/policy.py WatchCases).
  roles: ["commander", "dispatcher", "station_chief", "supervisor"],
  mount,
};
