"""Intake domain (接警): reports, their validation, jurisdiction lookup and
classification. Plain Python; knows nothing of gRPC or SQL."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import shapely
from shapely import STRtree
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from services.runtime.audit import TimelineEntry

from . import rules

CHANNELS = {
    "PHONE", "SMS", "WECHAT", "WEIBO", "QQ", "APP", "MINI_PROGRAM", "KIOSK", "VIDEO",
    "SILENT_ALARM", "HOTLINE_12345", "PATROL", "WALK_IN", "TIP_OFF", "MAILBOX",
}
CATEGORIES = {"POLICE", "NON_POLICE", "CONSULTATION", "INVALID"}
# Media a report may carry: kind -> (accepted MIME types, max bytes).
ATTACHMENT_LIMITS = {
    "IMAGE": ({"image/jpeg", "image/png", "image/heic", "image/heif", "image/webp", "image/gif"}, 20 * 1024 * 1024),
    "VIDEO": ({"video/mp4", "video/quicktime", "video/3gpp", "video/webm"}, 500 * 1024 * 1024),
    "VOICE": ({"audio/amr", "audio/mpeg", "audio/aac", "audio/mp4", "audio/wav", "audio/ogg", "audio/webm"},
              50 * 1024 * 1024),
}
MAX_ATTACHMENTS = 20
# Object storage the evidence store accepts: s3://bucket/key, oss://…, obs://…, https://host/path.
STORAGE_URI = re.compile(r"^(s3|oss|obs|https)://[A-Za-z0-9.\-_]+(:\d+)?/[^\s]+$")
# Location sources a client may claim; GAZETTEER is set by the server when it geocodes address_text.
CLIENT_LOCATION_SOURCES = {"", "GNSS", "CELL", "CALL_TAKER", "FIXED_DEVICE"}
MAX_ACCURACY_M = 50_000.0
MAX_DESCRIPTION_CHARS = 2000
MAX_ADDRESS_CHARS = 300
MAX_CLOCK_SKEW = timedelta(minutes=5)
MOBILE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE = re.compile(r"^0[1-9]\d{1,2}-?[2-9]\d{6,7}$")
# Service short numbers (110, 119, 120, 122, 12345, 95xxx…) cannot be a caller's own number.
SHORT_NUMBER = re.compile(r"^(1\d{2}|12\d{3}|95\d{3,4}|96\d{3,4})$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# BCP-47 (RFC 5646) language tag: language[-script][-region][-variant]*.
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|\d{3}))?(-([A-Za-z0-9]{5,8}|\d[A-Za-z0-9]{3}))*$")
DEFAULT_LANGUAGE = "zh-CN"
# A point closer than this to a jurisdiction boundary is flagged as a border case.
BORDER_TOLERANCE_M = 30.0
METRES_PER_DEGREE_LAT = 111_320.0


def normalize_phone(raw: str) -> str:
    """Spaces dropped and a +86/0086 country prefix removed; the rest kept as given."""
    phone = raw.strip().replace(" ", "")
    for prefix in ("+86", "0086"):
        if phone.startswith(prefix):
            phone = phone[len(prefix):].lstrip("-")
    return phone


@dataclass
class Attachment:
    kind: str
    content_type: str
    size_bytes: int
    sha256: str
    storage_uri: str


@dataclass(frozen=True)
class Address:
    """A standard address (标准地址) of the gazetteer."""

    code: str
    full_address: str
    district: str
    street: str
    community: str
    road: str
    house_number: str
    building: str
    lon: float
    lat: float
    station_id: str = ""
    grid_id: str = ""


@dataclass(frozen=True)
class AddressMatch:
    method: str  # EXACT_CODE, EXACT_TEXT, FUZZY_TEXT, NO_MATCH
    confidence: float
    address: Address | None


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
    address_code: str = ""
    address_match: "AddressMatch | None" = None

    @property
    def name(self) -> str:
        return f"reports/{self.id}"

    @property
    def silent(self) -> bool:
        """A silent alarm (无声报警): the caller cannot speak."""
        return self.channel == "SILENT_ALARM"

    @property
    def voice_callback_allowed(self) -> bool:
        return not self.silent


# -- validation ---------------------------------------------------------------

def check_point(lon: float, lat: float, v, path: str) -> None:
    v.check(math.isfinite(lon) and -180.0 <= lon <= 180.0, f"{path}.longitude", "must be between -180 and 180")
    v.check(math.isfinite(lat) and -90.0 <= lat <= 90.0, f"{path}.latitude", "must be between -90 and 90")


def validate_new_report(r: dict, v, *, now: datetime | None = None) -> None:
    """Checks a new report given as plain values; records violations on `v`."""
    v.check(r["channel"] in CHANNELS, "report.channel", "is required: one of " + ", ".join(sorted(CHANNELS)))
    phone = r["caller_phone"]
    if phone:
        if SHORT_NUMBER.match(phone):
            v.add("report.caller.phone_number", "is a service short number (110, 12345…), not a caller's number")
        else:
            v.check(bool(MOBILE.match(phone) or LANDLINE.match(phone)), "report.caller.phone_number",
                    "must be a mainland mobile number (11 digits, 1[3-9]…) or a landline with its area code "
                    "like 027-85551234")
    v.check(len(r["caller_name"]) <= 50, "report.caller.name", "must be at most 50 characters")
    has_point = r["lon"] is not None
    if has_point:
        check_point(r["lon"], r["lat"], v, "report.location.point")
        v.check(math.isfinite(r["accuracy_m"]) and 0 <= r["accuracy_m"] <= MAX_ACCURACY_M,
                "report.location.accuracy_m", f"must be between 0 and {MAX_ACCURACY_M:.0f} metres")
        v.check(r["location_source"] in CLIENT_LOCATION_SOURCES, "report.location.source",
                "must be GNSS, CELL, CALL_TAKER or FIXED_DEVICE (GAZETTEER is set by the server)")
    if not (has_point or r["address_text"].strip() or r.get("address_code")):
        # A question or a misdial needs no place; nothing a citizen sends is dropped for lacking one.
        category = classify(r["description"], r["channel"]).category
        v.check(category in ("CONSULTATION", "INVALID"), "report.location",
                "a location point, report.address_text or report.address_code is required to route the report")
    v.check(len(r["address_text"]) <= MAX_ADDRESS_CHARS, "report.address_text",
            f"must be at most {MAX_ADDRESS_CHARS} characters")
    description = r["description"]
    v.check(bool(description.strip()) or bool(r["attachments"]), "report.description",
            "is required unless the report carries an attachment")
    v.check(len(description) <= MAX_DESCRIPTION_CHARS, "report.description",
            f"must be at most {MAX_DESCRIPTION_CHARS} characters")
    v.check(len(r["attachments"]) <= MAX_ATTACHMENTS, "report.attachments",
            f"must be at most {MAX_ATTACHMENTS} items")
    for i, a in enumerate(r["attachments"]):
        path = f"report.attachments[{i}]"
        limits = ATTACHMENT_LIMITS.get(a.kind)
        if not v.check(limits is not None, f"{path}.kind", "must be IMAGE, VIDEO or VOICE"):
            continue
        types, max_bytes = limits
        v.check(a.content_type in types, f"{path}.content_type",
                f"must be one of {', '.join(sorted(types))} for {a.kind}")
        v.check(0 < a.size_bytes <= max_bytes, f"{path}.size_bytes",
                f"must be between 1 and {max_bytes} bytes for {a.kind}")
        v.check(bool(SHA256.match(a.sha256)), f"{path}.sha256", "must be 64 hex digits (SHA-256 of the content)")
        v.check(bool(STORAGE_URI.match(a.storage_uri)), f"{path}.storage_uri",
                "must be an object storage URI: s3://, oss://, obs:// or https:// with a bucket and a path")
        if r["channel"] == "SILENT_ALARM":
            v.check(a.kind != "VOICE", f"{path}.kind", "a silent alarm is text only: no voice")
    language = r.get("language", "")
    if language:
        v.check(bool(LANGUAGE_TAG.match(language)) and len(language) <= 35, "report.language",
                "must be a BCP-47 language tag such as zh-CN, zh-Hans-CN or en")
    received = r.get("receive_time")
    if received is not None and now is not None:
        v.check(received <= now + MAX_CLOCK_SKEW, "report.receive_time", "must not be in the future")


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
    """Point → station and grid, through an R-tree over the polygons.

    Most points lie well inside a station: a prepared "core" polygon (the
    station shrunk by the border tolerance) answers those with one
    point-in-polygon test; only points near an edge or outside every station
    pay for distance computations.
    """

    def __init__(self, stations: list[StationArea], grids: list[GridArea]):
        self.stations = stations
        self.grids = grids
        self._station_tree = STRtree([s.boundary for s in stations])
        self._grid_tree = STRtree([g.boundary for g in grids])
        self._station_by_id = {s.station_id: s for s in stations}
        lat0 = sum(s.hq_lat for s in stations) / len(stations) if stations else 0.0
        # Degrees of the border tolerance along the axis where a degree is shortest (conservative).
        tolerance_deg = BORDER_TOLERANCE_M / (METRES_PER_DEGREE_LAT * max(math.cos(math.radians(lat0)), 0.2))
        self._cores = [s.boundary.buffer(-tolerance_deg) for s in stations]
        for core in self._cores:
            shapely.prepare(core)
        self._grids_of: dict[str, tuple[STRtree, list[GridArea]]] = {}
        for station in stations:
            own = [g for g in grids if g.station_id == station.station_id]
            if own:
                self._grids_of[station.station_id] = (STRtree([g.boundary for g in own]), own)

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
            idx = int(hits[0])
            station = self.stations[idx]
            distance = 0.0
            if len(hits) > 1:
                border = True
            elif self._cores[idx].contains(p):
                border = False
            else:
                border = self._metres(lat, station.boundary.exterior.distance(p)) < BORDER_TOLERANCE_M
        else:
            idx = int(self._station_tree.nearest(p))
            station = self.stations[idx]
            distance = self._metres(lat, station.boundary.distance(p))
            border = True
        grid_id = ""
        own = self._grids_of.get(station.station_id)
        if own is not None:
            tree, own_grids = own
            inside = tree.query(p, predicate="intersects")
            grid_id = own_grids[int(inside[0] if len(inside) else tree.nearest(p))].grid_id
        return Located(station.station_id, station.name, station.district, grid_id, border, distance)


# -- classification and grading (分类定级) -------------------------------------

def _keyword_hit(text: str, keywords: tuple[str, ...]) -> str:
    """The first keyword that occurs ("A+B": both parts), or ""."""
    for kw in keywords:
        parts = kw.split("+")
        if all(p in text for p in parts):
            return "”+“".join(parts)
    return ""


def local_hour(at: datetime) -> int:
    return (at.astimezone(timezone.utc) + timedelta(hours=rules.LOCAL_UTC_OFFSET_HOURS)).hour


def _in_window(hour: int, start: int, end: int) -> bool:
    return start <= hour < end if start < end else hour >= start or hour < end


def classify(description: str, channel: str, *, at: datetime | None = None,
             recent_invalid_calls: int = 0) -> Classification:
    """Category, incident type and priority 1-4 from the rule tables, explained in Chinese."""
    text = description
    fired: list[str] = []
    reasons: list[str] = []
    matched = None
    for rule in rules.KEYWORD_RULES:
        keyword = _keyword_hit(text, rule.keywords)
        if keyword and not _keyword_hit(text, rule.unless):
            matched = rule
            break
    channel_rule = rules.CHANNEL_RULES.get(channel)
    if matched is not None:
        itype, priority = matched.incident_type, matched.priority
        fired.append(matched.rule_id)
        reasons.append(f"命中关键词“{keyword}”（规则 {matched.rule_id}）：{rules.INCIDENT_TYPES[itype].label}")
    elif channel_rule and channel_rule.unmatched_type:
        itype, priority = channel_rule.unmatched_type, channel_rule.unmatched_priority
        fired.append(channel_rule.rule_id)
        reasons.append(f"未命中关键词，按渠道规则（{channel_rule.rule_id}）处理：{rules.INCIDENT_TYPES[itype].label}")
    else:
        itype, priority = rules.FALLBACK_TYPE, rules.FALLBACK_PRIORITY
        reasons.append("未命中分类规则，按一般警情处理，待接警员确认")
    category = rules.INCIDENT_TYPES[itype].category

    rep = rules.REPEAT_INVALID
    if recent_invalid_calls >= rep.threshold:
        if matched is None or category == rules.INVALID:
            itype, priority, category = "HARASSING_CALL", 4, rules.INVALID
            reasons.append(f"该号码{rep.window_minutes}分钟内已有{recent_invalid_calls}次无效报警，"
                           f"认定为重复恶意骚扰（规则 {rep.rule_id}）")
        else:
            reasons.append(f"注意：该号码{rep.window_minutes}分钟内已有{recent_invalid_calls}次无效报警"
                           f"（规则 {rep.rule_id}），本次仍按所报警情处理")
        fired.append(rep.rule_id)

    if category == rules.POLICE:
        for pr in rules.PRIORITY_RULES:
            if pr.incident_types and itype not in pr.incident_types:
                continue
            keyword = _keyword_hit(text, pr.keywords)
            if keyword and not _keyword_hit(text, pr.unless) and pr.priority < priority:
                priority = pr.priority
                fired.append(pr.rule_id)
                reasons.append(f"{pr.reason}（“{keyword}”，规则 {pr.rule_id}）")
        hour = local_hour(at) if at is not None else None
        for tr in rules.TIME_RULES:
            if itype not in tr.incident_types or tr.priority >= priority:
                continue
            by_clock = hour is not None and _in_window(hour, tr.start_hour, tr.end_hour)
            keyword = _keyword_hit(text, tr.keywords)
            if by_clock or keyword:
                priority = tr.priority
                fired.append(tr.rule_id)
                when = f"报警时间{hour}时" if by_clock else f"“{keyword}”"
                reasons.append(f"{tr.reason}（{when}，规则 {tr.rule_id}）")
    if channel_rule is not None and channel_rule.rule_id not in fired:
        if category == rules.POLICE and channel_rule.urgent_priority and priority > channel_rule.urgent_priority:
            priority = channel_rule.urgent_priority
        if category == rules.POLICE and channel_rule.calm_priority and priority < channel_rule.calm_priority:
            priority = channel_rule.calm_priority
        fired.append(channel_rule.rule_id)
        reasons.append(f"{channel_rule.note}（规则 {channel_rule.rule_id}）")
    elif channel_rule is not None:
        reasons.append(channel_rule.note)
    reasons.append(f"定为{CATEGORY_LABELS[category]}，{priority}级")
    return Classification(category, itype, priority, "；".join(reasons), fired)


CATEGORY_LABELS = {"POLICE": "警情", "NON_POLICE": "非警务求助", "CONSULTATION": "咨询", "INVALID": "无效报警"}
