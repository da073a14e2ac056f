"""Alerts (预警) domain: keyword matching, routing, escalation, silences,
anomaly and police-strength arithmetic, CAP 1.2. Plain values in, plain values
out; no gRPC and no SQL here.
"""
from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from xml.etree import ElementTree as ET

import ahocorasick
import h3

# Alert levels, the four-colour scale (蓝 黄 橙 红); higher is more severe.
LEVELS = ["", "BLUE", "YELLOW", "ORANGE", "RED"]
LEVEL_CN = {"BLUE": "蓝色", "YELLOW": "黄色", "ORANGE": "橙色", "RED": "红色"}

STATES = ("FIRING", "ACKNOWLEDGED", "RESOLVED", "SILENCED")
OPEN_STATES = ("FIRING", "ACKNOWLEDGED", "SILENCED")


def level_rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else 0


def max_level(*levels: str) -> str:
    return LEVELS[max(level_rank(lv) for lv in levels)]


# -- keyword matching -----------------------------------------------------------
#
# Cue words (as data) that turn a term into a non-incident when they sit in
# the same clause: before the term (否定 negation, 假设 hypothetical,
# 转述 hearsay of news) or right after it ("抢劫案的新闻"). A rule may replace
# any list through its parameters ("negation_cues": "不是,并非", ...).
DEFAULT_CUES = {
    "negation_cues": ["不是", "并非", "并不是", "没有", "没", "未", "无", "否认", "不存在", "不像", "排除"],
    "hypothetical_cues": ["假如", "如果", "假设", "要是", "万一", "倘若", "若是", "梦见", "梦到", "想象", "比如"],
    "news_before_cues": ["新闻", "报道", "电视上", "电视里", "电影", "小说", "游戏里", "剧里", "网上看到", "听说过"],
    "news_after_cues": ["案的新闻", "新闻", "报道", "电视剧", "电影", "小说", "游戏", "剧情", "片", "案件的报道"],
    # Phrases that contain a negation cue but do not negate (没想到 = "unexpectedly").
    "negation_exempt": ["没想到", "不知道", "不得了", "不停", "无数", "没多久", "不一会", "没办法", "未成年",
                        "没人管", "无缘无故"],
}
CLAUSE_BREAK = re.compile(r"[。！？!?；;，,\n\r]")
BEFORE_WINDOW = 8
AFTER_WINDOW = 6


@dataclass(frozen=True)
class Cues:
    negation: tuple[str, ...]
    hypothetical: tuple[str, ...]
    news_before: tuple[str, ...]
    news_after: tuple[str, ...]
    negation_exempt: tuple[str, ...]

    @classmethod
    def from_parameters(cls, parameters: dict[str, str] | None = None) -> "Cues":
        values = {}
        for key, default in DEFAULT_CUES.items():
            raw = (parameters or {}).get(key)
            values[key] = tuple(x.strip() for x in raw.split(",") if x.strip()) if raw is not None else tuple(default)
        return cls(values["negation_cues"], values["hypothetical_cues"], values["news_before_cues"],
                   values["news_after_cues"], values["negation_exempt"])


DEFAULT_CUE_SET = Cues.from_parameters()


@dataclass(frozen=True)
class TermSpec:
    """One term of one keyword rule, at the rule's version in force."""

    rule_id: str
    rule_version: int
    term: str
    grade: str
    exclusions: tuple[str, ...] = ()
    cues: Cues = DEFAULT_CUE_SET


@dataclass(frozen=True)
class KeywordHit:
    spec: TermSpec
    start: int
    end: int

    @property
    def term(self) -> str:
        return self.spec.term


def _clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    left = 0
    for m in CLAUSE_BREAK.finditer(text, 0, start):
        left = m.end()
    m = CLAUSE_BREAK.search(text, end)
    return left, (m.start() if m else len(text))


def _negated(before: str, cues: Cues) -> bool:
    """A negation cue in the clause before the term, unless an exempt phrase (没想到) covers it.

    A one-character cue (没, 未, 无) counts only right before the term ("没杀人",
    "没人杀人"): further away it usually negates something else ("没钱就抢劫").
    """
    for cue in cues.negation:
        idx = before.find(cue)
        while idx >= 0:
            near = len(before) - (idx + len(cue)) <= 1
            if (len(cue) > 1 or near) and not any(_covers(before, ex, idx, len(cue)) for ex in cues.negation_exempt):
                return True
            idx = before.find(cue, idx + 1)
    return False


def _covers(text: str, phrase: str, idx: int, length: int) -> bool:
    """Whether an occurrence of `phrase` in text covers text[idx:idx+length]."""
    start = max(0, idx - len(phrase) + length)
    pos = text.find(phrase, start)
    while 0 <= pos <= idx:
        if pos + len(phrase) >= idx + length:
            return True
        pos = text.find(phrase, pos + 1)
    return False


def dismissed_by_context(text: str, start: int, end: int, cues: Cues) -> str:
    """Why a term at text[start:end] is not an incident ("" when it is one)."""
    left, right = _clause_bounds(text, start, end)
    before = text[max(left, start - BEFORE_WINDOW):start]
    after = text[end:min(right, end + AFTER_WINDOW)]
    if _negated(before, cues):
        return "negated"
    if any(cue in before for cue in cues.hypothetical):
        return "hypothetical"
    if any(cue in before for cue in cues.news_before) or any(
            (cue in after) if len(cue) > 1 else after.startswith(cue) for cue in cues.news_after):
        return "reported"
    return ""


class KeywordMatcher:
    """All keyword rules' terms in one Aho-Corasick automaton: one pass per text.

    Exclusion phrases ("剧本杀", "跳楼价") go into the same automaton; a term
    occurrence covered by one of its own exclusions does not count.
    """

    def __init__(self, specs: list[TermSpec]):
        self.specs = specs
        self._automaton = ahocorasick.Automaton()
        entries: dict[str, tuple[list[TermSpec], set[str]]] = {}
        for spec in specs:
            entries.setdefault(spec.term, ([], set()))[0].append(spec)
            for phrase in spec.exclusions:
                entries.setdefault(phrase, ([], set()))[1].add(spec.term)
        for key, (term_specs, excludes) in entries.items():
            self._automaton.add_word(key, (key, tuple(term_specs), frozenset(excludes)))
        self._empty = not entries
        if not self._empty:
            self._automaton.make_automaton()

    def __len__(self) -> int:
        return len(self.specs)

    def match(self, text: str) -> list[KeywordHit]:
        if self._empty or not text:
            return []
        hits: list[KeywordHit] = []
        excluded: list[tuple[int, int, frozenset[str]]] = []
        for end_idx, (key, term_specs, excludes) in self._automaton.iter(text):
            start = end_idx - len(key) + 1
            if excludes:
                excluded.append((start, end_idx + 1, excludes))
            for spec in term_specs:
                hits.append(KeywordHit(spec, start, end_idx + 1))
        kept = []
        for hit in hits:
            if any(s <= hit.start and hit.end <= e and hit.term in terms for s, e, terms in excluded):
                continue
            if dismissed_by_context(text, hit.start, hit.end, hit.spec.cues):
                continue
            kept.append(hit)
        return kept


def strongest_by_rule(hits: list[KeywordHit]) -> dict[str, list[KeywordHit]]:
    """Hits per rule, the highest grade first (then the earliest)."""
    by_rule: dict[str, list[KeywordHit]] = {}
    for hit in hits:
        by_rule.setdefault(hit.spec.rule_id, []).append(hit)
    for rule_hits in by_rule.values():
        rule_hits.sort(key=lambda h: (-level_rank(h.spec.grade), h.start))
    return by_rule


# -- identity -------------------------------------------------------------------

def fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


# -- routing and escalation -----------------------------------------------------
#
# Who hears of an alert first, by level (按级别分级推送), and the command chain
# escalation climbs when nobody acknowledges in time.
CITY_SCREEN = "screens/city"
CITY_COMMAND = "command/city"


def _station_recipients(station: str) -> dict[str, str]:
    return {"screen": f"screens/{station}", "officer": f"stations/{station}",
            "chief": f"stations/{station}/chief"}


ROUTES = {
    "BLUE": ["screen", "officer"],
    "YELLOW": ["screen", "officer", "chief"],
    "ORANGE": ["screen", "officer", "chief", CITY_SCREEN],
    "RED": ["screen", "officer", "chief", CITY_SCREEN, CITY_COMMAND],
}
CHAIN = ["officer", "chief", CITY_COMMAND]


def _resolve(role: str, station: str) -> str:
    if "/" in role:
        return role
    return _station_recipients(station)[role] if station else CITY_SCREEN


def route(level: str, station: str, rule_recipients: list[str] | None = None) -> list[str]:
    """The first recipients: the rule's own, or those of the level for the station."""
    if rule_recipients:
        names = list(rule_recipients)
        if station and f"screens/{station}" not in names:
            names.insert(0, f"screens/{station}")
        return names
    names = [_resolve(role, station) for role in ROUTES.get(level, ROUTES["BLUE"])]
    return list(dict.fromkeys(names))


def next_recipient(recipients: list[str], station: str) -> str | None:
    """The next step up the command chain not told yet; None at the top."""
    for role in CHAIN:
        name = _resolve(role, station)
        if name not in recipients:
            return name
    return None


def channel_for(recipient: str, escalation_level: int) -> str:
    if recipient.startswith("screens/"):
        return "BIG_SCREEN"
    if recipient.startswith("command/"):
        return "VOICE_CALL"
    return "SMS" if escalation_level > 0 else "APP_PUSH"


# -- silences -------------------------------------------------------------------

@dataclass(frozen=True)
class Matcher:
    label: str
    value: str
    operator: str = "EQUAL"  # EQUAL, NOT_EQUAL, REGEX

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.operator == "NOT_EQUAL":
            return actual != self.value
        if self.operator == "REGEX":
            return re.fullmatch(self.value, actual) is not None
        return actual == self.value


def silence_state(start: datetime, expire: datetime, expired_early: datetime | None, now: datetime) -> str:
    if expired_early is not None and expired_early <= now:
        return "EXPIRED"
    if now >= expire:
        return "EXPIRED"
    return "PENDING" if now < start else "ACTIVE"


def silenced_by(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return bool(matchers) and all(m.matches(labels) for m in matchers)


# -- volume, anomaly, strength --------------------------------------------------

H3_RESOLUTIONS = range(6, 11)


def h3_cells(lon: float | None, lat: float | None) -> list[str]:
    """The point's H3 cells at resolutions 6..10 (index = resolution - 6)."""
    if lon is None or lat is None:
        return []
    return [h3.latlng_to_cell(lat, lon, r) for r in H3_RESOLUTIONS]


def cell_center(cell: str) -> tuple[float, float]:
    lat, lon = h3.cell_to_latlng(cell)
    return lon, lat


def anomaly(current: int, history: list[int], sigmas: float, min_count: int) -> tuple[bool, float, float]:
    """Whether `current` is far above the history of the same hour: (anomalous, mean, standard deviation).

    The deviation has a floor of 1 report so that a flat history (all zeros)
    does not turn every single report into an anomaly.
    """
    if not history:
        return False, 0.0, 0.0
    mean = sum(history) / len(history)
    std = math.sqrt(sum((h - mean) ** 2 for h in history) / len(history))
    return current >= min_count and current > mean + sigmas * max(std, 1.0), mean, std


@dataclass
class GapFinding:
    hot: list[tuple[str, int, int]]  # (cell, incidents, units) hottest first
    cold: list[tuple[str, int, int]]  # (cell, incidents, units) most units first


def strength_gap(cell: str, incidents: Counter, units: Counter, *, threshold: float, min_incidents: int,
                 ring: int = 1, cold_ring: int = 3) -> GapFinding | None:
    """Heat map against cold map (警情热力图与警力冰点图) around `cell`.

    The neighbourhood (the cell and its ring of neighbours) is hot when its
    incidents per available unit reach the threshold. Cold cells are those
    further out with units to spare and few incidents: where units can come
    from (警力跟着警情走).
    """
    near = h3.grid_disk(cell, ring)
    n_incidents = sum(incidents.get(c, 0) for c in near)
    n_units = sum(units.get(c, 0) for c in near)
    if n_incidents < min_incidents or n_incidents / max(n_units, 1) < threshold:
        return None
    hot = sorted(((c, incidents.get(c, 0), units.get(c, 0)) for c in near if incidents.get(c, 0)),
                 key=lambda x: (-x[1], x[2], x[0]))
    cold = []
    for c in h3.grid_disk(cell, cold_ring):
        if c in near:
            continue
        u = units.get(c, 0)
        if u and incidents.get(c, 0) / u < threshold / 2:
            cold.append((c, incidents.get(c, 0), u))
    cold.sort(key=lambda x: (-x[2], x[1], x[0]))
    return GapFinding(hot=hot, cold=cold[:5])


# -- obligations ----------------------------------------------------------------

def obligation_state(due: datetime, done: bool, cancelled: bool, now: datetime) -> str:
    if cancelled:
        return "CANCELLED"
    if done:
        return "DONE"
    return "OVERDUE" if now >= due else "PENDING"


# -- CAP 1.2 --------------------------------------------------------------------

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
