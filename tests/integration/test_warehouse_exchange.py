"""The warehouse's top types and places, its CSV export and the import of another 110 system's history,
against a real Postgres over a real gRPC channel with the callers' JWT claims.

The history is written as a CSV file in the exchange layout (with bad lines among the good), imported
through `seed.import_csv` (interrupted after its first batch and resumed), and then read back: the
rollups the import built answer the top lists, and the export gives the same rows as the file.
"""
from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime, timedelta

import grpc
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from sampledata import city
from smart110.common.v1 import common_pb2
from smart110.warehouse.v1 import warehouse_service_pb2 as pb
from smart110.warehouse.v1 import warehouse_service_pb2_grpc as pb_grpc
from services.warehouse import domain, seed
from services.warehouse.__main__ import SPEC
from services.warehouse.domain import exchange
from tests import support
from tests.support import caller, error_reason, field_violations

CST = domain.CITY_TIME
WEEK = datetime(2028, 3, 6, tzinfo=CST)  # a Monday, city time
COMMANDER = caller(["commander"], sub="cmd-x")
STATIONS = {s.station_id: s for s in city.stations()}
GRID = {sid: next(g.grid_id for g in city.grids() if g.station_id == sid) for sid in STATIONS}

# (station, type, category, reports, day of WEEK, offset from the station's HQ in degrees)
MIX = [
    ("S01", "FIGHT", "POLICE", 4, 0, (0.001, 0.001)),
    ("S01", "FIGHT", "POLICE", 2, 1, (0.02, 0.0)),
    ("S01", "THEFT", "POLICE", 3, 2, (0.001, 0.001)),
    ("S02", "FIGHT", "POLICE", 2, 3, (0.0, 0.002)),
    ("S02", "NOISE", "POLICE", 5, 4, (0.0, 0.002)),
    ("S06", "ILLEGAL_PARKING", "NON_POLICE", 7, 5, (0.003, 0.0)),
]


class Interrupted(Exception):
    pass


def good_rows() -> list[dict]:
    rows = []
    for station, kind, category, n, day, (dx, dy) in MIX:
        hq = STATIONS[station].hq
        for i in range(n):
            received = WEEK + timedelta(days=day, hours=9, minutes=7 * i, seconds=i)
            rows.append({
                "report_id": f"GZ110-{station}-{kind}-{day}-{i}", "receive_time": received.isoformat(),
                "category": category, "incident_type": kind, "priority": "2", "channel": "PHONE",
                "station_id": station, "grid_id": GRID[station], "district_id": STATIONS[station].district_id,
                "longitude": f"{hq[0] + dx:.6f}", "latitude": f"{hq[1] + dy:.6f}",
                "answer_time": (received + timedelta(seconds=2 + i)).isoformat(),
                "hand_off_time": (received + timedelta(seconds=20)).isoformat() if category == "POLICE" else "",
                "arrival_time": "", "close_time": (received + timedelta(hours=1)).isoformat(),
                "merged": "true" if i == 1 else "false", "referred": "true" if category == "NON_POLICE" else "false",
                "satisfaction": "SATISFIED" if i == 0 else ""})
    return rows


def bad_rows(template: dict) -> list[tuple[dict, str]]:
    """Lines that must be refused, each with the column it is refused for."""
    return [
        ({**template, "report_id": "BAD-1", "station_id": ""}, "station_id"),
        ({**template, "report_id": "BAD-2", "receive_time": "2028-03-07 10:00:00"}, "receive_time"),
        ({**template, "report_id": "BAD-3", "incident_type": "ALIENS"}, "incident_type"),
        ({**template, "report_id": "BAD-4", "category": "NON_POLICE"}, "category"),
        ({**template, "report_id": "BAD-5", "grid_id": GRID["S02"]}, "grid_id"),
        ({**template, "report_id": "BAD-6", "answer_time": "2028-03-01T00:00:00+08:00"}, "answer_time"),
        ({**template, "report_id": "BAD-7", "latitude": ""}, "latitude"),
    ]


@pytest.fixture(scope="module")
def env(admin_url, tmp_path_factory):
    good = good_rows()
    bad = bad_rows(good[0])
    # Good and bad lines interleaved: the bad ones fall in different batches.
    lines, bad_lines = [], {}
    for i, row in enumerate(good):
        lines.append(row)
        if i % 3 == 1 and bad:
            row_bad, column = bad.pop()
            lines.append(row_bad)
            bad_lines[len(lines) + 1] = column  # the header is line 1
    path = tmp_path_factory.mktemp("import") / "history.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(exchange.HEADER))
        w.writeheader()
        w.writerows(lines)
    clock = support.Clock(WEEK + timedelta(days=30))
    with support.serving(SPEC, admin_url, clock=clock, seed=False) as served:
        engine = served.rt.engine
        said = []

        def stop_after_first_batch(line):
            said.append(line)
            if line.startswith("  batch"):
                raise Interrupted

        with pytest.raises(Interrupted):
            seed.import_csv(engine, path, batch_size=10, out=stop_after_first_batch)
        summary = seed.import_csv(engine, path, batch_size=10, out=said.append)
        yield dict(rt=served.rt, stub=pb_grpc.WarehouseServiceStub(served.channel), good=good, path=path,
                   bad_lines=bad_lines, summary=summary, said=said)


def ts(t: datetime):
    out = pb.GetTopTypesRequest().start_time
    out.FromDatetime(t)
    return out


def window(days=7) -> dict:
    return dict(start_time=ts(WEEK), end_time=ts(WEEK + timedelta(days=days)))


def box_around(station: str, pad=0.05) -> common_pb2.BoundingBox:
    x, y = STATIONS[station].hq
    return common_pb2.BoundingBox(south_west=common_pb2.GeoPoint(longitude=x - pad, latitude=y - pad),
                                  north_east=common_pb2.GeoPoint(longitude=x + pad, latitude=y + pad))


# -- the import ----------------------------------------------------------------------------------

def test_the_import_loads_the_good_lines_skips_the_bad_by_line_number_and_resumes(env):
    summary, engine = env["summary"], env["rt"].engine
    assert summary.resumed_from_batch == 1
    with engine.connect() as conn:
        run = conn.execute(text("SELECT * FROM warehouse.load_runs WHERE load_id = :l"),
                           {"l": summary.load_id}).one()
        facts = conn.execute(text("SELECT * FROM warehouse.report_facts WHERE load_id = :l ORDER BY report"),
                             {"l": summary.load_id}).all()
    assert run.state == "ROLLED_UP" and run.source_sha256 and run.reports == len(env["good"]) + len(env["bad_lines"])
    assert run.rows_loaded == len(facts) == len(env["good"])
    assert run.rows_skipped == len(env["bad_lines"])
    assert sorted(f.report for f in facts) == sorted(r["report_id"] for r in env["good"])
    # Each bad line was reported with its line number and the column refused, once.
    skipped = [line for line in env["said"] if line.startswith("  skipped")]
    assert len(skipped) == len(env["bad_lines"])
    for number, column in env["bad_lines"].items():
        assert any(line.startswith(f"  skipped line {number}: {column} ") for line in skipped), (number, skipped)
    # What a fact row keeps of a line: UTC times, the district from the station, the cells from the point.
    first = env["good"][0]
    row = next(f for f in facts if f.report == first["report_id"])
    assert row.receive_time == datetime.fromisoformat(first["receive_time"])
    assert row.district_id == STATIONS["S01"].district_id and row.grid_id == GRID["S01"]
    assert row.h3_r8 == domain.cells_of(float(first["longitude"]), float(first["latitude"]))["h3_r8"]
    assert row.satisfaction == "SATISFIED" and row.merged is False and row.arrival_target_s is not None


def test_the_import_built_the_rollups_of_its_rows(env):
    with env["rt"].engine.connect() as conn:
        daily = Counter({(s, k): int(n) for s, k, n in conn.execute(text(
            "SELECT station_id, incident_type, sum(reports) FROM warehouse.rollup_daily GROUP BY 1, 2")).all()})
        cells = int(conn.execute(text("SELECT sum(reports) FROM warehouse.rollup_daily_cell_totals")).scalar())
    expected = Counter()
    for station, kind, _, n, _, _ in MIX:
        expected[(station, kind)] += n
    assert daily == expected
    assert cells == len(env["good"])


def test_a_file_without_the_required_columns_is_refused_before_anything_is_written(env, tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("id,time,kind\n1,2028-03-06T10:00:00+08:00,FIGHT\n", encoding="utf-8")
    with env["rt"].engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM warehouse.load_runs")).scalar()
    with pytest.raises(SystemExit, match="required column 'report_id' is missing"):
        seed.import_csv(env["rt"].engine, path, out=lambda line: None)
    with env["rt"].engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM warehouse.load_runs")).scalar() == before


def test_more_bad_lines_than_allowed_stop_the_import(env, tmp_path):
    path = tmp_path / "mostly-bad.csv"
    good = env["good"][0]
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(exchange.HEADER))
        w.writeheader()
        w.writerows({**good, "report_id": f"X{i}", "priority": "9"} for i in range(5))
    with pytest.raises(SystemExit, match="more than 2 bad lines"):
        seed.import_csv(env["rt"].engine, path, max_bad=2, out=lambda line: None)
    with env["rt"].engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM warehouse.report_facts WHERE report LIKE 'X%'")).scalar() == 0


# -- top types and places --------------------------------------------------------------------------

def test_top_types_for_the_city_a_district_and_a_box(env):
    top = env["stub"].GetTopTypes(pb.GetTopTypesRequest(**window()), metadata=COMMANDER)
    assert top.total == len(env["good"])
    expected = Counter()
    for _, kind, _, n, _, _ in MIX:
        expected[kind] += n
    assert [(t.incident_type, t.count) for t in top.types] == sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))
    assert top.types[0].category == "POLICE" and top.types[0].share == pytest.approx(8 / len(env["good"]))
    assert sum(t.share for t in top.types) == pytest.approx(1.0)
    two = env["stub"].GetTopTypes(pb.GetTopTypesRequest(**window(), limit=2), metadata=COMMANDER)
    assert [t.incident_type for t in two.types] == [t.incident_type for t in top.types[:2]] and two.total == top.total
    # The district of S01 and S02, not S06's.
    district = env["stub"].GetTopTypes(pb.GetTopTypesRequest(**window(), district_id=STATIONS["S01"].district_id),
                                       metadata=COMMANDER)
    assert {t.incident_type for t in district.types} == {"FIGHT", "THEFT", "NOISE"} and district.total == 16
    # A box around S06 from the cell rollups.
    boxed = env["stub"].GetTopTypes(pb.GetTopTypesRequest(**window(), box=box_around("S06", 0.01)),
                                    metadata=COMMANDER)
    assert [(t.incident_type, t.count) for t in boxed.types] == [("ILLEGAL_PARKING", 7)]
    # A window before the history: nothing.
    empty = env["stub"].GetTopTypes(pb.GetTopTypesRequest(start_time=ts(WEEK - timedelta(days=40)),
                                                          end_time=ts(WEEK - timedelta(days=30))), metadata=COMMANDER)
    assert empty.total == 0 and not empty.types


def test_top_places_are_the_cells_with_most_reports(env):
    cells = Counter()
    for r in env["good"]:
        cells[domain.cells_of(float(r["longitude"]), float(r["latitude"]))["h3_r8"]] += 1
    top = env["stub"].GetTopPlaces(pb.GetTopPlacesRequest(**window(), limit=3), metadata=COMMANDER)
    ranked = sorted(cells.items(), key=lambda kv: (-kv[1], kv[0]))
    assert [(p.cell, p.count) for p in top.places] == [(domain.cell_name(c), n) for c, n in ranked[:3]]
    assert top.total == len(env["good"]) and top.resolution == 8
    assert top.places[0].share == pytest.approx(ranked[0][1] / len(env["good"]))
    fights = env["stub"].GetTopPlaces(pb.GetTopPlacesRequest(**window(), incident_types=["FIGHT"], station_id="S01"),
                                      metadata=COMMANDER)
    assert sorted(p.count for p in fights.places) == [2, 4] and fights.total == 6
    coarse = env["stub"].GetTopPlaces(pb.GetTopPlacesRequest(**window(), resolution=7), metadata=COMMANDER)
    assert coarse.total == len(env["good"]) and len(coarse.places) <= len(cells)


def test_a_station_officer_gets_their_station_only(env):
    officer = caller(["officer"], station="S02", sub="P2")
    types = env["stub"].GetTopTypes(pb.GetTopTypesRequest(**window()), metadata=officer)
    assert {(t.incident_type, t.count) for t in types.types} == {("NOISE", 5), ("FIGHT", 2)}
    places = env["stub"].GetTopPlaces(pb.GetTopPlacesRequest(**window()), metadata=officer)
    assert places.total == 7
    with pytest.raises(grpc.RpcError) as e:
        env["stub"].GetTopTypes(pb.GetTopTypesRequest(**window(), station_id="S01"), metadata=officer)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_bad_top_requests_name_their_fields(env):
    with pytest.raises(grpc.RpcError) as e:
        env["stub"].GetTopTypes(pb.GetTopTypesRequest(station_id="S01", box=box_around("S01"), limit=500),
                                metadata=COMMANDER)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"start_time", "end_time", "box", "limit"} <= set(field_violations(e.value))
    with pytest.raises(grpc.RpcError) as e:
        env["stub"].GetTopPlaces(pb.GetTopPlacesRequest(**window(), resolution=9, station_id="S99",
                                                        incident_types=["no such"]), metadata=COMMANDER)
    assert {"resolution", "station_id", "incident_types"} <= set(field_violations(e.value))


# -- the export ------------------------------------------------------------------------------------

def export(env, metadata=COMMANDER, **kw) -> tuple[str, str]:
    chunks = list(env["stub"].ExportReports(pb.ExportReportsRequest(**kw), metadata=metadata))
    return chunks[0].content_type, b"".join(c.data for c in chunks).decode()


def test_the_export_gives_the_slice_in_the_layout_the_import_reads(env):
    content_type, body = export(env, **window(), station_id="S01")
    assert content_type.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert tuple(csv.reader(io.StringIO(body)).__next__()) == exchange.HEADER
    wanted = [r for r in env["good"] if r["station_id"] == "S01"]
    assert sorted(r["report_id"] for r in rows) == sorted(r["report_id"] for r in wanted)
    assert [r["receive_time"] for r in rows] == sorted(r["receive_time"] for r in rows)  # receive-time order
    # Every exported line is a good line of the layout, and the same report as the one imported.
    by_id = {r["report_id"]: r for r in wanted}
    for i, r in enumerate(rows, start=2):
        fact = exchange.parse_row(i, r)
        original = exchange.parse_row(0, by_id[r["report_id"]])
        assert not isinstance(fact, exchange.BadRow), fact
        assert fact == original
    # No personal data: only the layout's columns.
    assert set(rows[0]) == set(exchange.HEADER)


def test_the_export_filters_by_type_category_and_district(env):
    _, body = export(env, **window(), incident_types=["FIGHT"])
    assert {r["incident_type"] for r in csv.DictReader(io.StringIO(body))} == {"FIGHT"}
    assert len(list(csv.DictReader(io.StringIO(body)))) == 8
    _, body = export(env, **window(), category="NON_POLICE")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 7 and {r["station_id"] for r in rows} == {"S06"}
    _, body = export(env, **window(), district_id=STATIONS["S06"].district_id)
    assert {r["station_id"] for r in csv.DictReader(io.StringIO(body))} <= set(
        s for s, st in STATIONS.items() if st.district_id == STATIONS["S06"].district_id)
    # The window is to the second: only the first day's four reports.
    _, body = export(env, start_time=ts(WEEK), end_time=ts(WEEK + timedelta(days=1)))
    assert len(list(csv.DictReader(io.StringIO(body)))) == 4


def test_the_parquet_export_reads_back_as_the_same_typed_rows(env):
    chunks = list(env["stub"].ExportReports(pb.ExportReportsRequest(
        **window(), format=pb.EXPORT_FORMAT_PARQUET), metadata=COMMANDER))
    assert {c.content_type for c in chunks} == {"application/vnd.apache.parquet"}
    table = pq.read_table(io.BytesIO(b"".join(c.data for c in chunks)))
    assert tuple(table.schema.names) == exchange.HEADER
    assert str(table.schema.field("receive_time").type) == "timestamp[us, tz=UTC]"
    rows = table.to_pylist()
    assert len(rows) == len(env["good"])
    assert [r["receive_time"] for r in rows] == sorted(r["receive_time"] for r in rows)
    # Each row is the imported line, typed: the CSV export of the same slice says the same.
    _, body = export(env, **window())
    as_csv = {r["report_id"]: r for r in csv.DictReader(io.StringIO(body))}
    for r in rows:
        line = as_csv[r["report_id"]]
        assert r["receive_time"] == datetime.fromisoformat(line["receive_time"])
        assert r["priority"] == int(line["priority"]) and r["merged"] == (line["merged"] == "true")
        assert r["referred"] == (line["referred"] == "true")
        assert (r["hand_off_time"] is None) == (line["hand_off_time"] == "")
        assert r["longitude"] == pytest.approx(float(line["longitude"]))
        assert (r["station_id"], r["incident_type"], r["satisfaction"]) == (
            line["station_id"], line["incident_type"], line["satisfaction"])
    # The filters and the scope apply as to CSV; an empty slice is a file with no rows.
    chief = caller(["station_chief"], station="S02", sub="chief-2")
    chunks = list(env["stub"].ExportReports(pb.ExportReportsRequest(
        **window(), format=pb.EXPORT_FORMAT_PARQUET), metadata=chief))
    assert set(pq.read_table(io.BytesIO(b"".join(c.data for c in chunks))).column("station_id").to_pylist()) == {"S02"}
    chunks = list(env["stub"].ExportReports(pb.ExportReportsRequest(
        start_time=ts(WEEK - timedelta(days=3)), end_time=ts(WEEK), format=pb.EXPORT_FORMAT_PARQUET),
        metadata=COMMANDER))
    assert pq.read_table(io.BytesIO(b"".join(c.data for c in chunks))).num_rows == 0
    with pytest.raises(grpc.RpcError) as e:
        export(env, **window(), format=7)
    assert "format" in field_violations(e.value)


def test_a_slice_over_the_limit_is_refused_before_any_row(env):
    with pytest.raises(grpc.RpcError) as e:
        export(env, **window(), limit=5)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(e.value) == "SLICE_TOO_LARGE"
    _, body = export(env, **window(), limit=len(env["good"]))
    assert len(list(csv.DictReader(io.StringIO(body)))) == len(env["good"])


def test_the_export_is_scoped_and_validated(env):
    chief = caller(["station_chief"], station="S02", sub="chief-2")
    _, body = export(env, metadata=chief, **window())
    assert {r["station_id"] for r in csv.DictReader(io.StringIO(body))} == {"S02"}
    with pytest.raises(grpc.RpcError) as e:
        export(env, metadata=chief, **window(), station_id="S06")
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as e:
        export(env, metadata=caller(["officer"], station="S02", sub="P3"), **window())
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as e:
        export(env, category="THEFT", limit=-1, start_time=ts(WEEK), end_time=ts(WEEK + timedelta(days=400)))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"category", "limit", "end_time"} <= set(field_violations(e.value))
    assert "Traceback" not in e.value.details()
