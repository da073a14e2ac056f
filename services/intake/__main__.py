"""`python -m services.intake [serve|migrate|seed]`."""
from pathlib import Path

from smart110.intake.v1 import intake_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime, ServiceSpec, main
from services.runtime.timeutil import now

from . import followers, knowledge, policy
from .api import IntakeServicer
from .store import metadata, runtime_tables, upsert_addresses, upsert_grid, upsert_station


def build(rt: Runtime) -> list[tuple]:
    followers.subscribe(rt)
    return [(pb_grpc.add_IntakeServiceServicer_to_server, IntakeServicer(rt),
             pb.DESCRIPTOR.services_by_name["IntakeService"].full_name)]


def seed(rt: Runtime) -> None:
    """Loads the sample city's stations, grids, address gazetteer and the consultation knowledge base
    (idempotent)."""
    from sampledata import city, gazetteer, knowledge as knowledge_seed

    with rt.engine.begin() as conn:
        for s in city.stations():
            upsert_station(conn, dict(station_id=s.station_id, name=s.name, district=s.district_name,
                                      hq_lon=s.hq[0], hq_lat=s.hq[1], boundary=s.geojson()))
        for g in city.grids():
            upsert_grid(conn, dict(grid_id=g.grid_id, station_id=g.station_id, name=g.name,
                                   arrival_target_seconds=g.arrival_target_s, boundary=g.geojson()))
        knowledge.upsert_seed(conn, knowledge_seed.entries(), now())
        upsert_addresses(conn, [
            dict(code=a.code, full_address=a.full_address, district=a.district, street=a.street,
                 community=a.community, road=a.road, house_number=a.house_number, building=a.building,
                 lon=a.lon, lat=a.lat, station_id=a.station_id, grid_id=a.grid_id)
            for a in gazetteer.addresses()
        ])


SPEC = ServiceSpec(
    name="intake", metadata=metadata, tables=runtime_tables,
    migrations=Path(__file__).parent / "migrations", build=build, seed=seed,
    policies=policy.POLICIES,
)

if __name__ == "__main__":
    main(SPEC)
