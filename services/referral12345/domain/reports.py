"""110 reports as referral reads them (and files them, 一键转接): which need a work order, on what
terms, and the places intake locates."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.runtime import labels

from .. import rules
from .departments import infer_matter


@dataclass(frozen=True)
class Place:
    """A police station with jurisdiction, as intake locates it (for 先期处置 and the order's district)."""

    station_id: str
    station_name: str
    district: str


@dataclass(frozen=True)
class PoliceReport:
    """A 110 report as intake announces (or files) it: what referral reads of it."""

    name: str
    status: str  # the full intake status name, e.g. REPORT_STATUS_CLASSIFIED
    category: str = ""  # POLICE, NON_POLICE, ... ("" unclassified)
    incident_type: str = ""
    priority: int = 0
    channel: str = ""  # PHONE, HOTLINE_12345, ...
    merged_into: str = ""
    description: str = ""
    lon: float | None = None
    lat: float | None = None
    accuracy_m: float = 0.0
    address_text: str = ""
    station_id: str = ""
    attachments: tuple[dict, ...] = ()
    receive_time: datetime | None = None


@dataclass(frozen=True)
class CitizenContact:
    """The caller of a 110 report, for the work order it becomes: 12345's follow-up (回访) and
    repeat-caller detection. Intake's events carry no caller data; referral reads it with
    GetCallerContact (intake records the read) only for a report it refers."""

    phone: str = ""
    name: str = ""


# The intake.ReportUpdated actions after which a report may need an order it did not have: corrected
# into a non-police (or joint-rescue) type, or un-merged from the incident it was taken as a repeat of.
REFER_ON_UPDATE = ("CORRECTED", "UNMERGED")


def needs_order(report: PoliceReport) -> bool:
    """A non-police report, or a police one of a type that needs city departments too (联动抢险)."""
    return report.category == "NON_POLICE" or (report.category == "POLICE"
                                               and report.incident_type in rules.LINKAGE)


def to_refer(report: PoliceReport) -> bool:
    """Whether a reported 110 report is one to refer: it needs an order and is one of its own (not merged
    into another)."""
    return needs_order(report) and not report.merged_into


def to_refer_after(action: str, report: PoliceReport) -> bool:
    """Whether a report updated by `action` is one to refer now (once, since an order is unique per report)."""
    return action in REFER_ON_UPDATE and to_refer(report)


@dataclass(frozen=True)
class Referral:
    """How a 110 report becomes a work order: its matter, why, how urgent, and the joint rescue if any."""

    matter_code: str
    why: str
    urgency: int
    linkage: rules.LinkageRule | None = None


def referral_of(report: PoliceReport, known: set[str]) -> Referral:
    """The terms of the order a report that is referred gets (see `referable`)."""
    linkage = rules.LINKAGE.get(report.incident_type) if report.category == "POLICE" else None
    if linkage is not None:
        return Referral(linkage.lead_matter, f"警情类型“{labels.incident_type_label(report.incident_type)}”需城市部门联动抢险",
                        linkage.urgency,
                        linkage)
    matter, why = infer_matter(report.incident_type, report.description, known)
    return Referral(matter, why, report.priority if 1 <= report.priority <= 4 else 4)


def referable(report: PoliceReport) -> bool:
    """A report that gets an order: one that needs it, of its own, and not from 12345 itself."""
    return needs_order(report) and not report.merged_into and report.channel != "HOTLINE_12345"


def referred_order_fields(report: PoliceReport, terms: Referral, place: Place | None,
                          contact: CitizenContact | None = None) -> dict:
    """The fields of the order a referred report becomes (`contact`: its caller, read from intake)."""
    return dict(
        source="REPORT_110", report=report.name, matter_code=terms.matter_code, description=report.description,
        urgency=terms.urgency, lon=report.lon, lat=report.lat, accuracy_m=report.accuracy_m,
        address_text=report.address_text, district=place.district if place else "", station_id=report.station_id,
        citizen_phone=contact.phone if contact else "", citizen_name=contact.name if contact else "",
        category=rules.EMERGENCY_CATEGORY if terms.linkage else "", joint_rescue=terms.linkage is not None,
        attachments=list(report.attachments), request_time=report.receive_time,
    )


# What intake's actions on a transferred report mean for the citizen, in the order's timeline; an
# action in PROGRESS_ACTIONS is news even when the report's status stays (an officer on scene).
PROGRESS_LABELS = {
    "REPORTED": "110已接报", "CASE_OPENED": "已生成处警单，正在派警", "HANDED_OFF": "民警已接单",
    "ON_SCENE": "民警已到达现场", "CLOSED": "110警情已办结", "CORRECTED": "接警员更正了分类",
    "MERGED": "并入同一警情处置", "UNMERGED": "撤销合并，单独处置",
}
PROGRESS_ACTIONS = ("HANDED_OFF", "ON_SCENE")


def progress_detail(report: PoliceReport, action: str) -> str:
    """The timeline text of a transferred report's progress, in Chinese labels (no codes)."""
    status = labels.report_status_label(report.status)
    what = PROGRESS_LABELS.get(action, "")
    detail = f"110接警单 {report.name}：{what}（{status}）" if what else f"110接警单 {report.name}：{status}"
    if report.category:
        kind = labels.category_label(report.category)
        if report.incident_type:
            kind += f"“{labels.incident_type_label(report.incident_type)}”"
        detail += f"；定为{kind}，{report.priority}级" if report.priority else f"；定为{kind}"
    return detail
