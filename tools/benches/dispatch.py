"""Dispatch figures: recommendation with 2,000 units on duty, and a report's way to an officer's phone.

- recommend_in_process: the capability-matrix ranking alone (numpy distances)
                        over all 2,000 units, FIGHT at random points of the city
- recommend_with_db:    what RecommendUnits does inside the service: read the
                        available on-duty units of the needed kinds within 3 km
                        (plus all of the station's own), rank them, and fall
                        back to all units when a pick could be beaten from outside
- recommend_grpc:       RecommendUnits over gRPC straight to the dispatch service
- recommend_http:       RecommendUnits as HTTP/JSON through Envoy
- report_to_offer:      ReportIncident through the gateway until the offer
                        arrives on the unit's WatchAssignments stream (also
                        through the gateway): intake, its feed, the dispatch
                        consumer, recommendation, the offer's commit, the
                        dispatch feed and the phone's stream; one report at a time

The sample city has 308 units; the benchmark adds units (patrol cars, foot
patrols, community officers, specialists) on duty at random points of the
city until 2,000 are on duty, plus a patrol car and a community officer next
to each report's point so the unit that gets the offer is known in advance.
"""
from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import timedelta

import grpc
import httpx
from sqlalchemy import create_engine

from sampledata import city
from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as pb_grpc
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc
from services.dispatch import queries
from services.dispatch.domain import Context, DispatchCase, DispatchSettings, matrix, recommend
from services.dispatch.seed import seed_roster
from services.dispatch.store import UnitRepository
from services.runtime.db import sqlalchemy_url
from services.runtime.timeutil import now
from tools.benches._common import percentiles, aio_service_channel
from tools.devstack import Stack
from tools.token import mint

TOTAL_UNITS = 2000
SAMPLES = 60
FILLER_KINDS = ["PATROL_CAR"] * 4 + ["FOOT_PATROL"] * 2 + ["COMMUNITY_OFFICER"] * 4 + [
    "CRIMINAL_INVESTIGATION", "TRAFFIC", "DRONE", "LEGAL_OFFICER", "ANTI_FRAUD", "SPECIAL_POLICE"]


def run(stack: Stack, say) -> dict:
    rng = random.Random(2000)
    engine = create_engine(sqlalchemy_url(stack.service_urls["dispatch"]))
    try:
        points = sample_points(rng)
        add_units(engine, rng, points, say)
        results = {"units_on_duty": count_on_duty(engine)}
        results["recommend_in_process"], results["recommend_with_db"] = in_process(engine, rng, say)
        results.update(asyncio.run(through_the_suite(stack, points, say)))
    finally:
        engine.dispose()
    return results


def sample_points(rng: random.Random) -> list[tuple[str, str, float, float]]:
    """(station, grid, lon, lat) of the reports: one per grid, grids picked at random."""
    grids = list(city.grids())
    rng.shuffle(grids)
    out = []
    for g in grids[:SAMPLES]:
        p = g.polygon.representative_point()
        out.append((g.station_id, g.grid_id, round(p.x, 6), round(p.y, 6)))
    return out


def add_units(engine, rng: random.Random, points, say) -> None:
    at = now()
    stations = list(city.stations())
    seeded = len(city.units())
    values = []
    for i, (station, _grid, lon, lat) in enumerate(points):
        for kind in ("PATROL_CAR", "COMMUNITY_OFFICER"):
            values.append(_unit(f"B-{i:03d}-{kind[:3]}", kind, station, lon + 0.0001, lat, at))
    filler = TOTAL_UNITS - seeded - len(values)
    for i in range(filler):
        st = rng.choice(stations)
        minx, miny, maxx, maxy = st.polygon.bounds
        values.append(_unit(f"F-{i:04d}", rng.choice(FILLER_KINDS), st.station_id,
                            rng.uniform(minx, maxx), rng.uniform(miny, maxy), at))
    with engine.begin() as conn:
        repo = UnitRepository(conn)
        for v in values:
            repo.upsert(v)
        seed_roster(conn, [v["unit_id"] for v in values], at)
    say(f"added {len(values)} units on duty ({len(points) * 2} next to the report points)")


def _unit(unit_id, kind, station, lon, lat, at) -> dict:
    return dict(unit_id=unit_id, call_sign=f"压测{unit_id}", kind=kind, station_id=station, skills=[], vehicle="",
                officers=[{"officer_id": f"P{unit_id}", "name": "压测警员"}], status="AVAILABLE", lon=lon, lat=lat,
                position_time=at)


def count_on_duty(engine) -> int:
    with engine.connect() as conn:
        return len(UnitRepository(conn).available(at=now()))


def in_process(engine, rng: random.Random, say) -> tuple[dict, dict]:
    m = matrix()
    at = now()
    with engine.connect() as conn:
        units = UnitRepository(conn).available(at=at)
    stations = list(city.stations())
    needs = m.needs("FIGHT", at)
    samples = []
    for _ in range(1000):
        st = rng.choice(stations)
        minx, miny, maxx, maxy = st.polygon.bounds
        t0 = time.perf_counter()
        recommend(units, needs=needs, station_id=st.station_id, lon=rng.uniform(minx, maxx),
                  lat=rng.uniform(miny, maxy), stale_before=at - timedelta(minutes=15), m=m)
        samples.append(time.perf_counter() - t0)
    ranking = {"units": len(units), **percentiles(samples)}
    say(f"recommend_in_process over {len(units)} units: p50 {ranking['p50_ms']} ms, p99 {ranking['p99_ms']} ms")

    ctx = Context(settings=DispatchSettings(), matrix=m)
    samples = []
    with engine.connect() as conn:
        for _ in range(200):
            st = rng.choice(stations)
            minx, miny, maxx, maxy = st.polygon.bounds
            case = DispatchCase(id="bench", report="", station_id=st.station_id, grid_id="", incident_type="FIGHT",
                                priority=2, level="STATION", status="PENDING", lon=rng.uniform(minx, maxx),
                                lat=rng.uniform(miny, maxy), address_text="", summary="", recommendations=[],
                                report_time=at, create_time=at, update_time=at)
            t0 = time.perf_counter()
            queries.recommendations(conn, ctx, case, now())
            samples.append(time.perf_counter() - t0)
    with_db = percentiles(samples)
    say(f"recommend_with_db: p50 {with_db['p50_ms']} ms, p99 {with_db['p99_ms']} ms")
    return ranking, with_db


async def through_the_suite(stack: Stack, points, say) -> dict:
    token = mint(roles=["dispatcher"], sub="bench-dispatcher")
    md = (("authorization", f"Bearer {token}"),)
    gateway = stack.gateway_url.removeprefix("http://")
    results: dict = {}
    async with grpc.aio.insecure_channel(gateway) as gw, \
            aio_service_channel(stack.address("dispatch")) as direct, \
            httpx.AsyncClient(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"},
                              timeout=30) as http:
        intake = intake_grpc.IntakeServiceStub(gw)
        phones = pb_grpc.DispatchServiceStub(gw)
        samples, missed, case_name = [], 0, ""
        for i, (station, grid, lon, lat) in enumerate(points):
            units = [f"units/B-{i:03d}-PAT", f"units/B-{i:03d}-COM"]
            streams = [phones.WatchAssignments(pb.WatchAssignmentsRequest(unit=u), metadata=md) for u in units]
            first = asyncio.get_running_loop().create_future()

            async def read(call, first=first):
                try:
                    async for msg in call:
                        if msg.state == pb.ASSIGNMENT_STATE_OFFERED and not first.done():
                            first.set_result((time.perf_counter(), msg.case_summary.name))
                except grpc.aio.AioRpcError:
                    pass

            readers = [asyncio.create_task(read(c)) for c in streams]
            t0 = time.perf_counter()
            await intake.ReportIncident(intake_pb.ReportIncidentRequest(
                request_id=uuid.uuid4().hex, report=intake_pb.Report(
                    channel=intake_pb.CHANNEL_PHONE, caller=intake_pb.Caller(phone_number=f"139{i:08d}"),
                    description=f"第{i}号压测：两个人在路口打架",
                    location=common_pb2.Location(point=common_pb2.GeoPoint(longitude=lon, latitude=lat)))),
                metadata=md)
            try:
                t1, case_name = await asyncio.wait_for(first, timeout=15)
                samples.append(t1 - t0)
            except asyncio.TimeoutError:
                missed += 1
            for c in streams:
                c.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        results["report_to_offer"] = {**percentiles(samples), "missed": missed}
        say(f"report_to_offer: p50 {results['report_to_offer'].get('p50_ms')} ms, "
            f"p99 {results['report_to_offer'].get('p99_ms')} ms, missed {missed}")

        if case_name:
            stub = pb_grpc.DispatchServiceStub(direct)
            samples = []
            for _ in range(200):
                t0 = time.perf_counter()
                await stub.RecommendUnits(pb.RecommendUnitsRequest(name=case_name))
                samples.append(time.perf_counter() - t0)
            results["recommend_grpc"] = percentiles(samples)
            samples = []
            for _ in range(100):
                t0 = time.perf_counter()
                (await http.post(f"/v1/{case_name}:recommend", json={})).raise_for_status()
                samples.append(time.perf_counter() - t0)
            results["recommend_http"] = percentiles(samples)
            for key in ("recommend_grpc", "recommend_http"):
                say(f"{key}: p50 {results[key]['p50_ms']} ms, p99 {results[key]['p99_ms']} ms")
    return results
