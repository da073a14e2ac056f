// What the big screen shows, in Chinese: names and colours of statuses, priorities and levels.
import { CaseLevel, CaseStatus, UnitKind, UnitStatus } from "../../gen/smart110/dispatch/v1/dispatch_service_pb";
import { AlertLevel, AlertState } from "../../gen/smart110/alerts/v1/alerts_service_pb";

export const PRIORITY_COLOURS: Record<number, string> = { 1: "#ff3b30", 2: "#ff9f0a", 3: "#ffd60a", 4: "#32ade6" };
export const PRIORITY_NAMES: Record<number, string> = { 1: "一级", 2: "二级", 3: "三级", 4: "四级" };

export const CASE_STATUS_NAMES: Record<number, string> = {
  [CaseStatus.PENDING]: "待派警",
  [CaseStatus.DISPATCHED]: "已派警",
  [CaseStatus.ON_SCENE]: "已到场",
  [CaseStatus.CLEARED]: "处置完毕",
  [CaseStatus.REPORTED_BACK]: "已反馈",
  [CaseStatus.CLOSED]: "已结案",
  [CaseStatus.CANCELLED]: "已撤销",
};
// The ring around an incident's dot says where it stands.
export const CASE_STATUS_RINGS: Record<number, string> = {
  [CaseStatus.PENDING]: "#ffffff",
  [CaseStatus.DISPATCHED]: "#64d2ff",
  [CaseStatus.ON_SCENE]: "#30d158",
  [CaseStatus.CLEARED]: "#8e8e93",
};
/** Cases on the screen: pending to cleared (the situation view's "active"). */
export function caseActive(status: CaseStatus): boolean {
  return status >= CaseStatus.PENDING && status <= CaseStatus.CLEARED;
}

export const CASE_LEVEL_NAMES: Record<number, string> = {
  [CaseLevel.STATION]: "所级", [CaseLevel.COUNTY]: "分局级", [CaseLevel.CITY]: "市级", [CaseLevel.PROVINCE]: "省级",
};

export const UNIT_STATUS_NAMES: Record<number, string> = {
  [UnitStatus.OFF_DUTY]: "下勤",
  [UnitStatus.AVAILABLE]: "空闲",
  [UnitStatus.OFFERED]: "待接单",
  [UnitStatus.EN_ROUTE]: "出警途中",
  [UnitStatus.ON_SCENE]: "现场处置",
  [UnitStatus.BUSY]: "忙碌",
  [UnitStatus.AT_STATION]: "在所",
  [UnitStatus.OUT_OF_SERVICE]: "暂停勤务",
  [UnitStatus.TRANSPORTING]: "押送/送医",
  [UnitStatus.EMERGENCY]: "紧急求助",
};
export const UNIT_STATUS_COLOURS: Record<number, string> = {
  [UnitStatus.AVAILABLE]: "#30d158",
  [UnitStatus.AT_STATION]: "#66d4cf",
  [UnitStatus.OFFERED]: "#ffd60a",
  [UnitStatus.EN_ROUTE]: "#ffd60a",
  [UnitStatus.ON_SCENE]: "#ff9f0a",
  [UnitStatus.BUSY]: "#ff9f0a",
  [UnitStatus.TRANSPORTING]: "#bf5af2",
  [UnitStatus.OUT_OF_SERVICE]: "#8e8e93",
  [UnitStatus.EMERGENCY]: "#ff3b30",
};
export const STALE_COLOUR = "#55595f";
/** Units that can take a case now (the cold map counts these). */
export function unitAvailable(status: UnitStatus): boolean {
  return status === UnitStatus.AVAILABLE || status === UnitStatus.AT_STATION;
}

export const ALERT_LEVEL_NAMES: Record<number, string> = {
  [AlertLevel.BLUE]: "蓝色", [AlertLevel.YELLOW]: "黄色", [AlertLevel.ORANGE]: "橙色", [AlertLevel.RED]: "红色",
};
export const ALERT_LEVEL_COLOURS: Record<number, string> = {
  [AlertLevel.BLUE]: "#0a84ff", [AlertLevel.YELLOW]: "#ffd60a", [AlertLevel.ORANGE]: "#ff9f0a", [AlertLevel.RED]: "#ff3b30",
};
export const ALERT_STATE_NAMES: Record<number, string> = {
  [AlertState.FIRING]: "告警中", [AlertState.ACKNOWLEDGED]: "已确认", [AlertState.RESOLVED]: "已解除",
  [AlertState.SILENCED]: "已静默",
};
/** Roles that may acknowledge an alert (services/alerts/policy.py RESPONDERS, less the service). */
export const ALERT_RESPONDERS = ["officer", "station_chief", "commander", "dispatcher", "call_taker", "supervisor"];

export const DISTRICT_COLOURS = ["#1f3b57", "#24473a", "#4a3a22", "#3d2a4a", "#4a2a2f", "#2a3f4a", "#3a4a2a", "#2f2f4a"];

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

export function clock(ms: number): string {
  if (!ms) return "";
  const d = new Date(ms);
  return d.toLocaleTimeString("zh-CN", { hour12: false });
}

/** Travel the dispatch service assumes (services/dispatch/capabilities.json `travel`): metres per
 * second by unit kind over a road factor. The 1-3-5 minute circles use the same figures. */
export const ROAD_FACTOR = 1.4;
export const DEFAULT_SPEED_MPS = 6.0;
export const SPEED_MPS: Partial<Record<UnitKind, number>> = {
  [UnitKind.PATROL_CAR]: 8.3, [UnitKind.FOOT_PATROL]: 1.4, [UnitKind.COMMUNITY_OFFICER]: 4.0,
  [UnitKind.CRIMINAL_INVESTIGATION]: 8.3, [UnitKind.TRAFFIC]: 8.3, [UnitKind.SPECIAL_POLICE]: 9.0, [UnitKind.DRONE]: 12.0,
};
/** The response circles' minutes (1-3-5分钟响应圈). */
export const CIRCLE_MINUTES = [5, 3, 1];
/** Straight-line metres a unit of this kind covers in `minutes`. */
export function reachMetres(kind: UnitKind, minutes: number): number {
  return (minutes * 60 * (SPEED_MPS[kind] ?? DEFAULT_SPEED_MPS)) / ROAD_FACTOR;
}

export function percent(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}
