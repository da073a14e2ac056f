"""Benchmark harness: `make bench` (all) or `make bench ONLY=intake,alerts`.

Each module in tools/benches/ (not starting with "_") is one benchmark with a
`run(stack, say) -> dict` function. For each, the harness starts the whole
suite as `make run` does (unless the module says `NEEDS_STACK = False`: then
`run(None, say)` measures in the process), on a fresh database and free ports, calls `run`,
stops the suite and writes the returned figures, with the machine they were
measured on, to bench-results/<module>.json.

The load generator shares the machine with the suite; read figures as ratios
to the floors the foundation benchmark measures in the same environment.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import signal
import tempfile
import time
from pathlib import Path

from tools.devstack import ROOT, Ports, Stack, say

BENCH_DIR = Path(__file__).resolve().parent / "benches"


def available() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))


def run_one(name: str, out_dir: Path) -> Path:
    module = importlib.import_module(f"tools.benches.{name}")
    started = time.perf_counter()
    if not getattr(module, "NEEDS_STACK", True):  # measured in the process, without the suite
        results = module.run(None, say)
    else:
        say(f"benchmark {name}: starting the suite")
        run_dir = Path(tempfile.mkdtemp(prefix=f"smart110-bench-{name}-"))
        stack = Stack(run_dir=run_dir, ports=Ports.free(), database_url=os.environ.get("DATABASE_URL") or None,
                      log_level="WARNING", track_statements=getattr(module, "TRACK_STATEMENTS", False),
                      trace_sampling=getattr(module, "TRACE_SAMPLING", 100.0))
        try:
            stack.start()
            results = module.run(stack, say)
        finally:
            stack.stop()
            shutil.rmtree(run_dir, ignore_errors=True)
    doc = {"benchmark": name,
           "description": (module.__doc__ or "").strip(),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "duration_s": round(time.perf_counter() - started, 1),
           "results": results}
    out = out_dir / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    say(f"benchmark {name}: results written to {out}")
    return out


def _stop_on_sigterm(signum, _frame) -> None:
    """SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the suite a benchmark started is stopped
    and its processes and database do not outlive the harness."""
    raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")


def main() -> None:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=os.environ.get("ONLY", ""),
                        help=f"comma-separated benchmarks to run (default all: {', '.join(available())})")
    parser.add_argument("--out-dir", default=str(ROOT / "bench-results"))
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available())}")
    for name in names:
        run_one(name, Path(args.out_dir))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as exc:
        say(f"benchmark stopped ({exc or 'interrupted'}); the suite it started was stopped")
        raise SystemExit(130) from None
