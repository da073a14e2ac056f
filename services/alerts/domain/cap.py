"""CAP 1.2 (OASIS Common Alerting Protocol) documents of alerts, for partners' warning systems."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from xml.etree import ElementTree as ET

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
CAP_SENDER = "alerts@smart110.gov.cn"
_CAP_ID_UNSAFE = re.compile(r"[\s,<&]")


def cap_time(value: datetime) -> str:
    """CAP times: no fractions, an explicit offset (never "Z")."""
    return value.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S+00:00")


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
    references: list[str] = field(default_factory=list)
    expires: datetime | None = None


def cap_xml(a: CapInput) -> str:
    ET.register_namespace("", CAP_NS)

    def sub(parent, tag, text=None):
        el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
        if text is not None:
            el.text = text
        return el

    root = ET.Element(f"{{{CAP_NS}}}alert")
    sub(root, "identifier", _CAP_ID_UNSAFE.sub("_", a.identifier))
    sub(root, "sender", CAP_SENDER)
    sub(root, "sent", cap_time(a.sent))
    sub(root, "status", "Actual")
    sub(root, "msgType", "Cancel" if a.state == "RESOLVED" else ("Update" if a.count > 1 else "Alert"))
    sub(root, "scope", "Restricted")
    sub(root, "restriction", "公安内部，仅限指挥中心与属地派出所")
    if a.references:
        sub(root, "references", " ".join(a.references))
    info = sub(root, "info")
    sub(info, "language", "zh-CN")
    sub(info, "category", "Security")
    sub(info, "event", CAP_EVENT.get(a.kind, "预警"))
    sub(info, "responseType", "AllClear" if a.state == "RESOLVED" else "Monitor")
    sub(info, "urgency", "Past" if a.state == "RESOLVED" else CAP_URGENCY.get(a.level, "Unknown"))
    sub(info, "severity", CAP_SEVERITY.get(a.level, "Unknown"))
    sub(info, "certainty", CAP_CERTAINTY.get(a.kind, "Unknown"))
    if a.expires is not None:
        sub(info, "expires", cap_time(a.expires))
    sub(info, "senderName", "江城市公安局110指挥中心")
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
    if a.center is not None:
        lon, lat = a.center
        radius_km = {"H3": 0.5, "GRID": 1.0}.get(a.area_kind, 3.0)
        sub(area, "circle", f"{lat:.6f},{lon:.6f} {radius_km}")
    for name, value in (("STATION", a.station_id), (a.area_kind or "AREA", a.area_id)):
        if value:
            g = sub(area, "geocode")
            sub(g, "valueName", name)
            sub(g, "value", value)
    return ET.tostring(root, encoding="unicode", xml_declaration=False)


def cap_input(alert: Alert) -> CapInput:
    """What a CAP document says of an alert; a repeat or a resolution is a new message of its own."""
    return CapInput(
        identifier=f"smart110-{alert.name.replace('/', '-')}-{alert.count}",
        kind=alert.kind, level=alert.level, state=alert.state, sent=alert.update_time, summary=alert.summary,
        suggested_action=alert.suggested_action, area_desc=alert.area.name, station_id=alert.area.station_id,
        area_kind=alert.area.kind, area_id=alert.area.id, center=alert.area.center, rule=f"rules/{alert.rule_id}",
        count=alert.count,
    )
