"""The warehouse's domain without a database: what a fact adds to the rollups, how an update moves it,
the windows (city days, weeks, months; 同比 and 环比), the month partitions, the generated history."""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from services.warehouse import domain
from services.warehouse.domain import CITY_TIME, Outcome, ReportFact, history

UTC = timezone.utc
T = datetime(2028, 3, 10, 2, 30, tzinfo=UTC)


def fact(**kw) -> ReportFact:
    base = dict(report="reports/r1", receive_time=T, category="POLICE", incident_type="FIGHT", station_id="S01")
    base.update(kw)
    return ReportFact.located(longitude=kw.pop("longitude", 114.3), latitude=kw.pop("latitude", 30.58),
                              **{k: v for k, v in base.items() if k not in ("longitude", "latitude")})


def test_measures_count_the_targets_at_their_limits():
    f = fact(answer_time=T + timedelta(seconds=3), hand_off_time=T + timedelta(seconds=33),
             arrival_time=T + timedelta(seconds=180), arrival_target_s=180, satisfaction="BASICALLY_SATISFIED")
    m = f.measures()
    assert (m["answered_3s"], m["handed_off_30s"], m["arrived_on_target"], m["satisfied"]) == (1, 1, 1, 1)
    late = fact(answer_time=T + timedelta(seconds=4), hand_off_time=T + timedelta(seconds=35),
                arrival_time=T + timedelta(seconds=181), arrival_target_s=180, satisfaction="UNSATISFIED")
    m = late.measures()
    assert (m["answered"], m["answered_3s"], m["handed_off_30s"], m["arrived"], m["arrived_on_target"]) == \
        (1, 0, 0, 1, 0)
    assert (m["rated"], m["satisfied"]) == (1, 0)
    # Without a grid target, the outer ring (300 s) applies.
    assert fact(arrival_time=T + timedelta(seconds=300)).measures()["arrived_on_target"] == 1
    assert fact(arrival_time=T + timedelta(seconds=301)).measures()["arrived_on_target"] == 0


def test_keys_are_city_days_and_utc_hours():
    late_evening = fact(receive_time=datetime(2028, 3, 31, 17, 0, tzinfo=UTC))  # 1 April 01:00 in the city
    assert late_evening.day == date(2028, 4, 1) and late_evening.month == date(2028, 4, 1)
    assert late_evening.hour_key()[0] == datetime(2028, 3, 31, 17, tzinfo=UTC)
    assert fact(longitude=None, latitude=None).cell_keys() is None


def _apply(totals: Counter, changes) -> None:
    for ch in changes:
        for k, v in ch.delta.items():
            totals[(ch.rollup, ch.key, k)] += v


_facts = st.builds(
    lambda t, a, h, station, kind, merged, sat, lng: fact(
        incident_type=kind, station_id=station, merged=merged, satisfaction=sat, longitude=lng,
        answer_time=T + timedelta(seconds=a) if a is not None else None,
        hand_off_time=T + timedelta(seconds=h) if h is not None else None,
        receive_time=T + timedelta(minutes=t)),
    st.integers(0, 0), st.one_of(st.none(), st.integers(0, 10)), st.one_of(st.none(), st.integers(0, 60)),
    st.sampled_from(["S01", "S02"]), st.sampled_from(["FIGHT", "THEFT"]), st.booleans(),
    st.sampled_from(["", "SATISFIED", "UNSATISFIED"]), st.sampled_from([114.30, 114.40, None]))


@settings(max_examples=200, deadline=None)
@given(st.lists(_facts, min_size=1, max_size=6))
def test_any_sequence_of_updates_leaves_exactly_the_last_versions_contribution(versions):
    totals: Counter = Counter()
    before = None
    for v in versions:
        _apply(totals, domain.rollup_changes(before, v))
        before = v
    expected: Counter = Counter()
    _apply(expected, domain.rollup_changes(None, versions[-1]))
    assert +totals == +expected and -totals == Counter()


def test_an_update_that_changes_nothing_counted_moves_nothing():
    f = fact()
    assert domain.rollup_changes(f, f) == []
    assert domain.rollup_changes(f, fact(update_time=T + timedelta(hours=1))) == []


def test_intake_updates_keep_what_other_feeds_said():
    kept = fact().with_outcome(Outcome("reports/r1", hand_off_time=T + timedelta(seconds=20), referred=True,
                                       dispatch_case="cases/c1"))
    newer = fact(answer_time=T + timedelta(seconds=2), receive_time=T + timedelta(hours=1))
    merged = kept.updated_by(newer)
    assert merged.answer_time == T + timedelta(seconds=2)
    assert merged.hand_off_time == T + timedelta(seconds=20) and merged.referred
    assert merged.receive_time == T  # the partition key stays
    assert kept.updated_by(fact(merged=True)).merged


def test_outcomes_merge_later_over_earlier():
    a = Outcome("reports/r", hand_off_time=T, arrival_target_s=60)
    b = Outcome("reports/r", arrival_time=T + timedelta(minutes=2), close_time=T + timedelta(hours=1))
    m = a.merged_with(b)
    assert (m.hand_off_time, m.arrival_time, m.close_time, m.arrival_target_s) == (
        T, T + timedelta(minutes=2), T + timedelta(hours=1), 60)


def test_partitions_are_utc_months_and_cross_the_year():
    ahead = domain.partitions_ahead(datetime(2028, 11, 20, tzinfo=UTC), 3)
    assert [p.name for p in ahead] == ["report_facts_202811", "report_facts_202812", "report_facts_202901",
                                       "report_facts_202902"]
    assert ahead[1].end == ahead[2].start == datetime(2029, 1, 1, tzinfo=UTC)
    between = domain.partitions_between(datetime(2027, 12, 31, 23, tzinfo=UTC), datetime(2028, 2, 1, tzinfo=UTC))
    assert [p.name for p in between] == ["report_facts_202712", "report_facts_202801", "report_facts_202802"]


def test_buckets_are_city_hours_days_and_weeks():
    t = datetime(2028, 3, 9, 17, 30, tzinfo=UTC)  # Friday 10 March 01:30 in the city
    assert domain.bucket_start(t, "DAY") == datetime(2028, 3, 10, tzinfo=CITY_TIME)
    assert domain.bucket_start(t, "WEEK") == datetime(2028, 3, 6, tzinfo=CITY_TIME)  # Monday
    assert domain.bucket_start(t, "HOUR") == datetime(2028, 3, 9, 17, tzinfo=UTC)
    a, b = domain.aligned(t, t + timedelta(days=1), "DAY")
    assert (a, b) == (datetime(2028, 3, 10, tzinfo=CITY_TIME), datetime(2028, 3, 12, tzinfo=CITY_TIME))
    assert len(domain.buckets(a, b, "DAY")) == 2


def test_same_period_last_year():
    leap = datetime(2028, 2, 29, tzinfo=CITY_TIME)
    assert domain.same_bucket_last_year(leap, "DAY") == datetime(2027, 2, 28, tzinfo=CITY_TIME)
    week = datetime(2028, 3, 6, tzinfo=CITY_TIME)
    assert domain.same_bucket_last_year(week, "WEEK").astimezone(CITY_TIME).weekday() == 0
    assert domain.change_ratio(15, 10) == 0.5 and domain.change_ratio(3, 0) == 0.0


def test_days_split_into_whole_months_and_edges():
    months, edges = domain.split_months(date(2028, 1, 20), date(2028, 4, 10))
    assert months == (date(2028, 2, 1), date(2028, 4, 1))
    assert edges == [(date(2028, 1, 20), date(2028, 2, 1)), (date(2028, 4, 1), date(2028, 4, 10))]
    assert domain.split_months(date(2028, 1, 3), date(2028, 1, 9)) == (None, [(date(2028, 1, 3), date(2028, 1, 9))])
    assert domain.split_months(date(2028, 1, 1), date(2029, 1, 1)) == ((date(2028, 1, 1), date(2029, 1, 1)), [])
    first, last = domain.whole_days(datetime(2028, 1, 1, 3, tzinfo=CITY_TIME), datetime(2028, 1, 3, tzinfo=CITY_TIME))
    assert (first, last) == (date(2028, 1, 1), date(2028, 1, 3))


def test_whole_hours_inside_a_window():
    a, b = domain.whole_hours(datetime(2028, 1, 1, 10, 15, tzinfo=UTC), datetime(2028, 1, 1, 13, 5, tzinfo=UTC))
    assert (a.hour, b.hour) == (11, 13)
    a, b = domain.whole_hours(datetime(2028, 1, 1, 10, 15, tzinfo=UTC), datetime(2028, 1, 1, 10, 50, tzinfo=UTC))
    assert a == b


def test_a_history_batch_is_the_same_every_time_and_looks_like_a_city():
    end = datetime(2028, 6, 30, tzinfo=UTC)
    one = history.batch_lines(load_id=1, seed=7, batch=3, rows=5000, end=end, years=2)
    assert one == history.batch_lines(load_id=1, seed=7, batch=3, rows=5000, end=end, years=2)
    assert one != history.batch_lines(load_id=1, seed=7, batch=4, rows=5000, end=end, years=2)
    rows = [line.split("\t") for line in one.decode().splitlines()]
    assert len(rows) == 5000 and all(len(r) == 26 for r in rows)
    times = [r[1] for r in rows]
    assert times == sorted(times)  # in time order within a batch
    cats = Counter(r[2] for r in rows)
    assert cats["POLICE"] > cats["NON_POLICE"] > cats["CONSULTATION"] > cats["INVALID"] > 0
    # Police matters are handed off; consultations never are.
    assert all(r[15] == "\\N" for r in rows if r[2] == "CONSULTATION")
    assert sum(r[15] != "\\N" for r in rows if r[2] == "POLICE") > 0.8 * cats["POLICE"]
    # Hot spots: the busiest tenth of the stations take well over a tenth of the reports.
    by_station = Counter(r[6] for r in rows)
    top = sum(n for _, n in by_station.most_common(max(1, len(by_station) // 10)))
    assert top > 0.15 * len(rows)
    assert history.batches(10, 4) == [4, 4, 2]
