"""Places (就近、属地): standard addresses of the gazetteer and the police stations' jurisdictions,
a point located to its station and community grid through an R-tree. Pure: no database, no gRPC."""
from __future__ import annotations

import math
from dataclasses import dataclass

import shapely
from shapely import STRtree
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

# A point closer than this to a jurisdiction boundary is flagged as a border case.
BORDER_TOLERANCE_M = 30.0
METRES_PER_DEGREE_LAT = 111_320.0


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
    # Other stations whose jurisdiction lies within the border tolerance (边界警情, shared with them).
    shared_station_ids: tuple[str, ...] = ()


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
        self._tolerance_deg = tolerance_deg
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
        shared = self._neighbours(p, lat, idx, distance) if border else ()
        return Located(station.station_id, station.name, station.district, grid_id, border, distance, shared)

    def _neighbours(self, p: Point, lat: float, chosen: int, distance_m: float) -> tuple[str, ...]:
        """The other stations within the border tolerance of the point (beyond the chosen station's
        distance, for a point outside every station)."""
        reach = self._tolerance_deg * (1 + distance_m / BORDER_TOLERANCE_M)
        near = self._station_tree.query(p.buffer(reach), predicate="intersects")
        found = {self.stations[int(i)].station_id for i in near if int(i) != chosen
                 and self._metres(lat, self.stations[int(i)].boundary.distance(p)) < distance_m + BORDER_TOLERANCE_M}
        return tuple(sorted(found - {self.stations[chosen].station_id}))
