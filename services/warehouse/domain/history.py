"""A realistic province-style history of reports for the bulk load, generated batch by batch.

Deterministic: batch `b` of a load with seed `s` is always the same rows, so a resumed load writes
exactly what the interrupted one would have. The shape:

- places: a pool of points around hot spots (each station's centre, a few dozen busy streets, nightlife,
  stations) over a thin background across the city, each point with its grid, station, district and
  H3 cells; a report picks a place by the hot spots' weight;
- time: seasonality (summer evenings busiest, the Spring Festival quiet, a slow growth over the years),
  a weekday profile (Friday and Saturday up) and an hour-of-day profile (the 3-5 a.m. trough, the
  evening peak);
- what: the sample taxonomy (sampledata's incident types, weighted by the sample reports' mix within
  each category) with channels, priorities and outcomes: answer within a few seconds, hand-off and
  arrival for police matters against the grid's 1-3-5 minute circle, repeats merged, non-police
  matters referred to 12345, follow-up ratings.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import numpy as np
from shapely import STRtree, points

from sampledata import city

from . import CITY_TIME, cells_of

CATEGORY_SHARE = {"POLICE": 0.46, "NON_POLICE": 0.34, "CONSULTATION": 0.12, "INVALID": 0.08}
CHANNELS = (("PHONE", 0.80), ("WECHAT", 0.07), ("APP", 0.05), ("SMS", 0.03), ("MINI_PROGRAM", 0.02),
            ("VIDEO", 0.01), ("KIOSK", 0.01), ("SILENT_ALARM", 0.005), ("WEIBO", 0.005))
# Share of reports per hour of the city's day (0-23), from a typical 110 centre's day.
HOUR_PROFILE = np.array([3.0, 2.4, 1.8, 1.3, 1.1, 1.2, 1.9, 3.0, 4.2, 4.9, 5.1, 5.2,
                         5.0, 4.8, 4.9, 5.0, 5.2, 5.5, 5.9, 6.3, 6.5, 6.2, 5.3, 4.2])
WEEKDAY_PROFILE = np.array([0.97, 0.95, 0.96, 0.98, 1.06, 1.12, 1.03])  # Monday first
# Month of the year (1-12): summer highest, February (the Spring Festival) lowest.
MONTH_PROFILE = np.array([0.92, 0.82, 0.93, 0.97, 1.02, 1.08, 1.14, 1.13, 1.04, 1.00, 0.98, 0.97])
GROWTH_PER_YEAR = 0.04
POOL_SIZE = 20000
NULL = "\\N"


@dataclass(frozen=True)
class Places:
    """The pool of places reports come from, with each one's weight."""

    longitude: np.ndarray
    latitude: np.ndarray
    weight: np.ndarray  # sums to 1
    station: list[str]
    grid: list[str]
    district: list[str]
    target_s: np.ndarray
    h3: list[tuple[str, str, str]]  # resolution 7, 8, 9 as decimal text


@lru_cache(maxsize=1)
def places(pool_size: int = POOL_SIZE, seed: int = 110) -> Places:
    rng = np.random.default_rng(seed)
    grids = city.grids()
    stations = {s.station_id: s for s in city.stations()}
    west, south, east, north = city.city_outline().polygon.bounds
    hot = [s.hq for s in stations.values()]
    hot += [(rng.uniform(west, east), rng.uniform(south, north)) for _ in range(40)]
    hot_weight = np.concatenate([np.full(len(stations), 2.0), rng.pareto(1.5, 40) + 0.5])
    n_hot = int(pool_size * 0.8)
    which = rng.choice(len(hot), n_hot, p=hot_weight / hot_weight.sum())
    centres = np.array(hot)[which]
    spread = rng.gamma(2.0, 0.004, n_hot)[:, None]
    pts = np.vstack([centres + rng.normal(0, 1, (n_hot, 2)) * spread,
                     np.column_stack([rng.uniform(west, east, pool_size - n_hot),
                                      rng.uniform(south, north, pool_size - n_hot)])])
    weight = np.concatenate([np.full(n_hot, 1.0), np.full(pool_size - n_hot, 0.35)])
    tree = STRtree([g.polygon for g in grids])
    geoms = points(pts)
    where_pt, where_grid = tree.query(geoms, predicate="within")
    grid_of = {}
    for p, g in zip(where_pt.tolist(), where_grid.tolist()):
        grid_of.setdefault(p, g)
    keep = sorted(grid_of)
    lng = np.round(pts[keep, 0], 6)
    lat = np.round(pts[keep, 1], 6)
    out_grids = [grids[grid_of[i]] for i in keep]
    h3s = []
    for x, y in zip(lng.tolist(), lat.tolist()):
        c = cells_of(x, y)
        h3s.append((str(c["h3_r7"]), str(c["h3_r8"]), str(c["h3_r9"])))
    w = weight[keep]
    return Places(
        longitude=lng, latitude=lat, weight=w / w.sum(),
        station=[g.station_id for g in out_grids], grid=[g.grid_id for g in out_grids],
        district=[stations[g.station_id].district_id for g in out_grids],
        target_s=np.array([g.arrival_target_s for g in out_grids]), h3=h3s)


@dataclass(frozen=True)
class Taxonomy:
    codes: list[str]
    categories: list[str]
    weight: np.ndarray


@lru_cache(maxsize=1)
def taxonomy() -> Taxonomy:
    """Every sample incident type, weighted by its category's share and the sample reports' mix."""
    seen = Counter(r["expected_incident_type"] for r in city.sample_reports() if r.get("expected_incident_type"))
    codes, cats, weights = [], [], []
    for category, share in CATEGORY_SHARE.items():
        members = [t for t in city.INCIDENT_TYPES.values() if t.category == category]
        raw = np.array([1.0 + 4.0 * seen.get(t.code, 0) for t in members])
        for t, w in zip(members, raw / raw.sum() * share):
            codes.append(t.code)
            cats.append(category)
            weights.append(w)
    w = np.array(weights)
    return Taxonomy(codes, cats, w / w.sum())


def day_weights(end: datetime, years: int) -> tuple[datetime, np.ndarray]:
    """The first city day of the history and each day's share of its reports."""
    last = end.astimezone(CITY_TIME).replace(hour=0, minute=0, second=0, microsecond=0)
    days = int(round(years * 365.25))
    first = last - timedelta(days=days - 1)
    idx = np.arange(days)
    dates = [first + timedelta(days=int(i)) for i in idx]
    month = np.array([d.month for d in dates]) - 1
    weekday = np.array([d.weekday() for d in dates])
    w = MONTH_PROFILE[month] * WEEKDAY_PROFILE[weekday] * (1 + GROWTH_PER_YEAR) ** (idx / 365.25)
    return first, w / w.sum()


@lru_cache(maxsize=4)
def _days(end_iso: str, years: int):
    return day_weights(datetime.fromisoformat(end_iso), years)


def _ts(epoch: np.ndarray) -> list[str]:
    text = np.datetime_as_string(epoch.astype("datetime64[s]"), unit="s")
    return [t + "+00" for t in text.tolist()]


def _opt_ts(epoch: np.ndarray, present: np.ndarray) -> list[str]:
    out = _ts(np.where(present, epoch, 0))
    return [t if p else NULL for t, p in zip(out, present.tolist())]


def batch_lines(*, load_id: int, seed: int, batch: int, rows: int, end: datetime, years: int) -> bytes:
    """One batch of fact rows as COPY text, in store.FACT_COLUMNS order."""
    rng = np.random.default_rng([seed, batch])
    first, dw = _days(end.astimezone(timezone.utc).isoformat(), years)
    pl, tx = places(), taxonomy()
    day = rng.choice(len(dw), rows, p=dw)
    hour = rng.choice(24, rows, p=HOUR_PROFILE / HOUR_PROFILE.sum())
    second = rng.integers(0, 3600, rows)
    t0 = first.timestamp()
    receive = (t0 + day * 86400 + hour * 3600 + second).astype(np.int64)
    order = np.argsort(receive, kind="stable")  # time order within a batch: BRIN ranges stay narrow
    receive = receive[order]
    place = rng.choice(len(pl.weight), rows, p=pl.weight)
    kind = rng.choice(len(tx.codes), rows, p=tx.weight)
    cats = np.array(tx.categories)[kind]
    police = cats == "POLICE"
    non_police = cats == "NON_POLICE"
    channel_names = [c for c, _ in CHANNELS]
    channel_p = np.array([p for _, p in CHANNELS])
    channel = rng.choice(len(channel_names), rows, p=channel_p / channel_p.sum())
    priority = np.where(police, rng.choice([1, 2, 3], rows, p=[0.12, 0.48, 0.40]), 4)
    answer = receive + np.maximum(1, np.round(rng.gamma(2.2, 1.1, rows))).astype(np.int64)
    answered = rng.random(rows) < 0.985
    hand_off = answer + np.round(rng.gamma(3.0, 8.5, rows)).astype(np.int64)
    handed = police & answered & (rng.random(rows) < 0.93)
    target = pl.target_s[place]
    arrival = hand_off + np.round(target * rng.lognormal(-0.25, 0.45, rows)).astype(np.int64)
    arrived = handed & (rng.random(rows) < 0.9)
    close = np.where(arrived, arrival, answer) + np.round(rng.gamma(2.0, 1500, rows)).astype(np.int64)
    closed = answered & (rng.random(rows) < 0.97)
    merged = rng.random(rows) < 0.06
    referred = non_police & answered & (rng.random(rows) < 0.9)
    rated = (police | non_police) & closed & (rng.random(rows) < 0.35)
    sat = rng.choice(3, rows, p=[0.84, 0.11, 0.05])
    sat_names = ("SATISFIED", "BASICALLY_SATISFIED", "UNSATISFIED")
    # Columns as lists of text; a place's eight columns and a type's two are joined once per pool entry.
    place_text = _place_text(pl)
    kind_text = [f"{c}\t{k}" for c, k in zip(tx.categories, tx.codes)]
    receive_s = _ts(receive)
    flags = {True: "t", False: "f"}
    tail = f"\t\t{{}}\t{load_id}"
    cols = (
        [f"reports/h{load_id}-{batch}-{i}" for i in range(rows)],
        receive_s,
        [kind_text[k] for k in kind.tolist()],
        [str(p) for p in priority.tolist()],
        [channel_names[c] for c in channel.tolist()],
        [place_text[p] for p in place.tolist()],
        _opt_ts(answer, answered), _opt_ts(hand_off, handed), _opt_ts(arrival, arrived), _opt_ts(close, closed),
        [str(t) for t in target.tolist()],
        [flags[m] for m in merged.tolist()],
        [flags[r] for r in referred.tolist()],
        [sat_names[s] if r else "" for s, r in zip(sat.tolist(), rated.tolist())],
        [tail.format(t) for t in receive_s],
    )
    out = map("\t".join, zip(*cols))
    return ("\n".join(out) + "\n").encode()


def _place_text(pl: Places) -> list[str]:
    return [f"{s}\t{g}\t{d}\t{x}\t{y}\t{h[0]}\t{h[1]}\t{h[2]}" for s, g, d, x, y, h in zip(
        pl.station, pl.grid, pl.district, pl.longitude.tolist(), pl.latitude.tolist(), pl.h3)]


def batches(reports: int, batch_size: int) -> list[int]:
    """Rows per batch."""
    full, rest = divmod(reports, batch_size)
    return [batch_size] * full + ([rest] if rest else [])


def months_spanned(end: datetime, years: int) -> tuple[datetime, datetime]:
    """The UTC span [first, last] the history may touch (for the partitions it needs)."""
    first, _ = _days(end.astimezone(timezone.utc).isoformat(), years)
    return first.astimezone(timezone.utc), end.astimezone(CITY_TIME).replace(
        hour=23, minute=59, second=59).astimezone(timezone.utc)


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else math.inf
