"""Intake's sample data: the sample city's stations and community grids, its standard address
gazetteer and the consultation knowledge base's seed entries (idempotent)."""
from __future__ import annotations

from sampledata import city, gazetteer, knowledge as knowledge_seed

from services.runtime.app import Runtime

from .domain.places import GridArea, JurisdictionIndex, StationArea
from .knowledge import Entry
from .store import KnowledgeRepository, PlaceRepository


def sample_jurisdiction() -> JurisdictionIndex:
    """The sample city's stations and grids as intake locates reports in them, without a database
    (the tests, benches and simulations that place reports as intake would)."""
    return JurisdictionIndex(
        [StationArea(s.station_id, s.name, s.district_name, s.hq[0], s.hq[1], s.polygon) for s in city.stations()],
        [GridArea(g.grid_id, g.station_id, g.name, g.arrival_target_s, g.polygon) for g in city.grids()])


def seed(rt: Runtime) -> None:
    """Loads the stations, grids, address gazetteer and knowledge base; what is there is kept or updated."""
    with rt.engine.begin() as conn:
        places = PlaceRepository(conn)
        for s in city.stations():
            places.put_station(dict(station_id=s.station_id, name=s.name, district=s.district_name,
                                    hq_lon=s.hq[0], hq_lat=s.hq[1], boundary=s.geojson()))
        for g in city.grids():
            places.put_grid(dict(grid_id=g.grid_id, station_id=g.station_id, name=g.name,
                                 arrival_target_seconds=g.arrival_target_s, boundary=g.geojson()))
        KnowledgeRepository(conn).add_seeds(
            [Entry(e.entry_id, e.topic, e.question, e.answer, tuple(e.keywords)) for e in knowledge_seed.entries()],
            rt.clock())
        places.put_addresses([
            dict(code=a.code, full_address=a.full_address, district=a.district, street=a.street,
                 community=a.community, road=a.road, house_number=a.house_number, building=a.building,
                 lon=a.lon, lat=a.lat, station_id=a.station_id, grid_id=a.grid_id)
            for a in gazetteer.addresses()
        ])
