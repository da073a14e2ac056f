"""CAP 1.2 (OASIS Common Alerting Protocol) documents of alerts, for partners' warning systems."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from xml.etree import ElementTree as ET

import h3

from services.runtime.config import env_int, env_str

from .alerts import Alert
from .common import LEVEL_CN

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_SEVERITY = {"RED": "Extreme", "ORANGE": "Severe", "YELLOW": "Moderate", "BLUE": "Minor"}
CAP_URGENCY = {"RED": "Immediate", "ORANGE": "Immediate", "YELLOW": "Expected", "BLUE": "Future"}
CAP_CERTAINTY = {"KEYWORD": "Likely", "VOLUME": "Observed", "ANOMALY": "Possible", "STRENGTH_GAP": "Observed",
                 "EXTERNAL_SIGNAL": "Possible", "OBLIGATION": "Observed", "ENFORCEMENT": "Observed"}
CAP_EVENT = {"KEYWORD": "重大警情关键词预警", "VOLUME": "警情数量预警", "ANOMALY": "警情异常预警",
             "STRENGTH_GAP": "警力缺口预警", "EXTERNAL_SIGNAL": "外部风险预警", "OBLIGATION": "到期事项预警",
             "ENFORCEMENT": "执法预警"}
ATOM_NS = "http://www.w3.org/2005/Atom"
_CAP_ID_UNSAFE = re.compile(r"[\s,<&]")


@dataclass(frozen=True)
class CapSender:
    """Who sends the CAP messages (CAP_SENDER, CAP_SENDER_NAME) and in which time zone their times are
    written (CAP_UTC_OFFSET_MINUTES, China Standard Time by default)."""

    address: str = "alerts@smart110.gov.cn"
    name: str = "江城市公安局110指挥中心"
    utc_offset_minutes: int = 480

    @classmethod
    def from_env(cls) -> "CapSender":
        offset = env_int("CAP_UTC_OFFSET_MINUTES", 480)
        if not -720 <= offset <= 840:
            raise SystemExit(f"configuration error: CAP_UTC_OFFSET_MINUTES={offset} is not a UTC offset")
        sender = cls(env_str("CAP_SENDER", cls.address), env_str("CAP_SENDER_NAME", cls.name), offset)
        if _CAP_ID_UNSAFE.search(sender.address) or not sender.address:
            raise SystemExit("configuration error: CAP_SENDER must be one word without spaces, commas, < or &")
        return sender


DEFAULT_SENDER = CapSender()


def cap_time(value: datetime, offset_minutes: int = 480) -> str:
    """CAP times: no fractions, an explicit offset, never "Z"; UTC itself is written "-00:00" (CAP 1.2,
    3.3.2)."""
    local = value.astimezone(timezone(timedelta(minutes=offset_minutes))).replace(microsecond=0)
    if offset_minutes == 0:
        return local.strftime("%Y-%m-%dT%H:%M:%S-00:00")
    sign = "+" if offset_minutes > 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{hours:02d}:{minutes:02d}"


@dataclass
class CapInput:
    identifier: str
    kind: str
    level: str
    state: str
    sent: datetime
    summary: str
    suggested_action: str
    area_desc: str
    station_id: str
    area_kind: str
    area_id: str
    center: tuple[float, float] | None  # lon, lat
    rule: str
    count: int
    # (identifier, sent) of the earlier messages this one supersedes.
    references: list[tuple[str, datetime]] = field(default_factory=list)
    expires: datetime | None = None


def cap_xml(a: CapInput, sender: CapSender = DEFAULT_SENDER) -> str:
    return ET.tostring(cap_element(a, sender), encoding="unicode", xml_declaration=False)


def cap_element(a: CapInput, sender: CapSender = DEFAULT_SENDER) -> ET.Element:
    ET.register_namespace("", CAP_NS)

    def sub(parent, tag, text=None):
        el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
        if text is not None:
            el.text = text
        return el

    root = ET.Element(f"{{{CAP_NS}}}alert")
    sub(root, "identifier", _CAP_ID_UNSAFE.sub("_", a.identifier))
    sub(root, "sender", sender.address)
    sub(root, "sent", cap_time(a.sent, sender.utc_offset_minutes))
    sub(root, "status", "Actual")
    sub(root, "msgType", "Cancel" if a.state == "RESOLVED" else ("Update" if a.count > 1 else "Alert"))
    sub(root, "scope", "Restricted")
    sub(root, "restriction", "公安内部，仅限指挥中心与属地派出所")
    if a.references:
        # "sender,identifier,sent" of each earlier message this one updates or cancels.
        sub(root, "references", " ".join(f"{sender.address},{_CAP_ID_UNSAFE.sub('_', i)},"
                                         f"{cap_time(t, sender.utc_offset_minutes)}" for i, t in a.references))
    info = sub(root, "info")
    sub(info, "language", "zh-CN")
    sub(info, "category", "Security")
    sub(info, "event", CAP_EVENT.get(a.kind, "预警"))
    sub(info, "responseType", "AllClear" if a.state == "RESOLVED" else "Monitor")
    sub(info, "urgency", "Past" if a.state == "RESOLVED" else CAP_URGENCY.get(a.level, "Unknown"))
    sub(info, "severity", CAP_SEVERITY.get(a.level, "Unknown"))
    sub(info, "certainty", CAP_CERTAINTY.get(a.kind, "Unknown"))
    if a.expires is not None:
        sub(info, "expires", cap_time(a.expires, sender.utc_offset_minutes))
    sub(info, "senderName", sender.name)
    sub(info, "headline", f"{LEVEL_CN.get(a.level, '')}预警：{a.summary}"[:160])
    sub(info, "description", a.summary)
    if a.suggested_action:
        sub(info, "instruction", a.suggested_action)
    for name, value in (("level", a.level), ("rule", a.rule), ("count", str(a.count))):
        p = sub(info, "parameter")
        sub(p, "valueName", name)
        sub(p, "value", value)
    area = sub(info, "area")
    sub(area, "areaDesc", a.area_desc or a.station_id or "江城市")
    if a.area_kind == "H3" and a.area_id and h3.is_valid_cell(a.area_id):
        # The cell itself: its hexagon as a closed ring of "lat,lon" pairs (CAP's polygon).
        ring = list(h3.cell_to_boundary(a.area_id))
        sub(area, "polygon", " ".join(f"{lat:.6f},{lon:.6f}" for lat, lon in ring + ring[:1]))
    if a.center is not None:
        lon, lat = a.center
        radius_km = {"H3": 0.5, "GRID": 1.0}.get(a.area_kind, 3.0)
        sub(area, "circle", f"{lat:.6f},{lon:.6f} {radius_km}")
    for name, value in dict.fromkeys((("STATION", a.station_id), (a.area_kind or "AREA", a.area_id))):
        if value:
            g = sub(area, "geocode")
            sub(g, "valueName", name)
            sub(g, "value", value)
    return root


def cap_identifier(alert: Alert, count: int, cancel: bool = False) -> str:
    return f"smart110-{alert.name.replace('/', '-')}-{count}" + ("-cancel" if cancel else "")


def cap_input(alert: Alert) -> CapInput:
    """What a CAP document says of an alert; a repeat or a resolution is a new message of its own.

    The first match is an Alert; each repeat an Update referencing the first message; the
    resolution a Cancel referencing the first and the latest."""
    resolved = alert.state == "RESOLVED"
    references: list[tuple[str, datetime]] = []
    if alert.count > 1 or resolved:
        references.append((cap_identifier(alert, 1), alert.first_seen_time))
    if resolved and alert.count > 1:
        references.append((cap_identifier(alert, alert.count), alert.last_seen_time))
    return CapInput(
        identifier=cap_identifier(alert, alert.count, cancel=resolved), references=references,
        kind=alert.kind, level=alert.level, state=alert.state, sent=alert.update_time, summary=alert.summary,
        suggested_action=alert.suggested_action, area_desc=alert.area.name, station_id=alert.area.station_id,
        area_kind=alert.area.kind, area_id=alert.area.id, center=alert.area.center, rule=f"rules/{alert.rule_id}",
        count=alert.count,
    )


def cap_feed(alerts: list[Alert], *, sender: CapSender, feed_id: str, title: str, updated: datetime,
             link_of) -> str:
    """An ATOM feed of the alerts' CAP messages, newest first (for CAP aggregators); `link_of(alert)`
    is the URL path of the alert's CAP message."""
    ET.register_namespace("", ATOM_NS)
    ET.register_namespace("cap", CAP_NS)

    def sub(parent, tag, text=None, **attrs):
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    offset = sender.utc_offset_minutes
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "id", feed_id)
    sub(feed, "title", title)
    sub(feed, "updated", cap_time(updated, offset))
    author = sub(feed, "author")
    sub(author, "name", sender.name)
    for alert in alerts:
        cap = cap_input(alert)
        entry = sub(feed, "entry")
        sub(entry, "id", cap.identifier)
        sub(entry, "title", f"{LEVEL_CN.get(cap.level, '')}预警：{cap.summary}"[:160])
        sub(entry, "updated", cap_time(cap.sent, offset))
        sub(entry, "summary", cap.summary)
        sub(entry, "link", href=link_of(alert), rel="alternate", type="application/cap+xml")
        content = sub(entry, "content", type="text/xml")
        content.append(cap_element(cap, sender))
    return ET.tostring(feed, encoding="unicode", xml_declaration=False)
