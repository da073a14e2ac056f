"""Every service's Alembic history against a real Postgres.

- The models and the migrations agree: a database built by `upgrade head`
  has exactly the tables, columns, types, defaults, keys and indexes the
  models declare (autogenerate finds no difference).
- No revision builds tables from the live models (`create_all`): the
  baseline is frozen DDL.
- A database made by the first release (the frozen baseline plus the sample
  city plus reports filed through the API) upgrades to head in place, keeps
  every row and is still read through the API.
"""
from __future__ import annotations

import importlib
import re
from datetime import datetime, timedelta, timezone
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from smart110.intake.v1 import intake_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2_grpc as pb_grpc
from services.runtime import migrate
from services.runtime.app import all_policies, assemble, open_runtime
from services.runtime.config import Settings
from services.runtime.db import ensure_service_database, sqlalchemy_url
from services.runtime.server import create_server
from tests import support

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"intake": "services.intake", "dispatch": "services.dispatch", "referral": "services.referral12345",
            "alerts": "services.alerts", "scoring": "services.scoring", "warehouse": "services.warehouse"}
# A partition of a partitioned table (the warehouse's report_facts_202803, report_facts_default) is the
# model's table, not a model of its own.
PARTITION = re.compile(r".+_(default|\d{6})$")
BASELINE = "0001"
CALL_TAKER = support.caller(["call_taker"], sub="p-call-taker-01", name="接警员甲")


def spec_of(service: str):
    return importlib.import_module(f"{PACKAGES[service]}.__main__").SPEC


def differences(url: str, spec) -> list:
    """What autogenerate would change to make the database match the models."""
    # The models name their schema: compare from outside it, where it is a named schema.
    engine = create_engine(sqlalchemy_url(url), connect_args={"options": "-csearch_path=public"})
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={
                "include_schemas": True,
                "include_name": lambda name, type_, _parent: name == spec.name if type_ == "schema" else True,
                # Alembic's own bookkeeping is not a model.
                "include_object": lambda _obj, name, type_, _reflected, _compare_to:
                    not (type_ == "table" and (name == "alembic_version" or PARTITION.match(name))),
                "compare_type": True,
                "compare_server_default": True,
            })
            return compare_metadata(ctx, spec.metadata)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def fresh(admin_url):
    """A new database with every service migrated to head; {service: its role's URL}."""
    url = support.own_database(admin_url, "migrations_fresh")
    urls = {}
    for service in PACKAGES:
        spec = spec_of(service)
        urls[service] = ensure_service_database(url, spec.name, "pw")
        migrate.upgrade(spec.migrations, urls[service], spec.name)
    yield urls
    support.drop_database(admin_url, "migrations_fresh")


@pytest.mark.parametrize("service", list(PACKAGES))
def test_models_and_migrations_agree(fresh, service):
    assert differences(fresh[service], spec_of(service)) == []


@pytest.mark.parametrize("service", list(PACKAGES))
def test_no_revision_builds_tables_from_the_live_models(service):
    spec = spec_of(service)
    for script in sorted((spec.migrations / "versions").glob("*.py")):
        source = script.read_text()
        assert "create_all" not in source and "create_tables" not in source, script
        assert f"from {PACKAGES[service]}.store" not in source, f"{script} imports the live models"


@pytest.mark.parametrize("service", list(PACKAGES))
def test_each_history_is_one_line_from_the_frozen_baseline(service):
    spec = spec_of(service)
    scripts = ScriptDirectory(str(spec.migrations))
    assert len(scripts.get_heads()) == 1, "one head: two revisions after the same parent must be merged"
    bases = scripts.get_bases()
    assert bases == [BASELINE]


def test_the_ledger_stays_append_only_after_the_baseline(fresh):
    engine = create_engine(sqlalchemy_url(fresh["scoring"]))
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version FROM rule_sets")).scalars().all()
            assert versions == [1], "the baseline publishes the sample rule set version 1"
            triggers = set(conn.execute(text(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'scoring.ledger_entries'::regclass")).scalars())
            assert {"ledger_entries_no_update_or_delete", "ledger_entries_no_truncate"} <= triggers
    finally:
        engine.dispose()


AUDIT_TRAILS = {"intake": {"report_timeline", "personal_data_views"}, "dispatch": {"case_timeline", "unit_timeline", "unit_history"},
                "referral": {"work_order_timeline"}, "alerts": {"alert_timeline"},
                "scoring": {"warning_timeline", "ledger_entries"}, "warehouse": set()}


@pytest.mark.parametrize("service", list(PACKAGES))
def test_every_timeline_is_append_only_at_the_database(fresh, service):
    """Every timeline table (any table named *_timeline, so a new one cannot be forgotten) and
    every history refuses UPDATE, DELETE and TRUNCATE, whoever asks."""
    schema = spec_of(service).name
    engine = create_engine(sqlalchemy_url(fresh[service]))
    try:
        with engine.connect() as conn:
            tables = set(conn.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = :s "
                "AND table_name LIKE '%\\_timeline'"), {"s": schema}).scalars())
            assert tables <= AUDIT_TRAILS[service], f"a timeline table this test does not know: {tables}"
            for table in AUDIT_TRAILS[service]:
                triggers = set(conn.execute(text(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass)"),
                    {"t": f"{schema}.{table}"}).scalars())
                assert {f"{table}_no_update_or_delete", f"{table}_no_truncate"} <= triggers, table
        for table in AUDIT_TRAILS[service] - {"ledger_entries"}:  # the ledger: test_scoring
            for statement in (f"UPDATE {schema}.{table} SET action = action", f"DELETE FROM {schema}.{table}",
                              f"TRUNCATE {schema}.{table}"):
                with engine.connect() as conn, pytest.raises(Exception, match="append-only audit trail"):
                    column = {"unit_history": "status", "personal_data_views": "method"}.get(table, "action")
                    conn.execute(text(statement.replace("action = action", f"{column} = {column}")))
    finally:
        engine.dispose()


# -- upgrading a database made by the first release ----------------------------------------

def row_counts(url: str, schema: str) -> dict[str, int]:
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            tables = conn.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = :s "
                "AND table_type = 'BASE TABLE' AND table_name <> 'alembic_version'"), {"s": schema}).scalars().all()
            return {t: conn.execute(text(f'SELECT count(*) FROM {schema}."{t}"')).scalar() for t in tables}
    finally:
        engine.dispose()


@contextmanager
def intake_api(url: str):
    spec = spec_of("intake")
    rt = open_runtime(spec, Settings(service=spec.name, grpc_port=0, database_url=url))
    server = create_server(port=0, host="127.0.0.1", services=assemble(spec, rt), public=spec.public,
                           policies=all_policies(spec))
    try:
        server.start()
        with support.channel(f"127.0.0.1:{server.port}") as channel:
            yield pb_grpc.IntakeServiceStub(channel)
    finally:
        server.stop(1)
        rt.close()


@contextmanager
def first_release_sample_city():
    """The sample city as the first release knew it: its units named no grids (units.grid_ids came
    with revision 0012 of dispatch)."""
    from dataclasses import replace

    from sampledata import city

    units = city.units
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(city, "units", lambda: tuple(replace(u, grid_ids=()) for u in units()))
        yield


def test_a_first_release_database_upgrades_in_place_and_keeps_every_row(admin_url):
    url = support.own_database(admin_url, "migrations_upgrade")
    try:
        urls = {}
        for service in PACKAGES:
            spec = spec_of(service)
            urls[service] = ensure_service_database(url, spec.name, "pw")
            migrate.upgrade(spec.migrations, urls[service], spec.name, BASELINE)
            if spec.seed is not None:
                rt = open_runtime(spec, Settings(service=spec.name, grpc_port=0, database_url=urls[service]))
                try:
                    with first_release_sample_city():
                        spec.seed(rt)
                finally:
                    rt.close()
        # Reports as the first release wrote them: its own columns only (today's code writes newer ones).
        filed = []
        at = datetime(2026, 11, 1, 4, 0, tzinfo=timezone.utc)
        engine = create_engine(sqlalchemy_url(urls["intake"]))
        try:
            with engine.begin() as conn:
                for i, (phone, text_, itype) in enumerate((("13900001111", "有人在小区门口打架，有人受伤", "FIGHT"),
                                                           ("13900002222", "楼下工地夜间施工噪音扰民", "NOISE"),
                                                           ("13900003333", "我的电动车被偷了", "THEFT"))):
                    rid_ = f"20261101-first{i:07d}"
                    conn.execute(text(
                        "INSERT INTO intake.reports (id, channel, caller_phone, caller_name, lon, lat, description, "
                        "category, incident_type, priority, classification_reason, status, station_id, receive_time, "
                        "create_time, update_time) VALUES (:id, 'PHONE', :phone, '张三', 114.30, 30.59, :d, 'POLICE', "
                        ":t, 2, '命中关键词', 'RECEIVED', 'S01', :at, :at, :at)"),
                        {"id": rid_, "phone": phone, "d": text_, "t": itype, "at": at + timedelta(minutes=i)})
                    conn.execute(text(
                        "INSERT INTO intake.report_timeline (report_id, action, actor, time) "
                        "VALUES (:id, 'RECEIVED', 'p-call-taker-01', :at)"), {"id": rid_, "at": at + timedelta(minutes=i)})
                    filed.append((f"reports/{rid_}", text_, at + timedelta(minutes=i)))
        finally:
            engine.dispose()
        before = {service: row_counts(urls[service], spec_of(service).name) for service in PACKAGES}
        assert before["intake"]["reports"] >= 3 and before["dispatch"]["units"] > 0

        for service in PACKAGES:
            spec = spec_of(service)
            migrate.upgrade(spec.migrations, urls[service], spec.name)
            assert differences(urls[service], spec) == [], f"{service} at head differs from its models"

        for service in PACKAGES:
            after = row_counts(urls[service], spec_of(service).name)
            for table, count in before[service].items():
                assert after[table] == count, f"{service}.{table}: {count} rows before the upgrade, {after[table]} after"
        with intake_api(urls["intake"]) as stub:
            for name, description, received in filed:
                again = stub.GetReport(pb.GetReportRequest(name=name), metadata=CALL_TAKER, timeout=10)
                assert again.description == description and again.receive_time.ToDatetime(timezone.utc) == received
                assert again.status == pb.REPORT_STATUS_RECEIVED and again.caller.phone_number.startswith("139")
    finally:
        support.drop_database(admin_url, "migrations_upgrade")


# -- expand/contract: old pods keep working on the new schema during a rollout --------------

def columns(url: str, schema: str) -> dict[tuple[str, str], tuple[str, bool, bool]]:
    """(table, column) -> (type, nullable, has a default), as Postgres reports them."""
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT table_name, column_name, data_type, is_nullable = 'YES', "
                "column_default IS NOT NULL OR is_identity = 'YES' "
                "FROM information_schema.columns WHERE table_schema = :s AND table_name <> 'alembic_version'"),
                {"s": schema}).all()
            return {(t, c): (ty, nullable, default) for t, c, ty, nullable, default in rows}
    finally:
        engine.dispose()


@pytest.mark.parametrize("service", list(PACKAGES))
def test_every_revision_expands_so_the_previous_release_still_runs(admin_url, service):
    """Each revision after the baseline, applied to the schema before it, keeps every table and
    column of that schema with its type, and every column it adds is nullable or has a default:
    pods of the previous release read and insert as before while the new ones roll out. A
    contracting change (drop, rename, retype) belongs to a later release than the one that
    stopped using the old shape, and is marked `contracts = True` in its revision."""
    spec = spec_of(service)
    name = f"migrations_expand_{service}"
    url = support.own_database(admin_url, name)
    try:
        role_url = ensure_service_database(url, spec.name, "pw")
        scripts = ScriptDirectory(str(spec.migrations))
        chain = [r for r in reversed(list(scripts.walk_revisions()))]
        migrate.upgrade(spec.migrations, role_url, spec.name, chain[0].revision)
        for rev in chain[1:]:
            before = columns(role_url, spec.name)
            migrate.upgrade(spec.migrations, role_url, spec.name, rev.revision)
            after = columns(role_url, spec.name)
            if getattr(rev.module, "contracts", False):
                continue
            for key, (type_, nullable, _default) in before.items():
                assert key in after, f"revision {rev.revision} drops {key} that the previous release uses"
                assert after[key][0] == type_, f"revision {rev.revision} changes the type of {key}"
                if nullable:
                    assert after[key][1], f"revision {rev.revision} makes {key} NOT NULL under running pods"
            for key in after.keys() - before.keys():
                table_existed = any(t == key[0] for t, _ in before)
                if table_existed:
                    _type, nullable, default = after[key]
                    assert nullable or default, (
                        f"revision {rev.revision} adds {key} NOT NULL without a default: "
                        "the previous release's inserts would fail")
    finally:
        support.drop_database(admin_url, name)


def test_cases_written_before_silent_alarms_reached_dispatch_upgrade_as_not_silent(admin_url):
    """Revision 0008 adds cases.silent: a case the previous release stored reads as not silent, and a
    case that release inserts afterwards (without the column) is not silent either."""
    from services.dispatch import queries
    spec = spec_of("dispatch")
    url = support.own_database(admin_url, "migrations_case_silent")
    row = ("INSERT INTO dispatch.cases (id, report, station_id, incident_type, priority, level, status, "
           "report_time, create_time, update_time) VALUES (:id, :report, 'S01', 'FIGHT', 2, 'STATION', 'PENDING', "
           ":at, :at, :at)")
    at = datetime(2026, 11, 1, 4, 0, tzinfo=timezone.utc)
    try:
        role_url = ensure_service_database(url, spec.name, "pw")
        migrate.upgrade(spec.migrations, role_url, spec.name, "0007")
        engine = create_engine(sqlalchemy_url(role_url))
        try:
            with engine.begin() as conn:
                conn.execute(text(row), {"id": "20261101-old", "report": "reports/old", "at": at})
            migrate.upgrade(spec.migrations, role_url, spec.name)
            with engine.begin() as conn:
                conn.execute(text(row), {"id": "20261101-oldpod", "report": "reports/oldpod", "at": at})
            with engine.connect() as conn:
                assert conn.execute(text("SELECT id, silent FROM dispatch.cases ORDER BY id")).all() == [
                    ("20261101-old", False), ("20261101-oldpod", False)]
                case = queries.case(conn, "20261101-old", whole=True)
                assert case is not None and case.silent is False and case.instructions == ""
        finally:
            engine.dispose()
        assert differences(role_url, spec) == []
    finally:
        support.drop_database(admin_url, "migrations_case_silent")


def test_settled_hand_offs_lose_the_victims_contact_and_open_ones_keep_it(admin_url):
    """Revision 0013: dispatch no longer keeps callers' contacts. A stop-payment hand-off the centre
    has settled loses the victim's name and phone; one still under way keeps them until it settles
    (the previous release delivers from them during a rollout); every row stays."""
    from services.dispatch.domain import FINAL_STATES
    spec = spec_of("dispatch")
    url = support.own_database(admin_url, "migrations_victim_contacts")
    at = datetime(2026, 11, 1, 4, 0, tzinfo=timezone.utc)
    case = ("INSERT INTO dispatch.cases (id, report, station_id, incident_type, priority, level, status, "
            "report_time, create_time, update_time) VALUES ('c1', 'reports/r1', 'S01', 'TELECOM_FRAUD', 1, "
            "'COUNTY', 'PENDING', :at, :at, :at)")
    hand_off = ("INSERT INTO dispatch.stop_payments (id, case_id, idempotency_key, state, victim_name, victim_phone, "
                "requested_by, create_time) VALUES (:id, 'c1', :id, :state, '陈女士', '13800138000', 'dispatch', :at)")
    try:
        role_url = ensure_service_database(url, spec.name, "pw")
        migrate.upgrade(spec.migrations, role_url, spec.name, "0012")
        engine = create_engine(sqlalchemy_url(role_url))
        try:
            with engine.begin() as conn:
                conn.execute(text(case), {"at": at})
                for i, state in enumerate(["QUEUED", "ACCEPTED", *sorted(FINAL_STATES)]):
                    conn.execute(text(hand_off), {"id": f"sp{i}-{state}", "state": state, "at": at})
            migrate.upgrade(spec.migrations, role_url, spec.name)
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT state, victim_name, victim_phone FROM dispatch.stop_payments")).all()
        finally:
            engine.dispose()
        assert len(rows) == 2 + len(FINAL_STATES)
        for state, name, phone in rows:
            if state in FINAL_STATES:
                assert (name, phone) == ("", ""), state
            else:
                assert (name, phone) == ("陈女士", "13800138000"), state
        assert differences(role_url, spec) == []
    finally:
        support.drop_database(admin_url, "migrations_victim_contacts")
