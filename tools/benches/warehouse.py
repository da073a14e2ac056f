"""Warehouse (警情数据大水库): bulk load rate and size, and the analytics' latency at scale.

On a fresh embedded Postgres (or DATABASE_URL), as the warehouse's own role: loads a generated history of
WAREHOUSE_BENCH_REPORTS reports (default 1,000,000; `--reports` when run as `python -m
tools.benches.warehouse`) over three years with the bulk load (COPY, then the set-based rollups), then
serves the warehouse in-process and times, over gRPC with a commander's token: a city-year heat map, a
station's 13-month daily trend with 同比 and 环比, a district's KPIs for a month and a 24-hour threshold
check (minute-precise ends), each with a window moved by a few days every round. Also the time to apply
one intake event (fact row and rollups, through the real consumer with its inbox) at 100 events/s.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time
import uuid
from datetime import datetime, timedelta, timezone

import grpc

from sampledata import city
from smart110.common.v1 import common_pb2, events_pb2
from smart110.intake.v1 import intake_service_pb2 as ipb
from smart110.warehouse.v1 import warehouse_service_pb2 as pb
from smart110.warehouse.v1 import warehouse_service_pb2_grpc as pb_grpc
from services.runtime import migrate
from services.runtime.app import all_policies, assemble, open_runtime
from services.runtime.config import Settings
from services.runtime.db import ensure_service_database
from services.runtime.server import create_server
from services.warehouse import seed
from services.warehouse.__main__ import SPEC
from services.warehouse.domain import CITY_TIME
from services.warehouse.store import LoadRepository
from tools.benches._common import percentiles
from tools.devstack import scratch_postgres
from tools.token import mint

NEEDS_STACK = False
DEFAULT_REPORTS = 1_000_000
YEARS = 3
ROUNDS = 40
EVENTS = 200


def _ts(t: datetime):
    out = events_pb2.Event().occur_time
    out.FromDatetime(t)
    return out


def _timed(fn, rounds: int) -> dict:
    samples = []
    fn(0)  # warm: plans, caches
    for i in range(rounds):
        t = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - t)
    return percentiles(samples)


def _queries(stub, end: datetime, say) -> dict:
    meta = (("authorization", f"Bearer {mint(roles=['commander'], sub='bench-commander')}"),)
    west, south, east, north = city.city_outline().polygon.bounds
    box = common_pb2.BoundingBox(south_west=common_pb2.GeoPoint(longitude=west - 0.01, latitude=south - 0.01),
                                 north_east=common_pb2.GeoPoint(longitude=east + 0.01, latitude=north + 0.01))
    district = city.stations()[0].district_id
    rng = random.Random(7)
    out = {}

    def heat(i):
        e = end - timedelta(days=rng.randint(0, 30))
        hm = stub.GetHeatMap(pb.GetHeatMapRequest(box=box, start_time=_ts(e - timedelta(days=365)), end_time=_ts(e)),
                             metadata=meta)
        out.setdefault("heat_map_cells", len(hm.cells))
        out.setdefault("heat_map_reports", hm.total)

    def trend(i):
        e = end - timedelta(days=rng.randint(0, 30))
        stub.GetTrend(pb.GetTrendRequest(station_id="S01", start_time=_ts(e - timedelta(days=396)), end_time=_ts(e),
                                         granularity=pb.GRANULARITY_DAY), metadata=meta)

    def kpis(i):
        e = end - timedelta(days=rng.randint(0, 300))
        stub.GetStationKpis(pb.GetStationKpisRequest(district_id=district, start_time=_ts(e - timedelta(days=30)),
                                                     end_time=_ts(e)), metadata=meta)

    def threshold(i):
        e = end - timedelta(days=rng.randint(0, 300), minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
        stub.CheckThreshold(pb.CheckThresholdRequest(start_time=_ts(e - timedelta(hours=24)), end_time=_ts(e),
                                                     district_id=district, incident_types=["FIGHT", "THEFT"],
                                                     threshold=100), metadata=meta)

    for name, fn in (("heat_map_city_year", heat), ("trend_station_13_months_daily", trend),
                     ("kpis_district_month", kpis), ("threshold_24h", threshold)):
        out[name] = _timed(fn, ROUNDS)
        say(f"warehouse: {name} p50 {out[name]['p50_ms']} ms, p95 {out[name]['p95_ms']} ms")
    return out


def _ingest(rt, say) -> dict:
    """Applies EVENTS intake.IncidentReported events at 100/s through the real consumer; the time each takes
    to land (fact row, rollups, inbox, cursor, one commit)."""
    consumer = next(c for c in rt.consumers if c.source == "intake")
    stations = city.stations()
    samples = []
    now = datetime.now(timezone.utc)
    for i in range(EVENTS):
        st = stations[i % len(stations)]
        r = ipb.Report(name=f"reports/bench-{uuid.uuid4().hex[:12]}", channel=ipb.CHANNEL_PHONE,
                       station_id=st.station_id,
                       classification=ipb.Classification(category=ipb.CATEGORY_POLICE, incident_type="FIGHT"),
                       location=common_pb2.Location(point=common_pb2.GeoPoint(longitude=st.hq[0], latitude=st.hq[1])))
        r.receive_time.CopyFrom(_ts(now))
        e = events_pb2.Event(event_id=str(uuid.uuid4()), sequence=i + 1, type="intake.IncidentReported",
                             subject=r.name, source="intake")
        e.payload.Pack(ipb.IncidentReported(report=r))
        t = time.perf_counter()
        consumer.apply(e)
        took = time.perf_counter() - t
        samples.append(took)
        time.sleep(max(0.0, 0.01 - took))
    p = percentiles(samples)
    say(f"warehouse: an intake event applied in p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms")
    return p


def run(stack, say, reports: int | None = None) -> dict:
    reports = reports or int(os.environ.get("WAREHOUSE_BENCH_REPORTS", DEFAULT_REPORTS))
    end = datetime.now(timezone.utc).astimezone(CITY_TIME).replace(hour=0, minute=0, second=0, microsecond=0)
    with scratch_postgres("smart110-bench-warehouse-") as admin:
        url = ensure_service_database(admin, "warehouse", "bench-warehouse", reset_password=True)
        migrate.upgrade(SPEC.migrations, url, "warehouse")
        rt = open_runtime(SPEC, Settings(service="warehouse", grpc_port=0, database_url=url))
        server = None
        try:
            say(f"warehouse: loading {reports:,} reports over {YEARS} years")
            summary = seed.load(rt.engine, reports=reports, years=YEARS, end=end, batch_size=100_000,
                                out=lambda line: say(f"warehouse: {line.strip()}"))
            with rt.engine.connect() as conn:
                sizes = LoadRepository(conn).sizes()
            per_million = {k: round(v / (reports / 1e6) / 2**20, 1) for k, v in sizes.items()}
            servicers = assemble(SPEC, rt)
            SPEC.warm_up(rt)
            server = create_server(port=0, host="127.0.0.1", services=servicers, policies=all_policies(SPEC))
            server.start()
            with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
                queries = _queries(pb_grpc.WarehouseServiceStub(ch), end, say)
            ingest = _ingest(rt, say)
        finally:
            if server is not None:
                server.stop(1)
            rt.close()
    return {
        "reports": reports, "years": YEARS,
        "load": {"rows": summary.rows, "copy_seconds": round(summary.seconds, 1),
                 "rows_per_second": round(summary.rows_per_second), "rollup_seconds": round(summary.rollup_seconds, 1),
                 "rows_per_second_with_rollups": round(summary.rows / (summary.seconds + summary.rollup_seconds))},
        "size_mib": {k: round(v / 2**20, 1) for k, v in sizes.items()},
        "size_mib_per_million_reports": per_million,
        "queries": queries,
        "ingest_event_apply": ingest,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=int(os.environ.get("WAREHOUSE_BENCH_REPORTS", DEFAULT_REPORTS)))
    args = parser.parse_args()
    print(json.dumps(run(None, print, reports=args.reports), indent=2))
