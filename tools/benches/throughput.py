"""End-to-end throughput: open-loop reports at fixed rates, the consumers' lag, and the cost of one report.

Each step offers reports at a fixed rate for a fixed time (open loop: a report
is sent at its scheduled moment whether or not earlier ones were answered, and
its latency counts from that moment, so a stall is not hidden by the client
waiting: no coordinated omission). The load comes from several generator
processes (`BENCH_GENERATORS`, default 2) whose own CPU is reported beside the
figures. Every report has its own caller and place, so none is merged as a
repeat; two in three are police matters, one in three city-service matters,
one in ten of the police ones carries an alert keyword.

Per step:
- accepted rate, ReportIncident latency (p50/p99 from the scheduled send);
- every consumer's lag (seconds from an event's commit to the consumer's
  cursor passing it, sampled every 0.25 s: p99 and max) and the backlog when
  the step ends;
- report → case, report → first offer (at the database: the offer's commit
  time; the phone's stream adds the feed hop) and report → work order;
- whether everything followed, as intake classified it: every police report
  a case, every non-police one a work order, within the drain window; cases
  left without an offer are counted beside it (the sample city has about 300
  units, so a long step at a high rate runs out of free units: police
  strength, not the software, and not part of whether a step holds);
- the cost of one report: CPU milliseconds per report of each process
  (intake, dispatch, referral, alerts, scoring, Envoy, Postgres, the
  generators) and Postgres commits and rows written per report.

A step holds when at least 99% of the offered reports were accepted, every
consumer's lag p99 stayed ≤ 1 s, nothing was left behind and everything
followed. The bench prints the highest rate that held. The machine's two
cores run the load generator, Envoy, Postgres and five services together:
read the figures as ratios within one run.

Traces are sampled as in the cluster (k8s/base: one request in ten, the
services following the gateway's decision); BENCH_TRACE_SAMPLING=100 traces
everything, as `make run` does.

Environment: BENCH_RATES (default "10,25,50,100,150"), BENCH_STEP_SECONDS
(default 20), BENCH_GENERATORS (default 2), BENCH_DRAIN_SECONDS (default 30),
BENCH_TRACE_SAMPLING (percent, default 10).
"""
from __future__ import annotations

import asyncio
import collections
import multiprocessing as mp
import os
import resource
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from services.runtime.db import sqlalchemy_url
from tools.benches._common import percentiles
from tools.devstack import SERVICES, Stack
from tools.token import mint

POLICE_TEXTS = [
    "广场上有人打架，一人受伤", "我的电动车被偷了", "有人在小区门口抢包", "家里被盗，门锁被撬",
    "路口两车相撞，有人受伤", "有人持刀威胁路人", "邻居家里传来呼救声", "有个小孩走失了，家长在找",
]
KEYWORD_TEXTS = ["有人持枪在商场门口", "有人要跳楼，站在楼顶边上"]
NON_POLICE_TEXTS = [
    "楼下工地夜间施工噪音扰民", "小区路灯坏了好几天没人修", "路面有个大坑，井盖也丢了",
    "楼上漏水到我家，物业不管", "垃圾好几天没人清运，臭气熏天",
]
# The city lies around lon 114.20–114.50, lat 30.45–30.70: a grid of distinct places 0.004° apart.
GRID = [(round(114.22 + i * 0.004, 6), round(30.47 + j * 0.004, 6)) for j in range(55) for i in range(70)]
HOLD_LAG_S = 1.0
HOLD_ACCEPTED = 0.99


def report_body(n: int) -> tuple[dict, str]:
    """(request body, kind) of the n-th report of the run: kind police / keyword / city."""
    kind = "city" if n % 3 == 2 else ("keyword" if n % 30 == 0 else "police")
    words = {"city": NON_POLICE_TEXTS, "keyword": KEYWORD_TEXTS, "police": POLICE_TEXTS}[kind]
    lon, lat = GRID[(n * 7919) % len(GRID)]
    return {"requestId": uuid.uuid4().hex, "report": {
        "channel": "CHANNEL_PHONE", "caller": {"phoneNumber": f"137{n:08d}"},
        "location": {"point": {"longitude": lon, "latitude": lat}, "accuracyM": 20,
                     "source": "LOCATION_SOURCE_GNSS"},
        "description": f"{words[n % len(words)]}（压测 {n}）"}}, kind


# -- the generator processes -------------------------------------------------------------------

def _generator(url: str, token: str, first: int, step: int, rate: float, seconds: float, start_at: float,
               out: mp.Queue) -> None:
    """Sends reports first, first+step, ... at `rate` a second from `start_at` (time.time()) on."""
    results = asyncio.run(_generate(url, token, first, step, rate, seconds, start_at))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put({"results": results, "cpu_s": usage.ru_utime + usage.ru_stime})


async def _generate(url, token, first, step, rate, seconds, start_at):
    results = []  # (n, kind, name or "", latency from the scheduled moment, status)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits,
                                 timeout=30) as http:
        async def one(n, due):
            body, kind = report_body(n)
            try:
                resp = await http.post("/v1/reports", json=body)
                name = resp.json().get("name", "") if resp.status_code == 200 else ""
                results.append((n, kind, name, time.time() - due, resp.status_code))
            except Exception:  # noqa: BLE001 - counted as not accepted
                results.append((n, kind, "", time.time() - due, 0))

        tasks = []
        count = int(rate * seconds)
        for i in range(count):
            due = start_at + i / rate
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(first + i * step, due)))
        await asyncio.gather(*tasks)
    return results


# -- what the machine spent -------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int, children: bool = False) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: children that have exited
    return ticks / _TICK


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _postgres_pid(stack: Stack) -> int | None:
    pidfile = stack.run_dir / "pgdata" / "postmaster.pid"
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cpu_snapshot(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of each process of the suite (Postgres: the postmaster and its backends)."""
    snap = {name: _proc_cpu(proc.pid) for name, proc in stack._procs.items() if name in (*SERVICES, "gateway")}
    pg = _postgres_pid(stack)
    if pg is not None:
        snap["postgres"] = _proc_cpu(pg, children=True) + sum(_proc_cpu(c) for c in _children(pg))
    return snap


def db_counters(conn) -> dict[str, int]:
    row = conn.execute(text(
        "SELECT sum(xact_commit), sum(tup_inserted), sum(tup_updated), sum(tup_deleted) FROM pg_stat_database"
    )).one()
    return {"commits": int(row[0]), "rows_inserted": int(row[1]), "rows_updated": int(row[2]),
            "rows_deleted": int(row[3])}


def statement_counts(conn) -> dict[str, int] | None:
    """Statements run so far by each database role (a service's role is its name), transaction control
    (BEGIN, COMMIT, ...) apart as "transaction_control"; None when pg_stat_statements is not loaded."""
    try:
        rows = conn.execute(text(
            "SELECT r.rolname AS role, "
            "       (upper(split_part(ltrim(s.query), ' ', 1)) IN ('BEGIN', 'COMMIT', 'ROLLBACK', 'SAVEPOINT', "
            "        'RELEASE', 'START', 'SET', 'SHOW', 'DISCARD')) AS control, sum(s.calls) AS calls "
            "FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
            "WHERE r.rolname <> current_user GROUP BY 1, 2")).all()
    except Exception:  # noqa: BLE001 - the extension is not loaded: the figure is left out
        conn.rollback()
        return None
    counts: dict[str, int] = collections.Counter()
    for row in rows:
        counts["transaction_control" if row.control else row.role] += int(row.calls)
    return dict(counts)


def top_statements(conn, limit: int = 15) -> dict[tuple[str, str], int]:
    """{(role, query text, shortened): calls} of the services' statements run most often so far."""
    try:
        rows = conn.execute(text(
            "SELECT r.rolname AS role, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 160) AS query, "
            "       sum(s.calls) AS calls "
            "FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
            "WHERE r.rolname <> current_user GROUP BY 1, 2 ORDER BY 3 DESC LIMIT :n"), {"n": 4 * limit}).all()
    except Exception:  # noqa: BLE001 - the extension is not loaded
        conn.rollback()
        return {}
    return {(row.role, row.query): int(row.calls) for row in rows}


# -- consumers' lag ---------------------------------------------------------------------------

def consumers() -> list[tuple[str, str, list[str]]]:
    """(consumer, source, event types) for every feed subscription of the suite."""
    import importlib

    found = []
    for svc, pkg in (("intake", "intake"), ("dispatch", "dispatch"), ("referral", "referral12345"),
                     ("alerts", "alerts"), ("scoring", "scoring")):
        handlers = importlib.import_module(f"services.{pkg}.handlers").EVENT_HANDLERS
        for source, subs in handlers.items():
            found.append((svc, source, sorted(subs)))
    return found


class LagSampler:
    """Every 0.25 s: for each consumer, how long ago the oldest event it has not passed was committed."""

    def __init__(self, engine, subs):
        self.engine = engine
        self.subs = subs
        self.samples: dict[str, list[float]] = {f"{c}<-{s}": [] for c, s, _ in subs}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(10)

    def lags(self) -> dict[str, tuple[float, int]]:
        """{consumer<-source: (seconds behind, events behind)} now."""
        out = {}
        with self.engine.connect() as conn:
            for consumer, source, types in self.subs:  # each service's schema is named after it
                row = conn.execute(text(
                    f"SELECT extract(epoch FROM now() - min(o.occur_time)), count(*) FROM {source}.outbox o "
                    f"WHERE o.type = ANY(:types) AND o.sequence > coalesce("
                    f"(SELECT last_sequence FROM {consumer}.feed_cursors WHERE source = :source), 0)"),
                    {"types": types, "source": source}).one()
                out[f"{consumer}<-{source}"] = (float(row[0] or 0.0), int(row[1]))
        return out

    def _run(self):
        while not self._stop.wait(0.25):
            try:
                for key, (seconds, _) in self.lags().items():
                    self.samples[key].append(seconds)
            except Exception:  # noqa: BLE001 - a missed sample, not a failed bench
                pass


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(0.99 * len(s)))]


# -- one step ---------------------------------------------------------------------------------

def run_step(stack: Stack, engine, subs, token: str, rate: float, seconds: float, first: int, generators: int,
             drain_s: float, say) -> dict:
    with engine.connect() as conn:
        db_before = db_counters(conn)
        statements_before = statement_counts(conn)
        top_before = top_statements(conn)
    cpu_before = cpu_snapshot(stack)
    sampler = LagSampler(engine, subs)
    sampler.start()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 1.5  # the generators start together
    procs = [ctx.Process(target=_generator, args=(stack.gateway_url, token, first + g, generators,
                                                  rate / generators, seconds, start_at + g / rate, out))
             for g in range(generators)]
    for p in procs:
        p.start()
    parts = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(10)
    load_end = time.time()
    sampler.stop()
    end_lags = sampler.lags()
    # Drain: how long until every consumer has passed everything.
    drained_after = None
    while time.time() - load_end < drain_s:
        lags = sampler.lags()
        if all(n == 0 for _, n in lags.values()):
            drained_after = time.time() - load_end
            break
        time.sleep(0.25)
    with engine.connect() as conn:
        db_after = db_counters(conn)
        statements_after = statement_counts(conn)
        top_after = top_statements(conn)
    cpu_after = cpu_snapshot(stack)
    window = time.time() - start_at  # the load and the drain: the time the CPU figures cover
    results = [r for part in parts for r in part["results"]]
    generator_cpu = sum(part["cpu_s"] for part in parts)

    accepted = [r for r in results if r[4] == 200]
    latencies = [r[3] for r in results]
    ids = {r[2].split("/", 1)[1]: r[1] for r in accepted}
    followed = follow(engine, ids)
    n = max(len(accepted), 1)
    cpu_ms = {name: round((cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0)) * 1000 / n, 2)
              for name in cpu_after}
    cpu_ms["generators"] = round(generator_cpu * 1000 / n, 2)
    elapsed = max(seconds, load_end - start_at)  # the load's time, longer when sending fell behind
    total_cpu_s = sum(cpu_after.get(k, 0.0) - cpu_before.get(k, 0.0) for k in cpu_after) + generator_cpu
    lag = {key: {"p99_s": round(_p99(v), 3), "max_s": round(max(v or [0.0]), 3),
                 "behind_at_end": end_lags.get(key, (0, 0))[1]} for key, v in sampler.samples.items()}
    holds = (len(accepted) >= HOLD_ACCEPTED * len(results) and all(v["p99_s"] <= HOLD_LAG_S for v in lag.values())
             and drained_after is not None and followed["complete"])
    step = {
        "offered_rps": rate, "seconds": seconds, "offered": len(results), "accepted": len(accepted),
        "accepted_rps": round(len(accepted) / elapsed, 1),
        "errors": dict(sorted(collections.Counter(str(r[4]) for r in results if r[4] != 200).items())),
        "report_latency_from_schedule": percentiles(latencies),
        "consumer_lag": lag,
        "drained_after_s": None if drained_after is None else round(drained_after, 2),
        **followed["figures"],
        "cpu_ms_per_report": cpu_ms,
        "machine_cpu_share": {"generators": round(generator_cpu / max(total_cpu_s, 1e-9), 3),
                              "cores_busy_load_and_drain": round(total_cpu_s / max(window, 1e-9), 2)},
        # What the suite's CPU per report allows on this machine's cores, the generators set aside.
        "cpu_bound_ceiling_rps": round((os.cpu_count() or 1) * 1000 / max(
            sum(v for k, v in cpu_ms.items() if k != "generators"), 1e-9), 1),
        "db_per_report": {k: round((db_after[k] - db_before[k]) / n, 2) for k in db_after},
        **({"statements_per_report": _statements_per_report(statements_before, statements_after, n)}
           if statements_after is not None else {}),
        **({"most_run_statements_per_report": [
            {"role": role, "query": query, "per_report": round((calls - top_before.get((role, query), 0)) / n, 2)}
            for (role, query), calls in sorted(top_after.items(),
                                               key=lambda kv: -(kv[1] - top_before.get(kv[0], 0)))[:15]]}
           if top_after else {}),
        "holds": holds,
    }
    worst = max(lag.items(), key=lambda kv: kv[1]["p99_s"]) if lag else ("-", {"p99_s": 0})
    say(f"throughput {rate:g}/s: accepted {step['accepted_rps']}/s ({len(accepted)}/{len(results)}), "
        f"p99 {step['report_latency_from_schedule'].get('p99_ms')} ms, worst lag p99 {worst[1]['p99_s']} s "
        f"({worst[0]}), drained after {step['drained_after_s']} s, "
        f"followed {'all' if followed['complete'] else 'NOT all'}: {'holds' if holds else 'does not hold'}")
    say(f"throughput {rate:g}/s per report: CPU ms " + ", ".join(f"{k} {v}" for k, v in cpu_ms.items())
        + f"; commits {step['db_per_report']['commits']}"
        + (f"; statements {step['statements_per_report']}" if "statements_per_report" in step else ""))
    return step


def _statements_per_report(before: dict[str, int] | None, after: dict[str, int], n: int) -> dict[str, float]:
    """Statements per report by service (role), transaction control apart, and their total without it."""
    before = before or {}
    per = {k: round((after[k] - before.get(k, 0)) / n, 2) for k in sorted(after)}
    per["total_without_transaction_control"] = round(
        sum(v for k, v in per.items() if k != "transaction_control"), 2)
    return per


def follow(engine, ids: dict[str, str]) -> dict:
    """Whether every accepted report was followed (case with an offer, or work order), and the delays."""
    if not ids:
        return {"complete": True, "figures": {}}
    names = list(ids)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, receive_time, category, merged_into FROM intake.reports "
                                 "WHERE id = ANY(:ids)"), {"ids": names}).all()
        received = {r.id: r.receive_time for r in rows}
        # Followed as intake classified it (the classifier's own accuracy is the classifier bench's matter);
        # a report merged into another as a repeat follows its master.
        category = {r.id: r.category for r in rows if not r.merged_into}
        cases = {r.report.split("/", 1)[-1]: r for r in conn.execute(text(
            "SELECT c.report, c.create_time, (SELECT min(a.offer_time) FROM dispatch.assignments a "
            "WHERE a.case_id = c.id) AS offer_time FROM dispatch.cases c "
            "WHERE c.report = ANY(:ids) OR c.report = ANY(:names)"),
            {"ids": names, "names": [f"reports/{i}" for i in names]})}
        orders = {r.report.split("/", 1)[-1]: r for r in conn.execute(text(
            "SELECT report, create_time FROM referral.work_orders WHERE report = ANY(:ids) OR report = ANY(:names)"),
            {"ids": names, "names": [f"reports/{i}" for i in names]})}
    police = [i for i in ids if category.get(i) == "POLICE"]
    city = [i for i in ids if category.get(i) == "NON_POLICE"]
    to_case = [(cases[i].create_time - received[i]).total_seconds() for i in police if i in cases and i in received]
    to_offer = [(cases[i].offer_time - received[i]).total_seconds() for i in police
                if i in cases and cases[i].offer_time is not None and i in received]
    to_order = [(orders[i].create_time - received[i]).total_seconds() for i in city if i in orders and i in received]
    without_case = sum(1 for i in police if i not in cases)
    without_offer = sum(1 for i in police if i in cases and cases[i].offer_time is None)
    without_order = sum(1 for i in city if i not in orders)
    return {"complete": not (without_case or without_order),
            "figures": {"classified_police": len(police), "classified_non_police": len(city),
                        "merged_as_repeats": sum(1 for r in rows if r.merged_into),
                        "police_without_case": without_case, "cases_without_offer": without_offer,
                        "city_without_work_order": without_order,
                        "report_to_case": percentiles(to_case), "report_to_first_offer": percentiles(to_offer),
                        "report_to_work_order": percentiles(to_order)}}


TRACK_STATEMENTS = True  # the harness loads pg_stat_statements for this benchmark
# Traced share of requests, percent: the cluster's (k8s/base: one in ten) unless BENCH_TRACE_SAMPLING says.
TRACE_SAMPLING = float(os.environ.get("BENCH_TRACE_SAMPLING", 10))


def run(stack: Stack, say) -> dict:
    rates = [float(r) for r in os.environ.get("BENCH_RATES", "10,25,50,100,150").split(",") if r.strip()]
    seconds = float(os.environ.get("BENCH_STEP_SECONDS", 20))
    generators = int(os.environ.get("BENCH_GENERATORS", 2))
    drain_s = float(os.environ.get("BENCH_DRAIN_SECONDS", 30))
    token = mint(roles=["call_taker"], sub="bench-throughput")
    engine = create_engine(sqlalchemy_url(stack.admin_url))
    subs = consumers()
    say(f"throughput: open-loop steps of {seconds:g}s at {', '.join(f'{r:g}' for r in rates)} reports/s, "
        f"{generators} generator processes")
    steps, first = [], 0
    try:
        for rate in rates:
            steps.append(run_step(stack, engine, subs, token, rate, seconds, first, generators, drain_s, say))
            first += int(rate * seconds) + generators
            if not steps[-1]["holds"] and steps[-1]["drained_after_s"] is None:
                say("throughput: the suite did not drain; higher rates are not tried")
                break
    finally:
        engine.dispose()
    held = [s["offered_rps"] for s in steps if s["holds"]]
    best = max(held) if held else 0
    say(f"throughput: highest rate that holds: {best:g} reports/s")
    return {"measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "trace_sampling_percent": TRACE_SAMPLING,
            "highest_rate_that_holds_rps": best, "hold_rule": {
                "accepted_at_least": HOLD_ACCEPTED, "consumer_lag_p99_at_most_s": HOLD_LAG_S,
                "drained_within_s": drain_s, "every_report_followed": True},
            "steps": steps}
