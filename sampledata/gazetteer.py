"""A standard address gazetteer (标准地址库) for the sample city 江城市.

Address codes follow the 21-digit pattern of Wuhan's standard addresses:

    district (6) | street (3) | community (3) | road (3) | house number (4) | building (2)
    420102       | 001        | 003           | 002      | 0128             | 03

Building "00" is the gate address of a house number. Every station's area
gets one street office (街道), one community (社区) per grid, a handful of
roads (路、街、大道、巷), and numbered houses on them, some of them residential
compounds (小区) with buildings. Every point lies inside its grid (so inside
its station). Deterministic: fixed seed, same output on every machine.
"""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import shapely
from shapely.geometry import Point, Polygon

from sampledata.city import CITY_NAME, grids, stations

_SEED = 20110121
HOUSES_PER_GRID = (9, 15)

_COMMUNITY_NAMES = (
    "三阳", "花桥", "育才", "新村", "永安", "胜利", "建设", "和平", "工农", "长丰", "百步亭", "丹水池",
    "惠民", "福星", "幸福", "复兴", "车站", "黄浦", "劳动", "友谊", "同兴", "长青", "光华", "汉兴",
    "紫阳", "紫薇", "兴业", "南湖", "东亭", "水陆", "晴川", "龟山", "首义", "彭刘杨", "大成", "积玉",
    "新河", "红旗", "滨江", "沿河", "宝善", "仁寿", "六合", "三眼桥", "台北", "香港", "常青", "江南",
)
_ROAD_NAMES = (
    "中山大道", "解放大道", "建设大道", "发展大道", "京汉大道", "沿江大道", "胜利街", "黎黄陂路", "车站路",
    "青年路", "新华路", "江汉路", "前进一路", "友谊路", "航空路", "长港路", "汉口北大道", "兴业路",
    "武胜路", "汉中路", "利济北路", "古田二路", "鹦鹉大道", "龙阳大道", "汉阳大道", "琴台大道", "四新大道",
    "和平大道", "武珞路", "中北路", "民主路", "彭刘杨路", "积玉桥街", "临江大道", "徐东大街", "友谊大道",
    "新洲大街", "阳逻大道", "商业街", "新春巷", "花园巷", "育才路", "文化路", "幸福路", "工农路", "体育街",
)
_COMPOUNDS = (
    "锦绣小区", "幸福小区", "阳光花园", "金桥小区", "翠园小区", "丽水佳园", "江景花园", "兴华小区",
    "福星家园", "育才花园", "锦江小区", "怡和苑", "和平里小区", "建设新村", "汉兴小区", "紫阳小区",
    "滨江苑", "常青花园", "百合园", "东方花城", "南湖花园", "水岸星城", "书香门第", "康乐小区",
)
_POIS = ("农贸市场", "菜市场", "茶楼", "购物中心", "人民医院", "实验小学", "中学", "公园", "地铁站",
         "汽车站", "超市", "网吧", "KTV", "宾馆", "加油站", "停车场")


@dataclass(frozen=True)
class Address:
    """One standard address."""

    code: str  # 21 digits
    full_address: str  # "江城市江岸区大智街道三阳社区中山大道128号锦绣小区3栋"
    district_id: str
    district: str
    street: str
    community: str
    road: str
    house_number: str  # "128号"
    building: str  # "锦绣小区3栋", "人民医院", or ""
    lon: float
    lat: float
    station_id: str
    grid_id: str


def _street_name(place: str) -> str:
    stem = place[:-1] if place[-1] in "路街" and len(place) > 2 else place
    return stem + "街道"


def _place_road(place: str) -> str:
    return place if place[-1] in "路街" else place + "路"


def _point_in(rng: random.Random, poly: Polygon) -> tuple[float, float]:
    inner = poly.buffer(-3e-5)  # about 3 m inside the border
    if inner.is_empty:
        inner = poly
    shapely.prepare(inner)
    minx, miny, maxx, maxy = inner.bounds
    for _ in range(10000):
        lon, lat = round(rng.uniform(minx, maxx), 6), round(rng.uniform(miny, maxy), 6)
        if inner.contains(Point(lon, lat)):
            return lon, lat
    p = inner.representative_point()
    return round(p.x, 6), round(p.y, 6)


@functools.cache
def _addresses() -> tuple[Address, ...]:
    rng = random.Random(_SEED)
    out: list[Address] = []
    street_no: dict[str, int] = {}
    grids_of: dict[str, list] = {}
    for g in grids():
        grids_of.setdefault(g.station_id, []).append(g)
    for st in stations():
        street_no[st.district_id] = street_no.get(st.district_id, 0) + 1
        street_code = f"{street_no[st.district_id]:03d}"
        street = _street_name(st.place)
        roads = [_place_road(st.place)] + rng.sample([r for r in _ROAD_NAMES if r != st.place], 4)
        communities = [st.place + "社区"] + [n + "社区" for n in rng.sample(_COMMUNITY_NAMES, len(grids_of[st.station_id]))]
        for ci, g in enumerate(sorted(grids_of[st.station_id], key=lambda g: g.grid_id)):
            community = communities[ci]
            community_code = f"{ci + 1:03d}"
            used: set[tuple[int, int]] = set()
            for _ in range(rng.randint(*HOUSES_PER_GRID)):
                ri = rng.randrange(len(roads))
                number = rng.randint(1, 399)
                if (ri, number) in used:
                    continue
                used.add((ri, number))
                kind = rng.random()
                buildings: list[tuple[int, str]]
                if kind < 0.35:  # a residential compound with buildings
                    compound = rng.choice(_COMPOUNDS)
                    buildings = [(b, f"{compound}{b}栋") for b in range(1, rng.randint(3, 9))]
                elif kind < 0.55:
                    buildings = [(0, f"{st.place}{rng.choice(_POIS)}")]
                else:
                    buildings = [(0, "")]
                base = _point_in(rng, g.polygon)
                for bno, building in buildings:
                    # Buildings of one compound stand within about 60 m of its gate.
                    lon, lat = round(base[0] + rng.uniform(-6e-4, 6e-4), 6), round(base[1] + rng.uniform(-5e-4, 5e-4), 6)
                    if bno == 0 or not g.polygon.contains(Point(lon, lat)):
                        lon, lat = base
                    road = roads[ri]
                    code = f"{st.district_id}{street_code}{community_code}{ri + 1:03d}{number:04d}{bno:02d}"
                    full = f"{CITY_NAME}{st.district_name}{street}{community}{road}{number}号{building}"
                    out.append(Address(code, full, st.district_id, st.district_name, street, community, road,
                                       f"{number}号", building, lon, lat, st.station_id, g.grid_id))
    out.sort(key=lambda a: a.code)
    return tuple(out)


def addresses() -> tuple[Address, ...]:
    """The sample gazetteer, sorted by address code."""
    return _addresses()
