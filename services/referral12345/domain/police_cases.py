"""The police case of an order in 先期处置: while responsibility is unclear the local station acts
first, and dispatch opens a case named by the order (its `report` is "workOrders/{id}"). What
dispatch announces of that case (`PoliceCaseNews`) is kept on the order's timeline, in Chinese, and
its closing resolves the order where the police's outcome settles the citizen's request.
"""
from __future__ import annotations

from dataclasses import dataclass

from services.runtime import labels

# What happened to the case, as the order's timeline action.
OPENED, ACCEPTED, ON_SCENE, REPORTED_BACK = "OPENED", "ACCEPTED", "ON_SCENE", "REPORTED_BACK"
CLOSED, CANCELLED = "CLOSED", "CANCELLED"
TIMELINE_ACTIONS = {OPENED: "POLICE_CASE_OPENED", ACCEPTED: "POLICE_ACCEPTED", ON_SCENE: "POLICE_ON_SCENE",
                    REPORTED_BACK: "POLICE_REPORTED_BACK", CLOSED: "POLICE_CLOSED",
                    CANCELLED: "POLICE_CANCELLED"}
# Outcomes that leave the matter with a city department: the order waits for the 12345 desk's
# assignment (派单) instead of being resolved.
HANDED_ON_OUTCOMES = {"REFERRED"}


def order_id_of(case_report: str) -> str | None:
    """The order a case was opened for: "workOrders/{id}" → id; None for a 110 report's case."""
    prefix = "workOrders/"
    return case_report[len(prefix):] if case_report.startswith(prefix) and len(case_report) > len(prefix) else None


@dataclass(frozen=True)
class PoliceCaseNews:
    """One step of an order's police case, as dispatch's events tell it.

    `what`: OPENED, ACCEPTED, ON_SCENE, REPORTED_BACK, CLOSED or CANCELLED; `unit`: the call sign of
    the unit concerned; `outcome`: dispatch's Outcome name (report-back, closing); `reason`: the
    CancelReason name; `closes`: the step closed the case (the last unit's report-back).
    """

    order_id: str
    case_name: str
    what: str
    station_id: str = ""
    unit: str = ""
    outcome: str = ""
    notes: str = ""
    reason: str = ""
    closes: bool = False

    @property
    def resolves(self) -> bool:
        """The case closed with an outcome that settles the request (not one handed on elsewhere)."""
        closed = self.what == CLOSED or (self.what == REPORTED_BACK and self.closes)
        return closed and self.outcome not in HANDED_ON_OUTCOMES


def _with_notes(text: str, notes: str) -> str:
    return f"{text}（{notes}）" if notes else text


def entries_of(news: PoliceCaseNews) -> list[tuple[str, str]]:
    """(timeline action, detail in Chinese) for the news, in order."""
    outcome = labels.outcome_label(news.outcome)
    if news.what == OPENED:
        return [(TIMELINE_ACTIONS[OPENED], f"属地派出所已生成先期处置警情 {news.case_name}，正在派警")]
    if news.what == ACCEPTED:
        return [(TIMELINE_ACTIONS[ACCEPTED], f"民警已接单：{news.unit}")]
    if news.what == ON_SCENE:
        return [(TIMELINE_ACTIONS[ON_SCENE], f"民警已到场：{news.unit}")]
    if news.what == REPORTED_BACK:
        out = [(TIMELINE_ACTIONS[REPORTED_BACK], _with_notes(f"民警已回告：{news.unit}，{outcome}", news.notes))]
        if news.closes:
            out.append((TIMELINE_ACTIONS[CLOSED], closed_detail(outcome)))
        return out
    if news.what == CLOSED:
        return [(TIMELINE_ACTIONS[CLOSED], _with_notes(closed_detail(outcome), news.notes))]
    if news.what == CANCELLED:
        reason = labels.cancel_reason_label(news.reason) or "指挥员撤销"
        return [(TIMELINE_ACTIONS[CANCELLED],
                 _with_notes(f"警情已撤销：{reason}，工单仍待12345派单至承办单位", news.notes))]
    return []


def closed_detail(outcome_label: str) -> str:
    text = f"警情已办结：{outcome_label}" if outcome_label else "警情已办结"
    if outcome_label == labels.outcome_label("REFERRED"):
        text += "，工单待12345派单至承办单位"
    return text
