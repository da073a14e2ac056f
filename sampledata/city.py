"""Generator of the fictional sample city 江城市 used across Smart110.

The city lies around lon 114.20–114.50, lat 30.45–30.70 (WGS-84).  All data
is derived from fixed seeds, so every call in every process returns the same
values.  Geometry is built in a local kilometre plane (so Voronoi cells look
natural) and converted to WGS-84 degrees at the end; coordinates are snapped
to a 1e-7 degree grid (about 1 cm).

Public API (all results are cached, generation takes well under a second):

    city_outline() -> CityOutline
    districts()    -> tuple[District, ...]
    stations()     -> tuple[Station, ...]
    grids()        -> tuple[Grid, ...]
    units()        -> tuple[Unit, ...]
    departments()  -> tuple[Department, ...]
    sample_reports() -> list[dict]   (a fresh deep copy on every call)
    dataset_fingerprint() -> str     (SHA-256 over everything above)

Polygons are exposed both as shapely geometries (``polygon``) and as rings of
``(lon, lat)`` tuples (``rings``: exterior first, counter-clockwise, closed),
with ``geojson()`` returning a GeoJSON geometry dict.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import heapq
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Point, Polygon, box
from shapely.geometry.polygon import orient
from shapely.ops import voronoi_diagram

CITY_NAME = "江城市"

# Local plane: kilometres east/north of the city centre.
_LON0, _LAT0 = 114.35, 30.575
_KX = 111.320 * math.cos(math.radians(_LAT0))  # km per degree of longitude
_KY = 110.574  # km per degree of latitude
_GRID_DEG = 1e-7  # snapping grid of polygon vertices, degrees
_POINT_DECIMALS = 6  # decimals of point coordinates (about 0.1 m)

Ring = tuple[tuple[float, float], ...]

# ---------------------------------------------------------------------------
# Code lists
# ---------------------------------------------------------------------------

UNIT_KINDS: dict[str, str] = {
    "COMMUNITY_OFFICER": "社区民警（全科）",
    "PATROL_CAR": "巡逻车",
    "FOOT_PATROL": "步巡组",
    "CRIMINAL_INVESTIGATION": "刑侦",
    "PUBLIC_SECURITY": "治安",
    "ECONOMIC_CRIME": "经侦",
    "NARCOTICS": "禁毒",
    "TRAFFIC": "交警",
    "SPECIAL_POLICE": "特警",
    "DRONE": "无人机",
    "LEGAL_OFFICER": "法制员",
    "ANTI_FRAUD": "反诈",
}

SKILL_LABELS: dict[str, str] = {
    "PATROL": "巡逻防控",
    "FIRST_AID": "现场急救",
    "MEDIATION": "矛盾调解",
    "COMMUNITY_LIAISON": "社区联络",
    "CROWD_CONTROL": "人群疏导",
    "SEARCH_MISSING": "走失人员查找",
    "TRAFFIC_ACCIDENT": "交通事故处理",
    "TRAFFIC_CONTROL": "交通管制",
    "DUI_TEST": "酒精检测",
    "EVIDENCE_COLLECTION": "现场勘查取证",
    "INTERROGATION": "讯问",
    "FORENSICS": "刑事技术",
    "PUBLIC_ORDER": "治安管理",
    "VENUE_INSPECTION": "场所检查",
    "FINANCIAL_INVESTIGATION": "资金查控",
    "DRUG_TESTING": "毒品检测",
    "DRUG_INVESTIGATION": "毒品侦查",
    "SWAT": "武装处突",
    "NEGOTIATION": "谈判",
    "FIREARMS": "枪支使用",
    "DRONE_PILOT": "无人机驾驶",
    "AERIAL_SEARCH": "空中搜索",
    "LEGAL_REVIEW": "法制审核",
    "CASE_QUALITY": "执法质量监督",
    "FRAUD_STOP_PAYMENT": "紧急止付",
    "FRAUD_WARNING": "预警劝阻",
    "PSYCHOLOGICAL_CRISIS": "心理危机干预",
    "ENGLISH": "英语",
    "SIGN_LANGUAGE": "手语",
}

REPORT_CHANNELS: tuple[str, ...] = (
    "PHONE", "SMS", "WECHAT", "WEIBO", "QQ", "APP", "MINI_PROGRAM", "KIOSK",
    "VIDEO", "SILENT_ALARM", "HOTLINE_12345", "PATROL", "WALK_IN", "TIP_OFF",
    "MAILBOX",
)

REPORT_CATEGORIES: tuple[str, ...] = ("POLICE", "NON_POLICE", "CONSULTATION", "INVALID")

# Matters handled by 12345 departments: code -> Chinese label.  A matter code
# is also the incident type code of a NON_POLICE report about that matter.
MATTERS: dict[str, str] = {
    "ILLEGAL_PARKING": "违章停车",
    "TRAFFIC_SIGNAL": "交通信号灯故障",
    "TRAFFIC_CONGESTION": "交通拥堵",
    "DRIVING_LICENSE": "驾驶证业务",
    "VEHICLE_REGISTRATION": "机动车登记",
    "ILLEGAL_CONSTRUCTION": "违法建设",
    "STREET_VENDOR": "占道经营",
    "CONSTRUCTION_NOISE": "施工噪音",
    "GARBAGE": "垃圾清运",
    "SANITATION": "环境卫生",
    "TAXI_COMPLAINT": "出租车服务投诉",
    "BUS_SERVICE": "公交服务",
    "ROAD_DAMAGE": "道路破损",
    "GAS_LEAK": "燃气泄漏",
    "GAS_OUTAGE": "停气",
    "STREET_LIGHT": "路灯损坏",
    "TREE_HAZARD": "树木倒伏",
    "MANHOLE_COVER": "井盖缺失",
    "GREEN_SPACE": "绿化管护",
    "CONSTRUCTION_SAFETY": "建筑施工安全",
    "OLD_COMMUNITY_RENOVATION": "老旧小区改造",
    "FOOD_SAFETY": "食品安全",
    "PRICE_GOUGING": "价格欺诈",
    "CONSUMER_DISPUTE": "消费纠纷",
    "ELEVATOR_FAULT": "电梯故障",
    "WAGE_ARREARS": "拖欠工资",
    "SOCIAL_INSURANCE": "社保业务",
    "LABOR_DISPUTE": "劳动争议",
    "POWER_OUTAGE": "停电",
    "POWER_LINE_HAZARD": "电力线路隐患",
    "WATER_OUTAGE": "停水",
    "PIPE_BURST": "供水管道爆裂",
    "WATER_QUALITY": "自来水水质",
    "SEWER_BLOCKAGE": "下水道堵塞",
    "AIR_POLLUTION": "大气污染",
    "WATER_POLLUTION": "水体污染",
    "INDUSTRIAL_NOISE": "工业噪声",
    "MEDICAL_DISPUTE": "医疗纠纷",
    "ILLEGAL_CLINIC": "非法行医",
    "SCHOOL_FEES": "教育乱收费",
    "SCHOOL_ENROLLMENT": "入学政策",
    "OFF_CAMPUS_TRAINING": "校外培训",
    "ELDERLY_ASSISTANCE": "老人救助",
    "HOMELESS_ASSISTANCE": "流浪乞讨救助",
    "MARRIAGE_REGISTRATION": "婚姻登记",
    "HOUSING_RENTAL": "房屋租赁纠纷",
    "PROPERTY_MANAGEMENT": "物业服务纠纷",
    "REAL_ESTATE_REGISTRATION": "不动产登记",
    "TOURISM_COMPLAINT": "旅游投诉",
    "ENTERTAINMENT_VENUE": "娱乐场所管理",
    "SAFETY_HAZARD": "安全生产隐患",
    "HAZARDOUS_CHEMICALS": "危险化学品",
    "FIRE_HAZARD": "消防安全隐患",
    "BLOCKED_FIRE_EXIT": "消防通道堵塞",
    "ID_CARD": "身份证办理",
    "HOUSEHOLD_REGISTRATION": "户口登记迁移",
    "PASSPORT": "出入境证件办理",
    "ILLEGAL_LAND_USE": "违法用地",
    "WATERLOGGING": "道路渍水",
    "LAKE_PROTECTION": "湖泊保护",
    "TAX_SERVICE": "税务咨询",
    "MEDICAL_INSURANCE": "医保报销",
    "EXPRESS_DELIVERY": "快递服务投诉",
    "TELECOM_SERVICE": "通信服务投诉",
    "DISABILITY_ASSISTANCE": "残疾人帮扶",
    "WOMEN_CHILDREN_RIGHTS": "妇女儿童权益",
    "AGRI_INPUTS": "农资质量",
    "STRAY_ANIMALS": "流浪动物",
    "NOISE": "噪音扰民",
    "NEIGHBOR_DISPUTE": "邻里纠纷",
}


@dataclass(frozen=True)
class IncidentType:
    """An incident type code with its label and the report category it implies."""

    code: str
    label: str
    category: str  # one of REPORT_CATEGORIES


def _incident_types() -> dict[str, IncidentType]:
    police = {
        "FIGHT": "打架斗殴",
        "THEFT": "盗窃",
        "ROBBERY": "抢劫抢夺",
        "TELECOM_FRAUD": "电信网络诈骗",
        "TRAFFIC_ACCIDENT": "交通事故",
        "MISSING_PERSON": "人员走失",
        "DOMESTIC_VIOLENCE": "家庭暴力",
        "DRUGS": "涉毒",
        "GAMBLING": "赌博",
        "DRUNK_DRIVING": "酒后驾驶",
        "SUSPICIOUS_PERSON": "可疑人员",
        "DISPUTE": "纠纷",
        "SUICIDE_RISK": "轻生",
        "HOMICIDE": "命案",
        "KIDNAPPING": "绑架",
        "ASSAULT": "故意伤害",
        "CONGESTION": "现场交通堵塞",
        "TRAPPED": "人员被困",
        "DROWNING_RISK": "溺水危险",
        "FIRE": "火灾",
        # Also 12345 matter codes: a gas leak reported to 110 is a police
        # emergency (and a work order for the gas company); noise from
        # neighbours is a public-order matter (and a street office's).
        "GAS_LEAK": "燃气泄漏",
        "NOISE": "噪音扰民",
    }
    consultation = {
        "CONSULTATION_HOUSEHOLD": "户政业务咨询",
        "CONSULTATION_EXIT_ENTRY": "出入境业务咨询",
        "CONSULTATION_TRAFFIC": "交管业务咨询",
        "CONSULTATION_CERTIFICATE": "证明开具咨询",
        "CONSULTATION_OTHER": "其他咨询",
    }
    invalid = {
        "PRANK": "恶作剧",
        "MISDIAL": "误拨",
        "HARASSING_CALL": "骚扰辱骂",
    }
    out: dict[str, IncidentType] = {}
    for codes, category in (
        (MATTERS, "NON_POLICE"),
        (police, "POLICE"),
        (consultation, "CONSULTATION"),
        (invalid, "INVALID"),
    ):
        for code, label in codes.items():
            out[code] = IncidentType(code, label, category)
    return out


# Every incident type code: police types, one NON_POLICE type per matter code
# (except GAS_LEAK and NOISE, police types when reported to 110),
# consultation types and invalid-call types.
INCIDENT_TYPES: dict[str, IncidentType] = _incident_types()

# ---------------------------------------------------------------------------
# Data classes
# ---------------------------------------------------------------------------


def _rings_of(poly: Polygon) -> tuple[Ring, ...]:
    poly = orient(poly, 1.0)  # exterior counter-clockwise, holes clockwise
    out = [tuple((float(x), float(y)) for x, y in poly.exterior.coords)]
    out += [tuple((float(x), float(y)) for x, y in r.coords) for r in poly.interiors]
    return tuple(out)


class _Area:
    """Mixin for data classes carrying ``polygon`` and ``rings``."""

    polygon: Polygon
    rings: tuple[Ring, ...]

    def geojson(self) -> dict[str, Any]:
        """The polygon as a GeoJSON geometry (RFC 7946 ring orientation)."""
        return {
            "type": "Polygon",
            "coordinates": [[[x, y] for x, y in ring] for ring in self.rings],
        }


@dataclass(frozen=True)
class CityOutline(_Area):
    name: str
    polygon: Polygon = field(repr=False, compare=False)
    rings: tuple[Ring, ...] = field(repr=False)


@dataclass(frozen=True)
class District(_Area):
    district_id: str  # administrative division code, e.g. "420102"
    name: str  # e.g. "江岸区"
    short_name: str  # e.g. "江岸", used in call signs
    kind: str  # "URBAN" or "COUNTY"
    polygon: Polygon = field(repr=False, compare=False)
    rings: tuple[Ring, ...] = field(repr=False)


@dataclass(frozen=True)
class Station(_Area):
    station_id: str  # "S01".."S26"
    name: str  # e.g. "江岸区大智路派出所"
    place: str  # the place name the station is called after, e.g. "大智路"
    district_id: str
    district_name: str
    hq: tuple[float, float]  # (lon, lat) of the station building
    phone: str
    polygon: Polygon = field(repr=False, compare=False)
    rings: tuple[Ring, ...] = field(repr=False)

    @property
    def hq_point(self) -> Point:
        return Point(self.hq)


@dataclass(frozen=True)
class Grid(_Area):
    grid_id: str  # e.g. "S01-G03"
    name: str  # e.g. "大智路社区第3网格"
    station_id: str
    arrival_target_s: int  # 60, 180 or 300 (the 1-3-5 minute response circle)
    polygon: Polygon = field(repr=False, compare=False)
    rings: tuple[Ring, ...] = field(repr=False)


@dataclass(frozen=True)
class Officer:
    officer_id: str  # police number (警号), e.g. "P1103417"
    name: str


@dataclass(frozen=True)
class Unit:
    unit_id: str  # e.g. "U-S01-001"
    call_sign: str  # e.g. "江岸31", unique city-wide
    kind: str  # a key of UNIT_KINDS
    station_id: str  # base station; home is inside its polygon
    scope: str  # area served: "STATION", "DISTRICT" or "CITY"
    skills: tuple[str, ...]  # keys of SKILL_LABELS
    plate: str  # vehicle plate such as "鄂A·1234警", "" for units without a car
    officers: tuple[Officer, ...]
    home: tuple[float, float]  # (lon, lat)
    grid_ids: tuple[str, ...] = ()  # grids a community officer is responsible for

    @property
    def home_point(self) -> Point:
        return Point(self.home)


@dataclass(frozen=True)
class Matter:
    code: str  # a key of MATTERS
    label: str


@dataclass(frozen=True)
class Department:
    dept_id: str  # "D01".."D36"
    name: str
    matters: tuple[Matter, ...]
    districts: tuple[str, ...]  # district names covered; empty means the whole city
    supervisor: str
    phone: str

    @property
    def citywide(self) -> bool:
        return not self.districts

    @property
    def matter_codes(self) -> tuple[str, ...]:
        return tuple(m.code for m in self.matters)

    def covers(self, district_name: str) -> bool:
        return self.citywide or district_name in self.districts


# ---------------------------------------------------------------------------
# Geometry helpers (local km plane)
# ---------------------------------------------------------------------------


def _to_deg(geom):
    scale = np.array([1.0 / _KX, 1.0 / _KY])
    offset = np.array([_LON0, _LAT0])
    return shapely.transform(geom, lambda a: a * scale + offset)


def _to_km(lon: float, lat: float) -> tuple[float, float]:
    return (lon - _LON0) * _KX, (lat - _LAT0) * _KY


def _round_pt(x: float, y: float) -> tuple[float, float]:
    lon, lat = _LON0 + x / _KX, _LAT0 + y / _KY
    return round(lon, _POINT_DECIMALS), round(lat, _POINT_DECIMALS)


def _polygon_parts(g) -> list[Polygon]:
    if g.geom_type == "Polygon":
        return [g] if not g.is_empty else []
    return [p for p in getattr(g, "geoms", []) if p.geom_type == "Polygon" and p.area > 0]


def _partition(region: Polygon, seeds: Sequence[Point]) -> list[Polygon]:
    """Split ``region`` into one polygon per seed: Voronoi cells clipped to it.

    Detached fragments of a clipped cell are merged into the neighbour they
    share the longest border with, so every piece is a single polygon and the
    pieces tile the region.
    """
    envelope = box(*region.buffer(5.0).bounds)
    cells = list(voronoi_diagram(MultiPoint(list(seeds)), envelope=envelope).geoms)
    pieces: list[Polygon] = []
    for s in seeds:
        cell = next(c for c in cells if c.contains(s))
        pieces.append(cell.intersection(region))
    loose: list[Polygon] = []
    for i, piece in enumerate(pieces):
        parts = _polygon_parts(piece)
        main = next((p for p in parts if p.contains(seeds[i])), max(parts, key=lambda p: p.area))
        pieces[i] = main
        loose += [p for p in parts if p is not main]
    for frag in loose:
        j = max(range(len(pieces)), key=lambda k: pieces[k].boundary.intersection(frag.boundary).length)
        merged = pieces[j].union(frag)
        pieces[j] = max(_polygon_parts(merged), key=lambda p: p.area)
    return pieces


def _scatter(
    rng: random.Random,
    region: Polygon,
    n: int,
    min_dist: float,
    inset: float,
    weight=None,
) -> list[Point]:
    """``n`` points inside ``region`` (at least ``inset`` from its border), spread apart."""
    inner = region.buffer(-inset)
    while inner.is_empty or inner.area < region.area * 0.2:
        inset *= 0.5
        inner = region.buffer(-inset)
    shapely.prepare(inner)
    minx, miny, maxx, maxy = inner.bounds
    pts: list[Point] = []
    tries = 0
    while len(pts) < n:
        tries += 1
        if tries % 3000 == 0:
            min_dist *= 0.8
        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if weight is not None and rng.random() > weight(p):
            continue
        if not inner.contains(p):
            continue
        if all(p.distance(q) >= min_dist for q in pts):
            pts.append(p)
    return pts


def _random_point_in(rng: random.Random, poly_deg: Polygon, near: Point | None = None, radius_km: float = 0.0):
    """A rounded (lon, lat) strictly inside ``poly_deg`` (optionally near a point)."""
    inner = poly_deg.buffer(-2e-5)  # about 2 m inside the border
    if inner.is_empty:
        inner = poly_deg
    shapely.prepare(inner)
    if near is not None:
        rx, ry = radius_km / _KX, radius_km / _KY
        minx, miny, maxx, maxy = near.x - rx, near.y - ry, near.x + rx, near.y + ry
    else:
        minx, miny, maxx, maxy = inner.bounds
    for _ in range(10000):
        lon = round(rng.uniform(minx, maxx), _POINT_DECIMALS)
        lat = round(rng.uniform(miny, maxy), _POINT_DECIMALS)
        if inner.contains(Point(lon, lat)):
            return lon, lat
    p = inner.representative_point()
    return round(p.x, _POINT_DECIMALS), round(p.y, _POINT_DECIMALS)


# ---------------------------------------------------------------------------
# Geography
# ---------------------------------------------------------------------------

# (district id, name, short name, kind, seed point in km, station places)
_DISTRICTS = (
    ("420102", "江岸区", "江岸", "URBAN", (3.2, 3.6), ("大智路", "一元路", "球场街", "后湖", "塔子湖")),
    ("420103", "江汉区", "江汉", "URBAN", (-0.8, 1.6), ("民族路", "花楼街", "万松园", "唐家墩")),
    ("420104", "硚口区", "硚口", "URBAN", (-5.6, 3.4), ("宝丰街", "汉正街", "古田", "易家墩")),
    ("420105", "汉阳区", "汉阳", "URBAN", (-4.6, -4.4), ("鹦鹉洲", "月湖", "四新", "琴断口")),
    ("420106", "武昌区", "武昌", "URBAN", (3.6, -3.8), ("中华路", "首义路", "水果湖", "积玉桥", "徐家棚")),
    ("420117", "新洲县", "新洲", "COUNTY", (10.0, 8.6), ("邾城", "阳逻", "仓埠", "汪集")),
)

_SEED = 20110110


def _squash(v: float, half: float) -> float:
    """Keep ``v`` within ``±half`` with a smooth roll-off instead of a flat cut."""
    knee = 0.85 * half
    if abs(v) <= knee:
        return v
    return math.copysign(knee + (half - knee) * math.tanh((abs(v) - knee) / (half - knee)), v)


@functools.cache
def _outline_km() -> Polygon:
    rng = random.Random(_SEED)
    a, b, c = (rng.uniform(0, 2 * math.pi) for _ in range(3))
    half_x = 0.15 * _KX - 0.25
    half_y = 0.125 * _KY - 0.25
    pts = []
    n = 72
    for k in range(n):
        t = 2 * math.pi * k / n + rng.uniform(-0.02, 0.02)
        r = 10.6 * (1 + 0.09 * math.sin(2 * t + a) + 0.06 * math.sin(3 * t + b) + 0.035 * math.sin(7 * t + c))
        r += rng.uniform(-0.25, 0.25)
        dt = (t - math.pi / 4 + math.pi) % (2 * math.pi) - math.pi
        r += 5.5 * math.exp(-(dt**2) / (2 * 0.45**2))  # the county's lobe to the north-east
        pts.append((_squash(r * math.cos(t), half_x), _squash(r * math.sin(t), half_y)))
    poly = Polygon(pts)
    assert poly.is_valid
    return poly


# Relative growth speed of each district over the mesh (higher = larger district).
_DISTRICT_GROWTH = (1.0, 0.85, 1.0, 1.0, 1.05, 1.35)


def _grow_districts(rng: random.Random, outline: Polygon, seeds: Sequence[Point]) -> list[Polygon]:
    """Districts with irregular borders: a fine Voronoi mesh over the city is
    shared out by growing each district from its seed across adjacent mesh
    cells with noisy costs, so every district is one connected polygon."""
    n_cells = 170
    pts = _scatter(rng, outline, n_cells, 0.6 * math.sqrt(outline.area / n_cells), 0.05)
    cells = _partition(outline, pts)
    tree = shapely.STRtree(cells)
    neighbours: list[list[int]] = []
    for i, cell in enumerate(cells):
        near = sorted(int(j) for j in tree.query(cell, predicate="intersects") if j != i)
        neighbours.append([j for j in near if cell.intersection(cells[j]).length > 1e-6])
    owner = [-1] * len(cells)
    heap: list[tuple[float, int, int]] = []
    for d, seed in enumerate(seeds):
        start = next(i for i, c in enumerate(cells) if c.contains(seed))
        heapq.heappush(heap, (0.0, start, d))
    while heap:
        cost, i, d = heapq.heappop(heap)
        if owner[i] != -1:
            continue
        owner[i] = d
        for j in neighbours[i]:
            if owner[j] == -1:
                step = pts[i].distance(pts[j]) * rng.uniform(0.6, 1.6) / _DISTRICT_GROWTH[d]
                heapq.heappush(heap, (cost + step, j, d))
    out = []
    for d in range(len(seeds)):
        merged = shapely.union_all([c for c, o in zip(cells, owner) if o == d])
        if merged.geom_type != "Polygon":
            raise AssertionError("district is not a single polygon")
        out.append(merged)
    return out


@functools.cache
def _geography():
    """Districts, stations and grids in km and degrees (internal)."""
    rng = random.Random(_SEED + 1)
    outline = _outline_km()
    d_seeds = [Point(x + rng.uniform(-0.3, 0.3), y + rng.uniform(-0.3, 0.3)) for *_, (x, y), _ in _DISTRICTS]
    d_polys = _grow_districts(rng, outline, d_seeds)

    out_districts = []
    out_stations = []
    out_grids = []
    sno = 0
    for (did, dname, dshort, dkind, _seed, places), dpoly in zip(_DISTRICTS, d_polys):
        out_districts.append((did, dname, dshort, dkind, dpoly))
        n_st = len(places)

        def weight(p, urban=dkind == "URBAN"):
            d = math.hypot(p.x, p.y)
            return max(0.3, math.exp(-d / 7.0)) if urban else 1.0

        st_seeds = _scatter(rng, dpoly, n_st, 0.6 * math.sqrt(dpoly.area / n_st), 0.5, weight)
        # Station numbering: the most central station first (it hosts the district branch).
        st_seeds.sort(key=lambda p: math.hypot(p.x, p.y))
        st_polys = _partition(dpoly, st_seeds)
        for place, seed, spoly in zip(places, st_seeds, st_polys):
            sno += 1
            sid = f"S{sno:02d}"
            out_stations.append((sid, place, did, dname, dshort, dkind, seed, spoly))
            central = math.hypot(seed.x, seed.y)
            if dkind == "COUNTY":
                n_gr = rng.randint(4, 6)
            elif central < 5.0:
                n_gr = rng.randint(7, 9)
            else:
                n_gr = rng.randint(5, 8)
            g_seeds = _scatter(rng, spoly, n_gr, 0.55 * math.sqrt(spoly.area / n_gr), 0.08)
            g_polys = _partition(spoly, g_seeds)
            g_polys.sort(key=lambda g: (g.distance(seed), g.centroid.distance(seed)))
            for gi, gpoly in enumerate(g_polys, start=1):
                c = gpoly.centroid
                dc = math.hypot(c.x, c.y)
                if dkind == "COUNTY":
                    target = 180 if gpoly.contains(seed) else 300
                elif dc < 4.5:
                    target = 60
                elif dc < 9.0:
                    target = 180
                else:
                    target = 300
                out_grids.append((f"{sid}-G{gi:02d}", place, gi, sid, target, gpoly))
    return outline, out_districts, out_stations, out_grids


@functools.cache
def _polygons():
    """All polygons in degrees, snapped to the vertex grid, as an exact coverage.

    Grids are the leaves: their shared borders are noded (every vertex of a
    neighbour lying on an edge is inserted) before the coordinates are rounded,
    so adjacent grids share identical vertices.  Stations, districts and the
    city outline are then coverage unions of their children, which makes every
    level tile its parent exactly.
    """
    _, ds, sts, gs = _geography()
    grids_km = [g[-1] for g in gs]
    coords = np.unique(np.concatenate([shapely.get_coordinates(g) for g in grids_km]), axis=0)
    vertices = shapely.multipoints(coords)
    grid_deg = []
    for g in grids_km:
        noded = shapely.snap(g, vertices, 1e-7)
        snapped = shapely.set_precision(_to_deg(noded), _GRID_DEG, mode="pointwise")
        snapped = shapely.remove_repeated_points(snapped)
        if snapped.geom_type != "Polygon" or not snapped.is_valid:
            raise AssertionError("grid polygon degenerated while snapping")
        grid_deg.append(snapped)
    by_station: dict[str, list[Polygon]] = {}
    for g, poly in zip(gs, grid_deg):
        by_station.setdefault(g[3], []).append(poly)
    station_deg = {s[0]: _coverage_union(by_station[s[0]]) for s in sts}
    by_district: dict[str, list[Polygon]] = {}
    for s in sts:
        by_district.setdefault(s[2], []).append(station_deg[s[0]])
    district_deg = {d[0]: _coverage_union(by_district[d[0]]) for d in ds}
    outline_deg = _coverage_union([district_deg[d[0]] for d in ds])
    return outline_deg, district_deg, station_deg, grid_deg


def _coverage_union(polys: list[Polygon]) -> Polygon:
    g = shapely.coverage_union_all(polys)
    if g.geom_type != "Polygon":
        raise AssertionError(f"coverage union is a {g.geom_type}")
    return g


def _phone_027(rng: random.Random, used: set[str]) -> str:
    while True:
        num = f"027-8{rng.randint(0, 9999999):07d}"
        if num not in used:
            used.add(num)
            return num


@functools.cache
def city_outline() -> CityOutline:
    poly = _polygons()[0]
    return CityOutline(name=CITY_NAME, polygon=poly, rings=_rings_of(poly))


@functools.cache
def districts() -> tuple[District, ...]:
    _, ds, _, _ = _geography()
    district_deg = _polygons()[1]
    out = []
    for did, name, short, kind, _poly_km in ds:
        poly = district_deg[did]
        out.append(District(did, name, short, kind, poly, _rings_of(poly)))
    return tuple(out)


@functools.cache
def stations() -> tuple[Station, ...]:
    _, _, sts, _ = _geography()
    station_deg = _polygons()[2]
    rng = random.Random(_SEED + 2)
    used: set[str] = set()
    out = []
    for sid, place, did, dname, _short, _kind, seed, _poly_km in sts:
        poly = station_deg[sid]
        hq = _round_pt(seed.x, seed.y)
        if not poly.contains(Point(hq)):
            raise AssertionError(f"station {sid} HQ outside its polygon")
        out.append(
            Station(
                station_id=sid,
                name=f"{dname}{place}派出所",
                place=place,
                district_id=did,
                district_name=dname,
                hq=hq,
                phone=_phone_027(rng, used),
                polygon=poly,
                rings=_rings_of(poly),
            )
        )
    return tuple(out)


@functools.cache
def grids() -> tuple[Grid, ...]:
    _, _, _, gs = _geography()
    grid_deg = _polygons()[3]
    out = []
    for (gid, place, gi, sid, target, _poly_km), poly in zip(gs, grid_deg):
        out.append(Grid(gid, f"{place}社区第{gi}网格", sid, target, poly, _rings_of(poly)))
    return tuple(out)


# ---------------------------------------------------------------------------
# People and units
# ---------------------------------------------------------------------------

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_GIVEN = (
    "伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "霞",
    "平", "刚", "桂英", "浩", "宇", "晨", "鹏", "辉", "婷", "丹", "建华", "志强", "海燕", "文", "斌", "波", "凯",
    "俊杰", "子涵", "思远", "晓东", "红梅", "国庆", "卫东", "建国", "小军", "雪", "琳", "欣怡", "亮", "峰", "振华",
    "立新", "春燕", "晓明", "志刚", "永红", "丽", "健", "博", "昊", "天佑",
)


class _Names:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()

    def __call__(self) -> str:
        while True:
            name = self.rng.choice(_SURNAMES) + self.rng.choice(_GIVEN)
            if name not in self.used:
                self.used.add(name)
                return name


class _Unique:
    def __init__(self, rng: random.Random, fmt: str, lo: int, hi: int):
        self.rng, self.fmt, self.lo, self.hi = rng, fmt, lo, hi
        self.used: set[int] = set()

    def __call__(self) -> str:
        while True:
            n = self.rng.randint(self.lo, self.hi)
            if n not in self.used:
                self.used.add(n)
                return self.fmt.format(n)


_KIND_SKILLS = {
    "COMMUNITY_OFFICER": ("COMMUNITY_LIAISON", "MEDIATION", "PATROL"),
    "PATROL_CAR": ("PATROL", "FIRST_AID", "TRAFFIC_ACCIDENT", "CROWD_CONTROL"),
    "FOOT_PATROL": ("PATROL", "FIRST_AID", "SEARCH_MISSING"),
    "CRIMINAL_INVESTIGATION": ("EVIDENCE_COLLECTION", "INTERROGATION", "FORENSICS"),
    "PUBLIC_SECURITY": ("PUBLIC_ORDER", "VENUE_INSPECTION", "MEDIATION"),
    "ECONOMIC_CRIME": ("FINANCIAL_INVESTIGATION", "EVIDENCE_COLLECTION"),
    "NARCOTICS": ("DRUG_TESTING", "DRUG_INVESTIGATION"),
    "TRAFFIC": ("TRAFFIC_ACCIDENT", "TRAFFIC_CONTROL", "DUI_TEST"),
    "SPECIAL_POLICE": ("SWAT", "NEGOTIATION", "FIREARMS", "CROWD_CONTROL"),
    "DRONE": ("DRONE_PILOT", "AERIAL_SEARCH", "SEARCH_MISSING"),
    "LEGAL_OFFICER": ("LEGAL_REVIEW", "CASE_QUALITY"),
    "ANTI_FRAUD": ("FRAUD_STOP_PAYMENT", "FRAUD_WARNING", "FINANCIAL_INVESTIGATION"),
}
_EXTRA_SKILLS = ("ENGLISH", "SIGN_LANGUAGE", "PSYCHOLOGICAL_CRISIS", "FIRST_AID", "MEDIATION")

# Call-sign prefixes for specialist units (numbered city-wide).
_SPECIALIST_SIGN = {
    "CRIMINAL_INVESTIGATION": "刑侦",
    "PUBLIC_SECURITY": "治安",
    "ECONOMIC_CRIME": "经侦",
    "NARCOTICS": "禁毒",
    "TRAFFIC": "交警",
    "SPECIAL_POLICE": "特警",
    "DRONE": "鹰眼",
    "LEGAL_OFFICER": "法制",
    "ANTI_FRAUD": "反诈",
}
_VEHICLE_KINDS = {"PATROL_CAR", "CRIMINAL_INVESTIGATION", "TRAFFIC", "SPECIAL_POLICE", "DRONE"}
_CREW = {
    "COMMUNITY_OFFICER": (1, 1),
    "PATROL_CAR": (2, 2),
    "FOOT_PATROL": (2, 3),
    "CRIMINAL_INVESTIGATION": (2, 3),
    "PUBLIC_SECURITY": (2, 2),
    "ECONOMIC_CRIME": (2, 2),
    "NARCOTICS": (2, 3),
    "TRAFFIC": (2, 2),
    "SPECIAL_POLICE": (4, 6),
    "DRONE": (1, 2),
    "LEGAL_OFFICER": (1, 1),
    "ANTI_FRAUD": (2, 2),
}


@functools.cache
def units() -> tuple[Unit, ...]:
    rng = random.Random(_SEED + 3)
    names = _Names(rng)
    police_no = _Unique(rng, "P110{:04d}", 1000, 9999)
    plate_no = _Unique(rng, "鄂A·{:04d}警", 1000, 9999)
    sts = stations()
    gs_by_station: dict[str, list[Grid]] = {}
    for g in grids():
        gs_by_station.setdefault(g.station_id, []).append(g)
    short = {d.district_id: d.short_name for d in districts()}
    district_hub: dict[str, str] = {}
    for s in sts:
        district_hub.setdefault(s.district_id, s.station_id)
    station_in_district: dict[str, int] = {}
    counters: dict[str, int] = {}
    out: list[Unit] = []

    def make(station: Station, kind: str, scope: str, call_sign: str, home, grid_ids=()):
        seq = counters.get(station.station_id, 0) + 1
        counters[station.station_id] = seq
        skills = list(_KIND_SKILLS[kind])
        if rng.random() < 0.35:
            extra = rng.choice(_EXTRA_SKILLS)
            if extra not in skills:
                skills.append(extra)
        lo, hi = _CREW[kind]
        officers = tuple(Officer(police_no(), names()) for _ in range(rng.randint(lo, hi)))
        out.append(
            Unit(
                unit_id=f"U-{station.station_id}-{seq:03d}",
                call_sign=call_sign,
                kind=kind,
                station_id=station.station_id,
                scope=scope,
                skills=tuple(skills),
                plate=plate_no() if kind in _VEHICLE_KINDS else "",
                officers=officers,
                home=home,
                grid_ids=tuple(grid_ids),
            )
        )

    specialist_no: dict[str, int] = {}

    def specialist(station: Station, kind: str, scope: str):
        n = specialist_no.get(kind, 0) + 1
        specialist_no[kind] = n
        home = _random_point_in(rng, station.polygon, station.hq_point, 0.15)
        make(station, kind, scope, f"{_SPECIALIST_SIGN[kind]}{n:02d}", home)

    for st in sts:
        idx = station_in_district[st.district_id] = station_in_district.get(st.district_id, 0) + 1
        prefix = short[st.district_id]
        # Community officers (全科): each responsible for one or two grids.
        sgrids = gs_by_station[st.station_id]
        n_officers = min(len(sgrids), (len(sgrids) + 1) // 2 + rng.randint(0, 1))
        chunks: list[list[Grid]] = []
        remaining = list(sgrids)
        for k in range(n_officers):
            left = n_officers - k
            take = 2 if len(remaining) > left else 1
            chunks.append(remaining[:take])
            remaining = remaining[take:]
        for k, chunk in enumerate(chunks, start=1):
            home = _random_point_in(rng, chunk[0].polygon)
            make(st, "COMMUNITY_OFFICER", "STATION", f"{prefix}社{idx}{k}", home, [g.grid_id for g in chunk])
        for k in range(1, rng.randint(2, 4) + 1):
            make(st, "PATROL_CAR", "STATION", f"{prefix}{idx}{k}", _random_point_in(rng, st.polygon))
        for k in range(1, rng.randint(1, 3) + 1):
            home = _random_point_in(rng, st.polygon, st.hq_point, 1.2)
            make(st, "FOOT_PATROL", "STATION", f"{prefix}步{idx}{k}", home)
        if district_hub[st.district_id] == st.station_id:
            # The district branch (分局) sits with its most central station.
            for kind in ("CRIMINAL_INVESTIGATION", "PUBLIC_SECURITY", "TRAFFIC", "LEGAL_OFFICER", "ANTI_FRAUD"):
                specialist(st, kind, "DISTRICT")
        elif idx % 2 == 0:
            specialist(st, "LEGAL_OFFICER", "STATION")

    # City-level specialists, based at the most central stations.
    by_center = sorted(sts, key=lambda s: math.hypot(*_to_km(*s.hq)))
    city_hq, second = by_center[0], by_center[1]
    for kind, n in (("ANTI_FRAUD", 2), ("ECONOMIC_CRIME", 2), ("NARCOTICS", 2), ("SPECIAL_POLICE", 2), ("DRONE", 2)):
        for _ in range(n):
            specialist(city_hq, kind, "CITY")
    specialist(second, "SPECIAL_POLICE", "CITY")
    specialist(second, "DRONE", "CITY")
    county = next(s for s in sts if s.district_id == "420117")
    specialist(county, "DRONE", "DISTRICT")
    out.sort(key=lambda u: (u.station_id, u.unit_id))
    return tuple(out)


# ---------------------------------------------------------------------------
# 12345 departments
# ---------------------------------------------------------------------------

_URBAN = ("江岸区", "江汉区", "硚口区", "汉阳区", "武昌区")
_STREET_MATTERS = ("NOISE", "NEIGHBOR_DISPUTE", "SANITATION", "ELDERLY_ASSISTANCE", "PROPERTY_MANAGEMENT")

# (name, matter codes, district names or () for the whole city)
_DEPARTMENTS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("江城市城市管理执法局", ("ILLEGAL_CONSTRUCTION", "STREET_VENDOR", "CONSTRUCTION_NOISE", "GARBAGE", "SANITATION", "ILLEGAL_PARKING"), ()),
    ("江城市交通运输局", ("TAXI_COMPLAINT", "BUS_SERVICE", "ROAD_DAMAGE"), ()),
    ("江城燃气集团", ("GAS_LEAK", "GAS_OUTAGE"), _URBAN),
    ("江城市市政园林局", ("STREET_LIGHT", "TREE_HAZARD", "MANHOLE_COVER", "GREEN_SPACE"), ()),
    ("江城市住房和城乡建设局", ("CONSTRUCTION_SAFETY", "OLD_COMMUNITY_RENOVATION"), ()),
    ("江城市市场监督管理局", ("FOOD_SAFETY", "PRICE_GOUGING", "CONSUMER_DISPUTE", "ELEVATOR_FAULT"), ()),
    ("江城市人力资源和社会保障局", ("WAGE_ARREARS", "SOCIAL_INSURANCE", "LABOR_DISPUTE"), ()),
    ("国网江城供电公司", ("POWER_OUTAGE", "POWER_LINE_HAZARD"), ()),
    ("江城水务集团", ("WATER_OUTAGE", "PIPE_BURST", "WATER_QUALITY", "SEWER_BLOCKAGE"), ()),
    ("江城市生态环境局", ("AIR_POLLUTION", "WATER_POLLUTION", "INDUSTRIAL_NOISE", "CONSTRUCTION_NOISE"), ()),
    ("江城市卫生健康委员会", ("MEDICAL_DISPUTE", "ILLEGAL_CLINIC"), ()),
    ("江城市教育局", ("SCHOOL_FEES", "SCHOOL_ENROLLMENT", "OFF_CAMPUS_TRAINING"), ()),
    ("江城市民政局", ("ELDERLY_ASSISTANCE", "HOMELESS_ASSISTANCE", "MARRIAGE_REGISTRATION"), ()),
    ("江城市公安局交通管理局", ("ILLEGAL_PARKING", "TRAFFIC_SIGNAL", "TRAFFIC_CONGESTION", "DRIVING_LICENSE", "VEHICLE_REGISTRATION"), ()),
    ("江城市住房保障和房屋管理局", ("HOUSING_RENTAL", "PROPERTY_MANAGEMENT", "REAL_ESTATE_REGISTRATION"), ()),
    ("江城市文化和旅游局", ("TOURISM_COMPLAINT", "ENTERTAINMENT_VENUE"), ()),
    ("江城市应急管理局", ("SAFETY_HAZARD", "HAZARDOUS_CHEMICALS"), ()),
    ("江城市消防救援支队", ("FIRE_HAZARD", "BLOCKED_FIRE_EXIT"), ()),
    ("江城市公安局人口管理支队", ("ID_CARD", "HOUSEHOLD_REGISTRATION"), ()),
    ("江城市公安局出入境管理支队", ("PASSPORT",), ()),
    ("江城市自然资源和规划局", ("ILLEGAL_LAND_USE",), ()),
    ("江城市水利和湖泊局", ("WATERLOGGING", "LAKE_PROTECTION"), ()),
    ("国家税务总局江城市税务局", ("TAX_SERVICE",), ()),
    ("江城市医疗保障局", ("MEDICAL_INSURANCE",), ()),
    ("江城市邮政管理局", ("EXPRESS_DELIVERY",), ()),
    ("江城市通信管理办公室", ("TELECOM_SERVICE",), ()),
    ("江城市残疾人联合会", ("DISABILITY_ASSISTANCE",), ()),
    ("江城市妇女联合会", ("WOMEN_CHILDREN_RIGHTS",), ()),
    ("江城市农业农村局", ("AGRI_INPUTS", "STRAY_ANIMALS"), ()),
    ("新洲县天然气有限公司", ("GAS_LEAK", "GAS_OUTAGE"), ("新洲县",)),
    ("江岸区各街道办事处", _STREET_MATTERS, ("江岸区",)),
    ("江汉区各街道办事处", _STREET_MATTERS, ("江汉区",)),
    ("硚口区各街道办事处", _STREET_MATTERS, ("硚口区",)),
    ("汉阳区各街道办事处", _STREET_MATTERS, ("汉阳区",)),
    ("武昌区各街道办事处", _STREET_MATTERS, ("武昌区",)),
    ("新洲县各街道办事处", _STREET_MATTERS, ("新洲县",)),
)


@functools.cache
def departments() -> tuple[Department, ...]:
    rng = random.Random(_SEED + 4)
    names = _Names(rng)
    used: set[str] = set()
    out = []
    for i, (name, codes, area) in enumerate(_DEPARTMENTS, start=1):
        out.append(
            Department(
                dept_id=f"D{i:02d}",
                name=name,
                matters=tuple(Matter(c, MATTERS[c]) for c in codes),
                districts=area,
                supervisor=names(),
                phone=_phone_027(rng, used),
            )
        )
    return tuple(out)


# ---------------------------------------------------------------------------
# Sample citizen reports
# ---------------------------------------------------------------------------

# (channel, incident type, station index or None, "point" | "address" | "none",
#  caller name or None, address suffix, description).  ``{place}`` in the
# description and the address is replaced by the station's place name.
_REPORTS: tuple[tuple[str, str, int | None, str, str | None, str, str], ...] = (
    ("PHONE", "FIGHT", 0, "point", "王先生", "烧烤一条街",
     "{place}烧烤一条街有五六个人在打架，有人拿啤酒瓶砸人，已经有人头上流血了，你们快来！"),
    ("WECHAT", "THEFT", 3, "point", "李女士", "幸福小区5栋",
     "我的电动车停在小区楼下被偷了，昨晚十点还在，今天早上七点下楼发现锁被剪断了，是一辆绿色的雅迪电动车。"),
    ("PHONE", "TELECOM_FRAUD", 5, "point", "陈女士", "阳光花园",
     "我刚接到一个自称公安局的电话，说我的银行卡涉嫌洗钱，让我把钱转到“安全账户”，我已经用手机银行分三笔转了八万六千元，挂了电话才反应过来被骗了。"),
    ("APP", "TELECOM_FRAUD", 8, "point", None, "",
     "在网上做刷单返利，前几单返了几十块钱，后来对方说要连续做任务才能提现，我用支付宝和建设银行卡一共转了两万三千元，现在对方把我拉黑了。"),
    ("PHONE", "TRAFFIC_ACCIDENT", 1, "point", "刘先生", "路口",
     "{place}路口一辆小轿车把骑电动车的人撞了，人躺在地上起不来，腿上一直在流血，需要救护车。"),
    ("SMS", "TRAFFIC_ACCIDENT", 10, "point", None, "高架桥下",
     "两辆车在高架桥下追尾了，没人受伤，但是对方司机不肯挪车，堵在路中间，双方在吵架。"),
    ("PHONE", "MISSING_PERSON", 12, "point", "赵先生", "公园",
     "我父亲今年78岁，有老年痴呆，今天下午三点在{place}公园散步后就没回来，穿灰色夹克，身高一米七左右，没带手机。"),
    ("VIDEO", "MISSING_PERSON", 2, "point", "孙女士", "购物中心",
     "我女儿6岁，在{place}购物中心里走丢了，穿粉色连衣裙，扎两个小辫子，已经找了二十分钟了。"),
    ("SILENT_ALARM", "DOMESTIC_VIOLENCE", 6, "point", None, "",
     "【一键无声报警】丈夫喝醉了在家打人，我躲在卫生间不敢出声，请派人来。"),
    ("PHONE", "ROBBERY", 14, "point", "周女士", "菜市场旁边巷子",
     "我刚在菜市场旁边的巷子里被两个骑摩托车的人抢了包，包里有手机和两千多块现金，他们往北边跑了。"),
    ("TIP_OFF", "DRUGS", 16, "address", None, "锦绣小区3栋502室",
     "举报：{place}锦绣小区3栋502经常半夜有陌生人进出，屋里飘出很浓的怪味，怀疑有人在里面吸毒。"),
    ("MAILBOX", "GAMBLING", 18, "address", None, "聚友茶楼",
     "反映：{place}聚友茶楼二楼长期有人聚众赌博，每天下午开始，赌资很大，希望公安机关查处。"),
    ("PATROL", "SUSPICIOUS_PERSON", 7, "point", None, "地下停车场",
     "巡逻发现一名男子在地下停车场逐个拉车门，形迹可疑，已上前盘查，请求核查身份。"),
    ("WALK_IN", "THEFT", 4, "point", "吴先生", "派出所",
     "本人到所报案：昨天晚上在地铁二号线上手机被偷了，是一部黑色苹果手机，发现时外套口袋被划开了。"),
    ("PHONE", "DRUNK_DRIVING", 20, "point", None, "主干道",
     "前面一辆白色越野车在马路上左右乱晃，好几次差点撞到护栏，司机可能喝了酒，车牌是鄂A开头的。"),
    ("QQ", "TELECOM_FRAUD", 9, "point", "郑女士", "写字楼",
     "QQ上有人冒充我们老板，让我给供应商转账，我从公司对公账户转了十五万元到他指定的银行账户，刚才打电话问老板才知道被骗了。"),
    ("KIOSK", "DISPUTE", 11, "point", None, "地铁站口",
     "我和出租车司机因为车费起了纠纷，他故意绕路还多收钱，现在不让我下车。"),
    ("PHONE", "FIGHT", 13, "point", "马先生", "小区",
     "楼上邻居半夜吵闹，我上去理论，他们两个人把我推倒在楼道里打，现在还在我家门口骂。"),
    ("PHONE", "SUICIDE_RISK", 15, "point", "何先生", "江边",
     "我朋友刚发微信说不想活了，还发了一张在江边的照片，现在电话打不通，人应该就在{place}江边。"),
    ("MINI_PROGRAM", "THEFT", 17, "point", None, "路边停车场",
     "车停在路边停车场，车窗被人砸了，放在后座的笔记本电脑和背包都被偷了。"),
    ("WEIBO", "TELECOM_FRAUD", 19, "point", None, "",
     "我妈接到电话说“孙子出车祸了”，对方让她往一个银行卡里转三万块手术费，她已经去银行柜台转了，怎么办？"),
    ("HOTLINE_12345", "FIGHT", 21, "point", None, "KTV门口",
     "12345转来：市民反映{place}一家KTV门口有人持刀斗殴，现场有人受伤。"),
    ("PHONE", "THEFT", 22, "address", "邓女士", "农贸市场",
     "在{place}农贸市场买菜的时候钱包被人偷了，里面有身份证、银行卡和八百多块钱。"),
    ("PHONE", "ILLEGAL_PARKING", 0, "point", "钱先生", "金桥小区车库",
     "我家车库门口被一辆黑色轿车堵住了，车上留的电话打不通，我急着上班开不出去。"),
    ("HOTLINE_12345", "ILLEGAL_PARKING", 23, "point", None, "小区门口",
     "小区门口人行道上长期停满了车，轮椅和婴儿车都过不去，希望有关部门管一管。"),
    ("PHONE", "NOISE", 3, "point", "林女士", "小区",
     "楼上邻居每天晚上十一点以后还在蹦跳、拖桌椅，吵得孩子没法睡觉，沟通了好多次都没用，这种噪音扰民谁来管？"),
    ("WECHAT", "CONSTRUCTION_NOISE", 5, "point", None, "工地",
     "旁边工地晚上十二点了还在打桩施工，噪音特别大，整栋楼的人都睡不着。"),
    ("PHONE", "GAS_LEAK", 8, "point", "黄女士", "小区",
     "我家厨房里闻到很浓的燃气味，已经关了阀门开了窗，不敢开灯，请赶紧派人来看看。"),
    ("APP", "WATER_OUTAGE", 10, "point", None, "小区",
     "我们小区从早上八点开始停水，事先没有任何通知，到现在还没来水。"),
    ("PHONE", "POWER_OUTAGE", 24, "point", "徐先生", "",
     "整栋楼突然停电了，问了物业说不是他们的问题，已经两个小时了还没来电。"),
    ("WEIBO", "STREET_LIGHT", 12, "address", None, "主干道",
     "{place}主干道这一段的路灯坏了一个多星期，晚上黑漆漆的，行人过马路很不安全。"),
    ("PHONE", "WAGE_ARREARS", 25, "point", "罗先生", "工地",
     "我在工地干了半年，老板拖欠我们十几个工人的工资，一共二十多万，现在人找不到了。"),
    ("SMS", "STREET_VENDOR", 14, "point", None, "小学门口",
     "学校门口每天放学时都有很多流动摊贩占道经营，路都堵死了，孩子们很危险。"),
    ("PHONE", "PIPE_BURST", 16, "point", None, "路边",
     "路边自来水管爆了，水冒起一米多高，马路都淹了。"),
    ("WECHAT", "FOOD_SAFETY", 1, "point", "宋女士", "美食街",
     "在一家餐馆吃饭，菜里吃出了虫子，老板态度很恶劣，不给处理。"),
    ("MINI_PROGRAM", "SEWER_BLOCKAGE", 20, "point", None, "",
     "小区下水道堵了好几天，污水漫到路面上，臭气熏天。"),
    ("PHONE", "GAS_LEAK", 23, "point", "曾先生", "饭店门口",
     "饭店门口的燃气管道好像漏气了，能听到嘶嘶的声音，味道很大。"),
    ("PHONE", "CONSULTATION_HOUSEHOLD", None, "none", "张女士", "",
     "请问身份证丢了，补办需要带什么材料？可以在外地补办吗？"),
    ("PHONE", "CONSULTATION_EXIT_ENTRY", None, "none", None, "",
     "护照怎么办理？需要带哪些证件，大概多长时间能拿到？"),
    ("APP", "CONSULTATION_TRAFFIC", None, "none", None, "",
     "我的驾驶证快到期了，换证要去哪里办？需要体检吗？"),
    ("WECHAT", "CONSULTATION_HOUSEHOLD", None, "none", "胡先生", "",
     "孩子刚出生，上户口需要准备哪些材料？"),
    ("HOTLINE_12345", "CONSULTATION_HOUSEHOLD", None, "none", None, "",
     "外地户口在江城工作，居住证怎么申请？"),
    ("PHONE", "CONSULTATION_CERTIFICATE", None, "none", "高先生", "",
     "请问无犯罪记录证明在哪里开？需要本人去吗？"),
    ("SMS", "CONSULTATION_EXIT_ENTRY", None, "none", None, "",
     "请问护照过期了怎么换发？港澳通行证可以一起办吗？"),
    ("PHONE", "PRANK", None, "none", None, "",
     "哈哈，我家着火了……骗你的，就想试试110能不能打通。"),
    ("PHONE", "PRANK", None, "none", None, "",
     "（儿童声音）喂，警察叔叔，我家有怪兽……（嬉笑后挂断）"),
    ("PHONE", "MISDIAL", None, "none", None, "",
     "不好意思打错了，我本来想打114查号码。"),
    ("PHONE", "HARASSING_CALL", None, "none", None, "",
     "（来电人反复辱骂接警员，无具体警情，劝说后仍继续拨打）"),
)

_MOBILE_PREFIXES = (
    "138", "139", "135", "136", "150", "151", "158", "186", "187", "188", "177", "199",
    "133", "153", "180", "189", "155", "166", "198", "182",
)


@functools.cache
def _reports() -> tuple[dict[str, Any], ...]:
    rng = random.Random(_SEED + 5)
    sts = stations()
    used: set[str] = set()
    out = []
    for i, (channel, itype, sidx, mode, name, suffix, desc) in enumerate(_REPORTS, start=1):
        while True:
            phone = rng.choice(_MOBILE_PREFIXES) + f"{rng.randint(0, 99999999):08d}"
            if phone not in used:
                used.add(phone)
                break
        location = None
        address = ""
        station_id = None
        district = None
        if sidx is not None:
            st = sts[sidx]
            station_id, district = st.station_id, st.district_name
            address = f"{st.district_name}{st.place}{suffix or '附近'}"
            desc = desc.format(place=st.place)
            if mode == "point":
                lon, lat = _random_point_in(rng, st.polygon)
                location = {"longitude": lon, "latitude": lat}
        out.append(
            {
                "report_id": f"R{i:03d}",
                "channel": channel,
                "caller_phone": phone,
                "caller_name": name,
                "location": location,
                "address": address,
                "description": desc,
                "expected_category": INCIDENT_TYPES[itype].category,
                "expected_incident_type": itype,
                "expected_station_id": station_id,
                "expected_district": district,
            }
        )
    return tuple(out)


def sample_reports() -> list[dict[str, Any]]:
    """Sample citizen reports for intake, as fresh dicts (safe to mutate).

    Keys: report_id, channel, caller_phone, caller_name (str or None),
    location ({"longitude", "latitude"} or None), address ("" when unknown),
    description, expected_category, expected_incident_type,
    expected_station_id and expected_district (None when the report has no place).
    """
    return copy.deepcopy(list(_reports()))


# ---------------------------------------------------------------------------
# Fingerprint
# ---------------------------------------------------------------------------


def _plain(obj: Any) -> Any:
    if isinstance(obj, (Polygon,)):
        return shapely.to_wkt(obj, rounding_precision=-1)
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _plain(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


@functools.cache
def dataset_fingerprint() -> str:
    """SHA-256 over all generated data; equal fingerprints mean identical data."""
    data = {
        "outline": city_outline(),
        "districts": districts(),
        "stations": stations(),
        "grids": grids(),
        "units": units(),
        "departments": departments(),
        "reports": _reports(),
    }
    blob = json.dumps(_plain(data), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()

