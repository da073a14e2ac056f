"""Referral, alerts and scoring skeletons against a real Postgres, served over a real gRPC channel."""
from __future__ import annotations

import json
from contextlib import contextmanager

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from sampledata import city
from smart110.alerts.v1 import alerts_service_pb2_grpc as alerts_grpc
from smart110.common.v1 import events_pb2
from smart110.referral.v1 import referral_service_pb2 as referral_pb
from smart110.referral.v1 import referral_service_pb2_grpc as referral_grpc
from smart110.scoring.v1 import scoring_service_pb2_grpc as scoring_grpc
from services.runtime import migrate
from services.runtime.app import adopt, all_policies, assemble, open_runtime
from services.runtime.config import Settings
from services.runtime.db import ensure_service_database, make_engine
from services.runtime.server import create_server
from tests import support


def prepare(admin_url: str, spec) -> str:
    url = ensure_service_database(admin_url, spec.name, "pw")
    migrate.upgrade(spec.migrations, url, spec.name)
    return url


@contextmanager
def serving(admin_url: str, spec, *, seed_times: int = 0):
    """The service in-process, as `serve` wires it, on a free port; yields a channel to it."""
    url = prepare(admin_url, spec)
    rt = open_runtime(spec, Settings(service=spec.name, grpc_port=0, database_url=url))
    adopt(spec, rt)
    server = None
    try:
        for _ in range(seed_times):
            spec.seed(rt)
        server = create_server(port=0, host="127.0.0.1", services=assemble(spec, rt), public=spec.public,
                           policies=all_policies(spec))
        rt.feed.start()
        server.start()
        with support.channel(f"127.0.0.1:{server.port}") as channel:
            yield channel
    finally:
        if server is not None:
            server.stop(1)
        rt.close()


@pytest.fixture(scope="module")
def referral(admin_url):
    from services.referral12345.__main__ import SPEC

    with serving(admin_url, SPEC, seed_times=2) as channel:
        yield channel


@pytest.fixture(scope="module")
def alerts(admin_url):
    from services.alerts.__main__ import SPEC

    with serving(admin_url, SPEC) as channel:
        yield channel


@pytest.fixture(scope="module")
def scoring(admin_url):
    from services.scoring.__main__ import SPEC

    with serving(admin_url, SPEC) as channel:
        yield channel


def health(channel, service: str) -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


field_violations = support.violation_pairs


# -- referral ------------------------------------------------------------------

def test_referral_reports_serving_for_both_services(referral):
    for name in ("smart110.referral.v1.ReferralService", "smart110.referral.v1.Open311Service", ""):
        assert health(referral, name) == health_pb2.HealthCheckResponse.SERVING, name


def test_list_departments_pages_through_every_department_once(referral):
    stub = referral_grpc.ReferralServiceStub(referral)
    seen, token, pages = [], "", 0
    while True:
        page = stub.ListDepartments(referral_pb.ListDepartmentsRequest(page_size=7, page_token=token), timeout=5)
        assert len(page.departments) <= 7
        seen += [d.department_id for d in page.departments]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    expected = [d.dept_id for d in city.departments()]
    assert len(expected) == 36
    assert seen == sorted(expected), "every department exactly once, in id order"
    assert pages == 6


def test_list_departments_filters_by_matter_and_district(referral):
    stub = referral_grpc.ReferralServiceStub(referral)
    parking = stub.ListDepartments(referral_pb.ListDepartmentsRequest(matter_code="ILLEGAL_PARKING"), timeout=5)
    assert {d.display_name for d in parking.departments} == {
        d.name for d in city.departments() if "ILLEGAL_PARKING" in d.matter_codes}
    assert len(parking.departments) == 2

    gas_county = stub.ListDepartments(
        referral_pb.ListDepartmentsRequest(matter_code="GAS_LEAK", district="新洲县"), timeout=5)
    assert [d.display_name for d in gas_county.departments] == ["新洲县天然气有限公司"]


def test_get_department_returns_it_and_names_bad_input(referral):
    stub = referral_grpc.ReferralServiceStub(referral)
    known = next(d for d in city.departments() if "ILLEGAL_PARKING" in d.matter_codes)
    dept = stub.GetDepartment(referral_pb.GetDepartmentRequest(name=f"departments/{known.dept_id}"), timeout=5)
    assert dept.name == f"departments/{known.dept_id}"
    assert dept.display_name == known.name == "江城市城市管理执法局"
    assert "ILLEGAL_PARKING" in dept.matter_codes
    assert dept.supervisor.name == known.supervisor and dept.supervisor.phone_number == known.phone

    with pytest.raises(grpc.RpcError) as missing:
        stub.GetDepartment(referral_pb.GetDepartmentRequest(name="departments/D99"), timeout=5)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    with pytest.raises(grpc.RpcError) as malformed:
        stub.GetDepartment(referral_pb.GetDepartmentRequest(name="units/D01"), timeout=5)
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(malformed.value)] == ["name"]


def test_list_departments_rejects_a_forged_page_token(referral):
    stub = referral_grpc.ReferralServiceStub(referral)
    with pytest.raises(grpc.RpcError) as err:
        stub.ListDepartments(referral_pb.ListDepartmentsRequest(page_token="not-a-token!"), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err.value)] == ["page_token"]


def test_open311_service_list_is_the_matter_catalogue(referral):
    body = referral_grpc.Open311ServiceStub(referral).ListServices(referral_pb.ListServicesRequest(), timeout=5)
    assert body.content_type == "application/json; charset=utf-8"
    services = json.loads(body.data.decode("utf-8"))
    codes = [s["service_code"] for s in services]
    assert len(codes) == len(set(codes)), "each service_code once"
    assert set(codes) == {m.code for d in city.departments() for m in d.matters}
    parking = next(s for s in services if s["service_code"] == "ILLEGAL_PARKING")
    assert parking["service_name"] == "违章停车"
    assert parking["type"] == "realtime" and parking["metadata"] is False
    # GeoReport's group is the category; the departments that handle it are in the description.
    assert parking["group"] == "交通出行" and "违停" in parking["keywords"].split(",")
    assert "江城市城市管理执法局" in parking["description"] and "江城市公安局交通管理局" in parking["description"]
    passport = next(s for s in services if s["service_code"] == "PASSPORT")
    assert passport["group"] == "证照办理" and "江城市公安局出入境管理支队" in passport["description"]


def test_referral_feed_ends_at_its_latest_event(referral):
    stub = referral_grpc.ReferralServiceStub(referral)
    events = list(stub.StreamEvents(events_pb2.StreamEventsRequest(stop_at_end=True), timeout=5))
    sequences = [e.sequence for e in events]
    assert sequences == sorted(set(sequences)), "in sequence order, each once"
    assert all(e.type.startswith("referral.") for e in events)


def test_referral_role_cannot_read_another_services_schema(admin_url):
    from services.intake.__main__ import SPEC as INTAKE
    from services.referral12345.__main__ import SPEC as REFERRAL

    prepare(admin_url, INTAKE)
    url = prepare(admin_url, REFERRAL)
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn, pytest.raises(ProgrammingError) as err:
            conn.execute(text("SELECT * FROM intake.reports"))
        assert isinstance(err.value.orig, psycopg.errors.InsufficientPrivilege)
    finally:
        engine.dispose()


# -- alerts and scoring --------------------------------------------------------

def test_alerts_serves_its_feed(alerts):
    assert health(alerts, "smart110.alerts.v1.AlertsService") == health_pb2.HealthCheckResponse.SERVING
    stub = alerts_grpc.AlertsServiceStub(alerts)
    # Other tests in the session may have raised alerts in the same schema.
    events = list(stub.StreamEvents(events_pb2.StreamEventsRequest(stop_at_end=True), timeout=5))
    assert all(e.type in ("alerts.AlertFired", "alerts.AlertUpdated") for e in events)


def test_scoring_serves_its_feed(scoring):
    # Scoring's own behaviour is in test_scoring.py, which shares this database.
    assert health(scoring, "smart110.scoring.v1.ScoringService") == health_pb2.HealthCheckResponse.SERVING
    stub = scoring_grpc.ScoringServiceStub(scoring)
    events = list(stub.StreamEvents(events_pb2.StreamEventsRequest(stop_at_end=True), timeout=5))
    assert all(e.source == "scoring" for e in events)
