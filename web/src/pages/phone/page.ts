// 民警手机: the officer's phone view (a mobile-width page). The unit's offers arrive live
// (WatchAssignments over gRPC-Web); the officer accepts or declines with a reason, says what the unit
// is doing (SetUnitStatus, the panic button EMERGENCY behind a confirmation), moves the case on (en
// route, on scene, cleared) and reports back with the outcome, notes and photos (ReportBack), each photo
// first kept by dispatch's evidence store (UploadEvidence). The
// browser's geolocation goes to the unit's position (ReportPosition, the unary route: a browser
// cannot stream to the server).
import "./phone.css";
import { ConnectError } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { claims } from "../../auth";
import { dispatch } from "../../api/grpc";
import { incidentTypeName, loadIncidentTypes } from "../../api/incident-types";
import { Live, type LinkState } from "../../api/live";
import { ApiError, rest, requestId } from "../../api/rest";
import type { Page } from "../../router";
import { AssignmentState, Outcome, UnitStatus, type Assignment } from "../../gen/smart110/dispatch/v1/dispatch_service_pb";
import { AttachmentKind } from "../../gen/smart110/common/v1/common_pb";
import { PRIORITY_COLOURS, PRIORITY_NAMES, UNIT_STATUS_COLOURS, UNIT_STATUS_NAMES, clock, escapeHtml } from "../big-screen/model";

/** A position goes out at most this often while the officer stands still... */
const POSITION_EVERY_MS = 15_000;
/** ...and at once after moving this far. */
const POSITION_MOVED_M = 25;
const MAX_EVIDENCE = 50;

/** The statuses an officer reports (SetUnitStatus); offered, en route and on scene follow the case. */
const REPORTABLE: UnitStatus[] = [
  UnitStatus.AVAILABLE, UnitStatus.BUSY, UnitStatus.AT_STATION, UnitStatus.OUT_OF_SERVICE, UnitStatus.TRANSPORTING,
];

const STATE_NAMES: Record<string, string> = {
  OFFERED: "新派单", ACCEPTED: "已接单", DECLINED: "已拒绝", EXPIRED: "已超时", EN_ROUTE: "出警途中",
  ON_SCENE: "到达现场", CLEARED: "处置完毕", REPORTED_BACK: "已回告", CANCELLED: "已撤销", WITHDRAWN: "已收队",
};
const ACTIVE_STATES = new Set(["OFFERED", "ACCEPTED", "EN_ROUTE", "ON_SCENE", "CLEARED"]);

const OUTCOME_NAMES: Record<number, string> = {
  [Outcome.CRIMINAL_CASE]: "刑事案件", [Outcome.ADMINISTRATIVE_CASE]: "行政案件", [Outcome.MEDIATED]: "调解处理",
  [Outcome.NO_ISSUE_FOUND]: "现场无警情", [Outcome.REFERRED]: "移交处理", [Outcome.ASSISTANCE_GIVEN]: "求助已处置",
};

interface RestUnit {
  name: string; unitId: string; callSign: string; stationId: string; status: string;
  officers?: { officerId: string; displayName?: string }[];
}

interface RestAssignment {
  name: string; state: string; version?: string; offerExpireTime?: string; outcome?: string; notes?: string;
  evidence?: unknown[]; declineReason?: string; arrivalSeconds?: number; arrivalTargetSeconds?: number;
  caseSummary?: { name: string; summary?: string; incidentType?: string; priority?: number; addressText?: string;
                  instructions?: string; silent?: boolean };
}

/** One assignment as the page shows it, from the stream (protobuf) or a call's answer (JSON). */
interface Job {
  name: string; state: string; version: number; caseName: string; summary: string; incidentType: string; priority: number;
  address: string; instructions: string; silent: boolean; offerExpireMs: number; outcome: string; notes: string;
  evidence: number; declineReason: string; arrivalSeconds: number; arrivalTarget: number;
}

interface Evidence {
  kind: string; contentType: string; sizeBytes: string; sha256: string; storageUri: string; fileName: string;
}

function fromStream(a: Assignment): Job {
  const c = a.caseSummary;
  return {
    name: a.name, state: AssignmentState[a.state] ?? "", version: Number(a.version), caseName: c?.name ?? "",
    summary: c?.summary ?? "", incidentType: c?.incidentType ?? "", priority: c?.priority ?? 0, address: c?.addressText ?? "",
    instructions: c?.instructions ?? "", silent: c?.silent ?? false,
    offerExpireMs: a.offerExpireTime ? timestampMs(a.offerExpireTime) : 0,
    outcome: a.outcome ? Outcome[a.outcome] : "", notes: a.notes, evidence: a.evidence.length,
    declineReason: a.declineReason, arrivalSeconds: a.arrivalSeconds, arrivalTarget: a.arrivalTargetSeconds,
  };
}

function fromJson(a: RestAssignment): Job {
  const c = a.caseSummary;
  return {
    name: a.name, state: a.state.replace("ASSIGNMENT_STATE_", ""), version: Number(a.version ?? 0),
    caseName: c?.name ?? "", summary: c?.summary ?? "", incidentType: c?.incidentType ?? "", priority: c?.priority ?? 0,
    address: c?.addressText ?? "", instructions: c?.instructions ?? "", silent: c?.silent ?? false,
    offerExpireMs: a.offerExpireTime ? Date.parse(a.offerExpireTime) : 0,
    outcome: (a.outcome ?? "").replace("OUTCOME_", "").replace("UNSPECIFIED", ""), notes: a.notes ?? "",
    evidence: a.evidence?.length ?? 0, declineReason: a.declineReason ?? "", arrivalSeconds: a.arrivalSeconds ?? 0,
    arrivalTarget: a.arrivalTargetSeconds ?? 0,
  };
}

const statusValue = (s: string) => UnitStatus[s.replace("UNIT_STATUS_", "") as keyof typeof UnitStatus] as number;

/** Metres between two points (equirectangular; fine at a phone's step). */
function metres(a: [number, number], b: [number, number]): number {
  const k = Math.PI / 180;
  const x = (b[0] - a[0]) * k * Math.cos(((a[1] + b[1]) / 2) * k);
  const y = (b[1] - a[1]) * k;
  return Math.hypot(x, y) * 6_371_000;
}

/** The photos dispatch keeps (UploadEvidence): JPEG or PNG, at most 5 MB. */
const EVIDENCE_TYPES = ["image/jpeg", "image/png"];
const MAX_EVIDENCE_BYTES = 5 * 1024 * 1024;

/** The unit to show: `#/phone?unit=U-…` if given, else the one whose officers include the signed-in officer. */
async function findUnit(): Promise<RestUnit | null> {
  const query = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const asked = query.get("unit");
  if (asked) return rest.get<RestUnit>(`/v1/${asked.startsWith("units/") ? asked : `units/${asked}`}`);
  const c = claims();
  if (!c) return null;
  let pageToken = "";
  do {
    const page = await rest.get<{ units?: RestUnit[]; nextPageToken?: string }>(
      "/v1/units", { stationId: c.station, pageSize: 200, pageToken });
    const mine = page.units?.find((u) => u.officers?.some((o) => o.officerId === c.sub));
    if (mine) return mine;
    pageToken = page.nextPageToken ?? "";
  } while (pageToken);
  return null;
}

function mount(root: HTMLElement): () => void {
  root.innerHTML = `<div class="phone"><header><h1>民警手机<small>正在查找本人所在警组…</small></h1></header></div>`;
  const $ = <T extends HTMLElement>(sel: string) => root.querySelector<T>(sel)!;
  const jobs = new Map<string, Job>();
  const evidence = new Map<string, Evidence[]>();
  const declining = new Set<string>();
  const errors = new Map<string, string>();
  let unit: RestUnit | null = null;
  let link: { state: LinkState; detail: string } = { state: "connecting", detail: "" };
  let confirmEmergency = false;
  let statusError = "";
  let position = { sent: 0, lastMs: 0, last: null as [number, number] | null, accuracy: 0, error: "" };
  let live: Live<Assignment> | null = null;
  let watchId: number | null = null;
  const timers: number[] = [];
  let stopped = false;

  function layout(u: RestUnit): void {
    const c = claims();
    root.innerHTML = `
    <div class="phone" data-unit="${escapeHtml(u.name)}">
      <header>
        <h1>${escapeHtml(u.callSign || u.unitId)}<small>${escapeHtml(c?.name ?? c?.sub ?? "")} · ${escapeHtml(u.stationId)}</small></h1>
        <span class="badge" id="unit-status"></span>
      </header>
      <div class="where"><span id="position">定位中…</span><span class="link" id="link"></span></div>
      <section><h2>派单</h2><div id="jobs"></div></section>
      <section>
        <h2>状态上报</h2>
        <div class="statuses" id="statuses">
          ${REPORTABLE.map((s) => `<button data-status="${UnitStatus[s]}">${UNIT_STATUS_NAMES[s]}</button>`).join("")}
          <button class="danger" data-status="EMERGENCY" id="panic">紧急求助</button>
        </div>
        <label style="margin-top:8px">原因（暂停勤务必填）<input id="status-reason" maxlength="500" placeholder="如：车辆故障、培训"></label>
        <div id="confirm"></div>
        <p class="error" id="status-error" role="alert"></p>
      </section>
      <p class="where"><span><a href="#/logout">退出</a></span></p>
    </div>`;
  }

  function showUnit(): void {
    if (!unit) return;
    const s = statusValue(unit.status);
    const badge = $("#unit-status");
    badge.textContent = UNIT_STATUS_NAMES[s] ?? unit.status;
    badge.style.background = UNIT_STATUS_COLOURS[s] ?? "#8e8e93";
    badge.dataset.status = unit.status.replace("UNIT_STATUS_", "");
    root.querySelectorAll<HTMLElement>("#statuses button[data-status]").forEach((b) =>
      b.classList.toggle("on", b.dataset.status === badge.dataset.status));
    $("#confirm").innerHTML = confirmEmergency ? `
      <div class="confirm" style="margin-top:8px;padding:8px;border:1px solid;border-radius:8px">
        <p>确认发出紧急求助？指挥中心将立即向附近警力派单。</p>
        <div class="row"><button class="danger" id="emergency-yes">确认求助</button><button id="emergency-no">取消</button></div>
      </div>` : "";
    $("#status-error").textContent = statusError;
  }

  function showLink(): void {
    const el = root.querySelector<HTMLElement>("#link");
    if (!el) return;
    el.className = `link ${link.state}`;
    el.textContent = { connecting: "连接中", live: "实时", behind: "延迟", disconnected: "已断开" }[link.state];
    el.title = link.detail;
  }

  function showPosition(): void {
    const el = root.querySelector<HTMLElement>("#position");
    if (!el) return;
    el.textContent = position.error ? `定位：${position.error}` : position.sent
      ? `位置已上报 ${clock(position.lastMs)}（±${Math.round(position.accuracy)}米）` : "定位中…";
  }

  function jobCard(j: Job): string {
    const active = ACTIVE_STATES.has(j.state);
    const err = errors.get(j.name) ?? "";
    const left = j.state === "OFFERED" && j.offerExpireMs ? Math.max(0, Math.round((j.offerExpireMs - Date.now()) / 1000)) : 0;
    let actions = "";
    if (j.state === "OFFERED") {
      actions = declining.has(j.name) ? `
        <form data-decline="${escapeHtml(j.name)}">
          <label>拒绝原因<input name="reason" required maxlength="500" placeholder="如：正在处置其他警情"></label>
          <div class="row"><button class="warn" type="submit">确认拒绝</button><button type="button" data-act="keep">返回</button></div>
        </form>` : `<div class="row"><button class="primary" data-act="accept">接受</button><button class="warn" data-act="decline">拒绝</button></div>`;
    } else if (j.state === "ACCEPTED") {
      actions = `<div class="row"><button class="primary" data-act="EN_ROUTE">出发</button></div>`;
    } else if (j.state === "EN_ROUTE") {
      actions = `<div class="row"><button class="primary" data-act="ON_SCENE">到达现场</button></div>`;
    } else if (j.state === "ON_SCENE") {
      actions = `<div class="row"><button class="primary" data-act="CLEARED">处置完毕</button></div>`;
    } else if (j.state === "CLEARED") {
      const files = evidence.get(j.name) ?? [];
      actions = `
        <form data-report="${escapeHtml(j.name)}">
          <label>处置结果<select name="outcome" required><option value="">请选择</option>
            ${Object.entries(OUTCOME_NAMES).map(([v, n]) => `<option value="${Outcome[Number(v)]}">${n}</option>`).join("")}</select></label>
          <label>处警情况<textarea name="notes" rows="3" maxlength="4000" placeholder="现场情况、处置经过"></textarea></label>
          <label>现场照片（JPG、PNG，每张不超过 5MB）<input type="file" name="files" multiple accept="image/jpeg,image/png"></label>
          ${files.length ? `<ul class="evidence">${files.map((f) => `<li data-uri="${escapeHtml(f.storageUri)}">${escapeHtml(f.fileName)} · 已上传 ${Math.ceil(Number(f.sizeBytes) / 1024)}KB</li>`).join("")}</ul>` : ""}
          <button class="primary" type="submit">提交反馈</button>
        </form>`;
    } else if (j.state === "REPORTED_BACK") {
      const outcome = OUTCOME_NAMES[Outcome[j.outcome as keyof typeof Outcome] as number] ?? j.outcome;
      actions = `<p class="meta">已回告：${escapeHtml(outcome)}${j.evidence ? `，附证据${j.evidence}件` : ""}</p>`;
    } else if (j.state === "DECLINED" && j.declineReason) {
      actions = `<p class="meta">拒绝原因：${escapeHtml(j.declineReason)}</p>`;
    }
    const colour = PRIORITY_COLOURS[j.priority] ?? "#888";
    return `
      <article class="assignment ${j.state.toLowerCase()}${active ? "" : " done"}" data-name="${escapeHtml(j.name)}" data-state="${j.state}" style="border-color:${colour}">
        <div class="title"><span class="prio" style="background:${colour}">${PRIORITY_NAMES[j.priority] ?? ""}</span>
          <strong class="type">${escapeHtml(incidentTypeName(j.incidentType))}</strong><span class="state">${STATE_NAMES[j.state] ?? j.state}${left ? ` · ${left}秒内应答` : ""}</span></div>
        ${j.summary ? `<div class="summary">${escapeHtml(j.summary)}</div>` : ""}
        <div class="meta">${escapeHtml(j.address)}</div>
        ${j.instructions ? `<div class="instructions">${j.silent ? "【无声报警】" : ""}${escapeHtml(j.instructions)}</div>` : ""}
        ${j.arrivalSeconds ? `<div class="meta">接警至到场 ${j.arrivalSeconds} 秒${j.arrivalTarget ? `（要求 ${j.arrivalTarget} 秒）` : ""}</div>` : ""}
        ${actions}
        <p class="error" role="alert">${escapeHtml(err)}</p>
      </article>`;
  }

  function showJobs(): void {
    const el = root.querySelector<HTMLElement>("#jobs");
    if (!el) return;
    // Keep what the officer is typing: a form being filled in is not redrawn under their fingers.
    const typing = document.activeElement?.closest?.("form[data-report], form[data-decline]");
    if (typing && el.contains(typing)) return;
    const list = [...jobs.values()].sort((a, b) =>
      Number(ACTIVE_STATES.has(b.state)) - Number(ACTIVE_STATES.has(a.state)) || b.version - a.version);
    el.innerHTML = list.map(jobCard).join("") || `<p class="empty">暂无派单，保持在线等待指令</p>`;
  }

  function keep(j: Job): void {
    const prev = jobs.get(j.name);
    if (!prev || j.version >= prev.version) jobs.set(j.name, j);
    showJobs();
  }

  async function refreshUnit(): Promise<void> {
    if (!unit) return;
    try { unit = await rest.get<RestUnit>(`/v1/${unit.name}`); showUnit(); } catch { /* shown on the next change */ }
  }

  async function act(name: string, verb: string, body: Record<string, unknown>): Promise<void> {
    errors.delete(name);
    try {
      keep(fromJson(await rest.post<RestAssignment>(`/v1/${name}:${verb}`, { requestId: requestId(), ...body })));
      void refreshUnit();
    } catch (err) {
      errors.set(name, err instanceof ApiError ? err.message : String(err));
      showJobs();
    }
  }

  async function setStatus(status: string): Promise<void> {
    if (!unit) return;
    const reason = ($("#status-reason") as HTMLInputElement).value.trim();
    statusError = "";
    try {
      unit = await rest.post<RestUnit>(`/v1/${unit.name}:setStatus`, { requestId: requestId(), status: `UNIT_STATUS_${status}`, reason });
      ($("#status-reason") as HTMLInputElement).value = "";
    } catch (err) {
      statusError = err instanceof ApiError ? err.message : String(err);
    }
    showUnit();
  }

  async function sendPosition(pos: GeolocationPosition): Promise<void> {
    if (!unit) return;
    const here: [number, number] = [pos.coords.longitude, pos.coords.latitude];
    const due = Date.now() - position.lastMs >= POSITION_EVERY_MS || !position.last || metres(position.last, here) >= POSITION_MOVED_M;
    if (!due) return;
    position.lastMs = Date.now();
    try {
      await rest.post(`/v1/${unit.name}:reportPosition`, {
        position: { longitude: here[0], latitude: here[1] }, fixTime: new Date(pos.timestamp).toISOString(),
        accuracyM: pos.coords.accuracy,
      });
      position = { ...position, sent: position.sent + 1, last: here, accuracy: pos.coords.accuracy, error: "" };
    } catch (err) {
      position.error = err instanceof ApiError ? err.message : String(err);
    }
    showPosition();
  }

  /** Each photo goes to dispatch's evidence store at once (UploadEvidence, gRPC-Web, the bytes as
   * they are); the report-back then names what was stored. */
  async function addEvidence(name: string, files: FileList): Promise<void> {
    const list = evidence.get(name) ?? [];
    const refused: string[] = [];
    for (const f of [...files].slice(0, MAX_EVIDENCE - list.length)) {
      if (!EVIDENCE_TYPES.includes(f.type)) { refused.push(`${f.name}：仅支持 JPG、PNG 照片`); continue; }
      if (f.size > MAX_EVIDENCE_BYTES) { refused.push(`${f.name}：超过 5MB`); continue; }
      try {
        const e = await dispatch.uploadEvidence({
          requestId: requestId(), parent: name, contentType: f.type, content: new Uint8Array(await f.arrayBuffer()),
          fileName: f.name,
        });
        const a = e.attachment!;
        list.push({
          kind: `ATTACHMENT_KIND_${AttachmentKind[a.kind]}`, contentType: a.contentType, sizeBytes: String(a.sizeBytes),
          sha256: a.sha256, storageUri: a.storageUri, fileName: e.fileName || f.name,
        });
      } catch (err) {
        refused.push(`${f.name}：${err instanceof ConnectError ? err.rawMessage : String(err)}`);
      }
    }
    evidence.set(name, list);
    if (refused.length) errors.set(name, `证据上传失败 ${refused.join("；")}`); else errors.delete(name);
    const form = root.querySelector<HTMLFormElement>(`form[data-report="${CSS.escape(name)}"]`);
    const ul = form?.querySelector("ul.evidence") ?? form?.querySelector("input[type=file]")?.parentElement
      ?.insertAdjacentElement("afterend", document.createElement("ul"));
    if (ul) {
      ul.className = "evidence";
      ul.innerHTML = list.map((f) => `<li data-uri="${escapeHtml(f.storageUri)}">${escapeHtml(f.fileName)} · 已上传 ${Math.ceil(Number(f.sizeBytes) / 1024)}KB</li>`).join("");
    }
    const error = form?.closest("article")?.querySelector(".error");
    if (error) error.textContent = errors.get(name) ?? "";
  }

  root.addEventListener("click", (ev) => {
    const target = ev.target as HTMLElement;
    const card = target.closest<HTMLElement>("article.assignment");
    const btn = target.closest<HTMLButtonElement>("button[data-act]");
    if (card && btn) {
      const name = card.dataset.name!;
      const what = btn.dataset.act!;
      if (what === "decline") { declining.add(name); showJobs(); return; }
      if (what === "keep") { declining.delete(name); showJobs(); return; }
      btn.disabled = true;
      if (what === "accept") void act(name, "accept", {});
      else void act(name, "advance", { state: `ASSIGNMENT_STATE_${what}` });
      return;
    }
    const status = target.closest<HTMLButtonElement>("#statuses button[data-status]");
    if (status) {
      if (status.dataset.status === "EMERGENCY") { confirmEmergency = true; showUnit(); return; }
      void setStatus(status.dataset.status!);
      return;
    }
    if (target.id === "emergency-yes") { confirmEmergency = false; void setStatus("EMERGENCY"); return; }
    if (target.id === "emergency-no") { confirmEmergency = false; showUnit(); }
  });
  root.addEventListener("change", (ev) => {
    const input = ev.target as HTMLInputElement;
    const form = input.closest<HTMLFormElement>("form[data-report]");
    if (form && input.type === "file" && input.files?.length) void addEvidence(form.dataset.report!, input.files);
  });
  root.addEventListener("submit", (ev) => {
    const form = ev.target as HTMLFormElement;
    ev.preventDefault();
    (document.activeElement as HTMLElement | null)?.blur();
    const data = new FormData(form);
    if (form.dataset.decline) {
      const name = form.dataset.decline;
      declining.delete(name);
      void act(name, "decline", { reason: String(data.get("reason") ?? "").trim() });
    } else if (form.dataset.report) {
      const name = form.dataset.report;
      const files = (evidence.get(name) ?? []).map(({ fileName: _, ...a }) => a);
      void act(name, "reportBack", {
        outcome: `OUTCOME_${data.get("outcome")}`, notes: String(data.get("notes") ?? "").trim(), evidence: files,
      }).then(() => { if (!errors.has(name)) evidence.delete(name); });
    }
  });

  loadIncidentTypes().then(() => { if (!stopped && unit) showJobs(); }).catch(() => {
    // The offers show the type codes instead: nothing an officer must act on.
  });
  findUnit().then((found) => {
    if (stopped) return;
    if (!found) {
      root.innerHTML = `<main class="message"><h1>未找到本人所在警组</h1><p>令牌中的警号不在任何警组的民警名单中。</p><p><a href="#/logout">换一个令牌</a></p></main>`;
      return;
    }
    unit = found;
    layout(found);
    showUnit(); showLink(); showPosition(); showJobs();
    live = new Live<Assignment>({
      label: "派单",
      open: (_after, signal, onHeader) => dispatch.watchAssignments({ unit: found.name }, { signal, onHeader }),
      onReset: () => { for (const [name, j] of jobs) if (ACTIVE_STATES.has(j.state)) jobs.delete(name); showJobs(); },
      onMessage: (a) => { keep(fromStream(a)); void refreshUnit(); return 0n; },
      onState: (state, detail) => { link = { state, detail }; showLink(); },
    }).start();
    if ("geolocation" in navigator) {
      watchId = navigator.geolocation.watchPosition((pos) => void sendPosition(pos), (err) => {
        position.error = err.code === err.PERMISSION_DENIED ? "未允许定位" : "无法定位";
        showPosition();
      }, { enableHighAccuracy: true, maximumAge: 10_000 });
    } else {
      position.error = "此浏览器不支持定位";
    }
    // Offers count down; the unit's status follows its cases.
    timers.push(window.setInterval(() => { if ([...jobs.values()].some((j) => j.state === "OFFERED")) showJobs(); }, 1000));
    timers.push(window.setInterval(() => void refreshUnit(), 30_000));
  }).catch((err) => {
    root.innerHTML = `<main class="message"><h1>无法打开民警手机</h1><p class="error">${escapeHtml(err instanceof Error ? err.message : String(err))}</p></main>`;
  });

  // Read by the browser tests (and handy from the console): what the phone shows now.
  (window as unknown as Record<string, unknown>).smart110Phone = {
    unit: () => unit?.name ?? null,
    unitStatus: () => unit?.status ?? null,
    jobs: () => [...jobs.values()].map((j) => ({ name: j.name, state: j.state, caseName: j.caseName })),
    positionsSent: () => position.sent,
    link: () => ({ ...link }),
  };

  return () => {
    stopped = true;
    live?.stop();
    if (watchId !== null) navigator.geolocation.clearWatch(watchId);
    timers.forEach((t) => window.clearInterval(t));
    delete (window as unknown as Record<string, unknown>).smart110Phone;
  };
}

export const phone: Page = {
  path: "/phone",
  title: "民警手机",
  // The unit's own officers (services/dispatch/policy.py CREW acts for them too, from the boards).
  roles: ["officer"],
  mount,
};
