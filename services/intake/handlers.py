"""Intake use cases, one function each, state and event in one transaction."""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta


from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.runtime.outbox import Outbox

from . import handling, rules
from .domain import CATEGORY_LABELS, Classification, JurisdictionIndex, Report, TimelineEntry, classify
from .gazetteer import Gazetteer
from .knowledge import KnowledgeIndex
from .mapping import incident_reported_pb, report_event_pb, report_updated_pb
from .store import ReportRepository

STATUS_BY_CATEGORY = {
    "POLICE": "CLASSIFIED",
    "NON_POLICE": "CLASSIFIED",
    "CONSULTATION": "CLASSIFIED",
    "INVALID": "CLOSED",
}


def new_report_id(now: datetime) -> str:
    # Sortable by day for operators reading ids aloud; unique by the random tail.
    return f"{now:%Y%m%d}-{uuid.uuid4().hex[:12]}"


def _stamp(actor: AuthContext, now: datetime) -> dict:
    return dict(actor=actor.subject, roles=sorted(actor.roles), time=now)


def report_incident(conn, *, outbox: Outbox, index: JurisdictionIndex, gazetteer: Gazetteer, fields: dict,
                    actor: AuthContext, now: datetime, knowledge: KnowledgeIndex | None = None) -> Report:
    """Records a report from any channel. The fields were validated by the caller.

    Steps: new report → locate (point, else gazetteer) → classify → [duplicates,
    consultation] → store → publish.
    """
    stamp = _stamp(actor, now)
    report = new_report(fields, now)
    report.timeline.append(TimelineEntry("REPORTED", detail=f"渠道 {fields['channel']}", **stamp))
    if report.silent:
        report.timeline.append(TimelineEntry(
            "FLAGGED", detail="无声报警：报警人无法通话，仅限文字联系，禁止语音回拨", **stamp))
    locate(report, index, gazetteer, stamp)
    classify_report(conn, report, stamp)
    handling.before_store(conn, report, index=knowledge, actor=actor, now=now)  # duplicates, 即问即复
    ReportRepository(conn).add(report)
    handling.after_store(conn, report, outbox=outbox, actor=actor, now=now)
    outbox.publish(conn, "intake.IncidentReported", report.name, incident_reported_pb(report))
    return report


def new_report(fields: dict, now: datetime) -> Report:
    return Report(
        id=new_report_id(now),
        channel=fields["channel"],
        caller_phone=fields["caller_phone"],
        caller_name=fields["caller_name"],
        lon=fields["lon"],
        lat=fields["lat"],
        accuracy_m=fields["accuracy_m"],
        location_source=fields["location_source"],
        address_text=fields["address_text"],
        description=fields["description"],
        attachments=fields["attachments"],
        language=fields["language"] or "zh-CN",
        classification=None,
        status="RECEIVED",
        station_id="",
        grid_id="",
        border_case=False,
        merged_into="",
        receive_time=fields["receive_time"] or now,
        answer_time=None,
        classify_time=None,
        hand_off_time=None,
        satisfaction="",
        create_time=now,
        update_time=now,
        timeline=[],
        address_code=fields.get("address_code", ""),
    )


def locate(report: Report, index: JurisdictionIndex, gazetteer: Gazetteer, stamp: dict) -> None:
    """Point → station and grid (就近、属地); a report with only an address goes through the gazetteer."""
    if report.lon is None and (report.address_text or report.address_code):
        match = gazetteer.match(code=report.address_code, text=report.address_text)
        report.address_match = match
        if match.method == "STREET":
            a = match.address
            report.station_id, report.grid_id, report.border_case = a.station_id, "", False
            report.timeline.append(TimelineEntry("GEOCODED", detail=(
                f"地址“{report.address_text}”未匹配到门牌，按所述街道（{a.street}）定位至 {a.station_id} 辖区，"
                f"最接近 {a.full_address}（置信度 {match.confidence:.2f}），待接警员确认具体位置"), **stamp))
            report.timeline.append(TimelineEntry("ROUTED", detail=f"属地 {a.station_id}（按街道）", **stamp))
            return
        if match.method != "NO_MATCH":
            a = match.address
            report.lon, report.lat, report.location_source = a.lon, a.lat, "GAZETTEER"
            report.timeline.append(TimelineEntry("GEOCODED", detail=(
                f"标准地址 {a.full_address}（{a.code}），{_METHOD_LABELS[match.method]}，置信度 {match.confidence:.2f}"
            ), **stamp))
        else:
            best = f"，最接近 {match.address.full_address}（置信度 {match.confidence:.2f}）" if match.address else ""
            report.timeline.append(TimelineEntry(
                "GEOCODED", detail=f"地址“{report.address_text or report.address_code}”未能匹配标准地址{best}，"
                                   "待接警员确认位置", **stamp))
    report.station_id = report.grid_id = ""
    report.border_case = False
    if report.lon is None:
        return
    located = index.locate(report.lon, report.lat)
    if located is None:
        return
    report.station_id, report.grid_id, report.border_case = located.station_id, located.grid_id, located.border_case
    where = f"属地 {located.station_name}（{located.station_id}）网格 {located.grid_id}"
    if located.border_case:
        where += f"；边界警情，距辖区 {located.distance_m:.0f} 米，按最近派出所"
    report.timeline.append(TimelineEntry("ROUTED", detail=where, **stamp))


_METHOD_LABELS = {"EXACT_CODE": "地址编码精确匹配", "EXACT_TEXT": "地址文本精确匹配", "FUZZY_TEXT": "地址文本模糊匹配"}


def classify_report(conn, report: Report, stamp: dict) -> None:
    """Category, type and priority from the rule tables, with repeated invalid calls counted."""
    recent = 0
    if report.caller_phone:
        since = report.receive_time - timedelta(minutes=rules.REPEAT_INVALID.window_minutes)
        recent = ReportRepository(conn).recent_invalid_calls(report.caller_phone, since)
    report.classification = classify(report.description, report.channel, at=report.receive_time,
                                     recent_invalid_calls=recent)
    report.classify_time = stamp["time"]
    report.status = STATUS_BY_CATEGORY[report.classification.category]
    report.timeline.append(TimelineEntry("CLASSIFIED", detail=report.classification.reason, **stamp))


# -- corrections by the call-taker (UpdateReport) -------------------------------

# Report fields a call-taker may correct, by update_mask path.
CORRECTABLE = ("classification", "classification.category", "classification.incident_type",
               "classification.priority", "location", "address_text", "address_code")
# A report in these states has left intake; its category can no longer change here.
SETTLED = {"DISPATCHED", "REFERRED", "ANSWERED"}


def update_report(conn, *, outbox: Outbox, index: JurisdictionIndex, gazetteer: Gazetteer, report_id: str,
                  paths: list[str], changes: dict, reason: str, actor: AuthContext, now: datetime) -> Report:
    """Applies a call-taker's field-masked correction, kept in the timeline as CORRECTED (old → new)."""
    repo = ReportRepository(conn)
    report = repo.get_for_update(report_id)
    if report is None:
        raise NotFound(f"reports/{report_id}")
    if report.status == "MERGED":
        raise FailedPrecondition(f"reports/{report_id} is merged into {report.merged_into}; correct the master report",
                                 reason="REPORT_MERGED")
    before = report_event_pb(report)
    stamp = _stamp(actor, now)
    old_c = report.classification
    details: list[str] = []
    wanted = set(paths)
    if "classification" in wanted:
        wanted |= {"classification.category", "classification.incident_type", "classification.priority"}
    new_c = replace(old_c)
    if "classification.category" in wanted:
        new_c.category = changes["category"]
    if "classification.incident_type" in wanted:
        new_c.incident_type = changes["incident_type"]
    if "classification.priority" in wanted:
        new_c.priority = changes["priority"]
    _check_classification(new_c, wanted)
    if new_c.category != old_c.category and report.status in SETTLED:
        raise FailedPrecondition(f"reports/{report_id} is {report.status.lower()}; its category can no longer change",
                                 reason="REPORT_SETTLED")
    for label, attr in (("类别", "category"), ("类型", "incident_type"), ("等级", "priority")):
        old, new = getattr(old_c, attr), getattr(new_c, attr)
        if old != new:
            details.append(f"{label} {_label(attr, old)} → {_label(attr, new)}")
    relocate = False
    if "location" in wanted:
        lon, lat = changes["lon"], changes["lat"]
        if (lon, lat) != (report.lon, report.lat) or changes["accuracy_m"] != report.accuracy_m:
            details.append(f"位置 {_point(report.lon, report.lat)} → {_point(lon, lat)}")
            report.lon, report.lat = lon, lat
            report.accuracy_m = changes["accuracy_m"]
            report.location_source = changes["location_source"] or "CALL_TAKER"
            report.address_match = None
            relocate = True
    for path, label in (("address_text", "地址"), ("address_code", "地址编码")):
        if path in wanted and changes[path] != getattr(report, path):
            details.append(f"{label} “{getattr(report, path)}” → “{changes[path]}”")
            setattr(report, path, changes[path])
            # A point the caller or call-taker gave stands; one found from the old address is found again.
            if "location" not in wanted and report.location_source in ("", "GAZETTEER"):
                report.lon = report.lat = None
                report.location_source = ""
                relocate = True
    if not details:
        return report
    if new_c != old_c:
        new_c.corrected = True
        new_c.reason = f"接警员更正：{reason}（原判：{_rules_reason(report, old_c)}）"
        report.classification = new_c
        if report.status in STATUS_BY_CATEGORY.values() or report.status == "RECEIVED":
            report.status = STATUS_BY_CATEGORY[new_c.category]
    entries = [TimelineEntry("CORRECTED", detail="；".join(details), reason=reason, **stamp)]
    if relocate:
        report.timeline = []
        locate(report, index, gazetteer, stamp)
        entries += report.timeline
    report.update_time = now
    repo.update(report, entries)
    entries += handling.category_corrected(conn, report, old_category=old_c.category, actor=actor, now=now)
    report.timeline = repo.get(report_id).timeline
    outbox.publish(conn, "intake.ReportUpdated", report.name,
                   report_updated_pb(report, "CORRECTED", before=before, new_entries=entries))
    return report


def _rules_reason(report: Report, c: Classification) -> str:
    """Why the rules classified the report as they did (原判), however often it was corrected since.

    The reason of a corrected classification quotes this, not the last correction's reason, so it
    stays the same size after any number of corrections; each correction's words are in the timeline.
    """
    if not c.corrected:
        return c.reason
    return next((e.detail for e in report.timeline if e.action == "CLASSIFIED"), c.reason)


def _check_classification(c: Classification, wanted: set[str]) -> None:
    bad = []
    itype = rules.INCIDENT_TYPES.get(c.incident_type)
    if "classification.incident_type" in wanted and itype is None:
        bad.append(("report.classification.incident_type", "is not a code of the incident taxonomy"))
    elif itype is not None and itype.category != c.category:
        field = ("report.classification.incident_type" if "classification.incident_type" in wanted
                 else "report.classification.category")
        bad.append((field, f"{c.incident_type} is a {itype.category} type, not {c.category}; "
                           "correct category and incident_type together"))
    if not 1 <= c.priority <= 4:
        bad.append(("report.classification.priority", "must be 1 (most urgent) to 4"))
    if bad:
        raise InvalidArgument(bad)


def _label(attr: str, value) -> str:
    if attr == "category":
        return CATEGORY_LABELS.get(value, value)
    if attr == "incident_type":
        t = rules.INCIDENT_TYPES.get(value)
        return f"{t.label}（{value}）" if t else value
    return f"{value}级"


def _point(lon, lat) -> str:
    return "无" if lon is None else f"({lon:.6f}, {lat:.6f})"
