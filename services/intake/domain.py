"""Intake domain (接警): reports, their validation, jurisdiction lookup and
classification. Plain Python; knows nothing of gRPC or SQL."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime

from shapely import STRtree
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from services.runtime.audit import TimelineEntry

CHANNELS = {
    "PHONE", "SMS", "WECHAT", "WEIBO", "QQ", "APP", "MINI_PROGRAM", "KIOSK", "VIDEO",
    "SILENT_ALARM", "HOTLINE_12345", "PATROL", "WALK_IN", "TIP_OFF", "MAILBOX",
}
CATEGORIES = {"POLICE", "NON_POLICE", "CONSULTATION", "INVALID"}
ATTACHMENT_LIMITS = {  # kind -> (allowed MIME prefix, max bytes)
    "IMAGE": ("image/", 20 * 1024 * 1024),
    "VIDEO": ("video/", 500 * 1024 * 1024),
    "VOICE": ("audio/", 50 * 1024 * 1024),
    "DOCUMENT": ("application/pdf", 20 * 1024 * 1024),
}
MAX_DESCRIPTION_CHARS = 2000
MAX_ADDRESS_CHARS = 300
MOBILE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# A point closer than this to a jurisdiction boundary is flagged as a border case.
BORDER_TOLERANCE_M = 30.0
METRES_PER_DEGREE_LAT = 111_320.0


@dataclass
class Attachment:
    kind: str
    content_type: str
    size_bytes: int
    sha256: str
    storage_uri: str


@dataclass
class Classification:
    category: str
    incident_type: str
    priority: int
    reason: str
    rule_ids: list[str] = field(default_factory=list)
    corrected: bool = False


@dataclass
class Report:
    id: str
    channel: str
    caller_phone: str
    caller_name: str
    lon: float | None
    lat: float | None
    accuracy_m: float
    location_source: str
    address_text: str
    description: str
    attachments: list[Attachment]
    language: str
    classification: Classification | None
    status: str
    station_id: str
    grid_id: str
    border_case: bool
    merged_into: str
    receive_time: datetime
    answer_time: datetime | None
    classify_time: datetime | None
    hand_off_time: datetime | None
    satisfaction: str
    create_time: datetime
    update_time: datetime
    timeline: list[TimelineEntry] = field(default_factory=list)
    # What happened after intake (see handling.py); filled when read back.
    consultation: object | None = None
    duplicates: list[str] = field(default_factory=list)
    merge_reason: str = ""
    dispatch_case: str = ""
    work_order: str = ""
    satisfaction_comment: str = ""

    @property
    def name(self) -> str:
        return f"reports/{self.id}"


# -- validation ---------------------------------------------------------------

def validate_new_report(r: dict, v) -> None:
    """Checks a new report given as plain values; records violations on `v`."""
    v.check(r["channel"] in CHANNELS, "report.channel", "is required: one of " + ", ".join(sorted(CHANNELS)))
    phone = r["caller_phone"]
    if phone:
        v.check(bool(MOBILE.match(phone) or LANDLINE.match(phone)), "report.caller.phone_number",
                "must be a mainland mobile number (11 digits, 1[3-9]…) or a landline like 027-85551234")
    v.check(len(r["caller_name"]) <= 50, "report.caller.name", "must be at most 50 characters")
    has_point = r["lon"] is not None
    if has_point:
        v.check(-180.0 <= r["lon"] <= 180.0 and math.isfinite(r["lon"]), "report.location.point.longitude",
                "must be between -180 and 180")
        v.check(-90.0 <= r["lat"] <= 90.0 and math.isfinite(r["lat"]), "report.location.point.latitude",
                "must be between -90 and 90")
        v.check(r["accuracy_m"] >= 0, "report.location.accuracy_m", "must not be negative")
    v.check(has_point or bool(r["address_text"].strip()), "report.location",
            "a location point or report.address_text is required to route the report")
    v.check(len(r["address_text"]) <= MAX_ADDRESS_CHARS, "report.address_text",
            f"must be at most {MAX_ADDRESS_CHARS} characters")
    description = r["description"]
    v.check(bool(description.strip()) or bool(r["attachments"]), "report.description",
            "is required unless the report carries an attachment")
    v.check(len(description) <= MAX_DESCRIPTION_CHARS, "report.description",
            f"must be at most {MAX_DESCRIPTION_CHARS} characters")
    for i, a in enumerate(r["attachments"]):
        path = f"report.attachments[{i}]"
        limits = ATTACHMENT_LIMITS.get(a.kind)
        if not v.check(limits is not None, f"{path}.kind", "must be IMAGE, VIDEO, VOICE or DOCUMENT"):
            continue
        prefix, max_bytes = limits
        v.check(a.content_type.startswith(prefix), f"{path}.content_type", f"must be {prefix}… for {a.kind}")
        v.check(0 < a.size_bytes <= max_bytes, f"{path}.size_bytes",
                f"must be between 1 and {max_bytes} bytes for {a.kind}")
        v.check(bool(SHA256.match(a.sha256)), f"{path}.sha256", "must be 64 lowercase hex digits")
        v.check(bool(a.storage_uri), f"{path}.storage_uri", "is required")


# -- jurisdiction (就近、属地) -------------------------------------------------

@dataclass(frozen=True)
class StationArea:
    station_id: str
    name: str
    district: str
    hq_lon: float
    hq_lat: float
    boundary: BaseGeometry


@dataclass(frozen=True)
class GridArea:
    grid_id: str
    station_id: str
    name: str
    arrival_target_seconds: int
    boundary: BaseGeometry


@dataclass(frozen=True)
class Located:
    station_id: str
    station_name: str
    district: str
    grid_id: str
    border_case: bool
    distance_m: float


def geometry_from_geojson(doc: dict) -> BaseGeometry:
    return shape(doc)


class JurisdictionIndex:
    """Point → station and grid, through an R-tree over the polygons."""

    def __init__(self, stations: list[StationArea], grids: list[GridArea]):
        self.stations = stations
        self.grids = grids
        self._station_tree = STRtree([s.boundary for s in stations])
        self._grid_tree = STRtree([g.boundary for g in grids])
        self._station_by_id = {s.station_id: s for s in stations}

    def __len__(self) -> int:
        return len(self.stations)

    @staticmethod
    def _metres(lat: float, degrees: float) -> float:
        # Equirectangular approximation, good to well under 1% at city scale.
        return degrees * METRES_PER_DEGREE_LAT * max(math.cos(math.radians(lat)), 0.2)

    def locate(self, lon: float, lat: float) -> Located | None:
        if not self.stations:
            return None
        p = Point(lon, lat)
        hits = self._station_tree.query(p, predicate="intersects")
        if len(hits):
            station = self.stations[int(hits[0])]
            distance = 0.0
            edge = self._metres(lat, station.boundary.exterior.distance(p))
            border = len(hits) > 1 or edge < BORDER_TOLERANCE_M
        else:
            idx = int(self._station_tree.nearest(p))
            station = self.stations[idx]
            distance = self._metres(lat, station.boundary.distance(p))
            border = True
        grid_id = ""
        for gi in self._grid_tree.query(p, predicate="intersects"):
            g = self.grids[int(gi)]
            if g.station_id == station.station_id:
                grid_id = g.grid_id
                break
        if not grid_id:
            candidates = [g for g in self.grids if g.station_id == station.station_id]
            if candidates:
                grid_id = min(candidates, key=lambda g: g.boundary.distance(p)).grid_id
        return Located(station.station_id, station.name, station.district, grid_id, border, distance)


# -- classification (the first rules; the full taxonomy is data) -------------

@dataclass(frozen=True)
class Rule:
    rule_id: str
    keywords: tuple[str, ...]
    category: str
    incident_type: str
    priority: int


RULES: tuple[Rule, ...] = (
    Rule("kw-homicide", ("杀人", "捅死", "砍死"), "POLICE", "HOMICIDE", 1),
    Rule("kw-kidnap", ("绑架", "绑走"), "POLICE", "KIDNAPPING", 1),
    Rule("kw-robbery", ("抢劫", "抢包", "持刀抢"), "POLICE", "ROBBERY", 1),
    Rule("kw-fire", ("着火", "火灾", "失火"), "POLICE", "FIRE", 1),
    Rule("kw-gas", ("燃气泄漏", "煤气泄漏", "燃气味", "煤气味"), "POLICE", "GAS_LEAK", 1),
    Rule("kw-drowning", ("落水", "溺水", "跳河"), "POLICE", "DROWNING_RISK", 1),
    Rule("kw-fraud", ("诈骗", "被骗", "转账", "冒充客服", "刷单"), "POLICE", "TELECOM_FRAUD", 2),
    Rule("kw-fight", ("打架", "斗殴", "打人", "互殴"), "POLICE", "FIGHT", 2),
    Rule("kw-accident", ("车祸", "交通事故", "撞车", "追尾"), "POLICE", "TRAFFIC_ACCIDENT", 2),
    Rule("kw-missing", ("走失", "失踪", "找不到人"), "POLICE", "MISSING_PERSON", 2),
    Rule("kw-theft", ("被偷", "盗窃", "小偷", "偷了"), "POLICE", "THEFT", 3),
    Rule("kw-dispute", ("纠纷", "吵架"), "POLICE", "DISPUTE", 3),
    Rule("kw-noise", ("噪音", "扰民", "太吵"), "POLICE", "NOISE", 4),
    Rule("kw-parking", ("违停", "违章停车", "乱停车", "堵住车库", "挡住出口"), "NON_POLICE", "ILLEGAL_PARKING", 4),
    Rule("kw-utilities", ("停水", "停电", "路灯", "井盖"), "NON_POLICE", "PUBLIC_UTILITIES", 4),
    Rule("kw-wages", ("拖欠工资", "欠薪"), "NON_POLICE", "WAGE_ARREARS", 4),
    Rule("kw-consult", ("怎么办理", "需要什么材料", "如何办理", "请问", "咨询"), "CONSULTATION", "CONSULTATION", 4),
    Rule("kw-prank", ("开玩笑", "恶作剧", "打错了"), "INVALID", "PRANK", 4),
)
CATEGORY_ORDER = {"POLICE": 0, "NON_POLICE": 1, "CONSULTATION": 2, "INVALID": 3}


def classify(description: str, channel: str, rules: tuple[Rule, ...] = RULES) -> Classification:
    """Picks the most urgent matching rule; explains the pick in Chinese."""
    hits: list[tuple[Rule, str]] = []
    for rule in rules:
        for kw in rule.keywords:
            if kw in description:
                hits.append((rule, kw))
                break
    if channel == "SILENT_ALARM" and not any(r.category == "POLICE" for r, _ in hits):
        return Classification("POLICE", "SILENT_ALARM", 1, "无声报警：报警人无法通话，按紧急警情处理", ["channel-silent-alarm"])
    if not hits:
        return Classification("POLICE", "OTHER", 3, "未命中分类规则，按一般警情处理，待接警员确认", [])
    hits.sort(key=lambda h: (CATEGORY_ORDER[h[0].category], h[0].priority))
    rule, keyword = hits[0]
    reason = f"命中关键词“{keyword}”（规则 {rule.rule_id}），{rule.priority}级"
    return Classification(rule.category, rule.incident_type, rule.priority, reason, [r.rule_id for r, _ in hits])
