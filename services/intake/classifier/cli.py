"""The classifier's command lines, wired by `python -m services.intake`:

- `classify`: JSON lines `{"text": ..., "channel": ...}` on stdin, one JSON line per input on stdout
  (category, type, priority, confidence, needsConfirmation, reason); no database.
- `train`: retrain from the corpus's train split and the call-takers' corrections, evaluate on
  held-out, write a versioned artifact, promote it when it does not do worse (see `training`).
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TextIO

from . import artifacts, corpus, training


def classify_stream(lines: TextIO, out: TextIO, *, version: str = "") -> int:
    """Classifies each JSON line; a line that is not a JSON object gets {"error": ...}. Returns the count."""
    clf = artifacts.load(version) if version else artifacts.default()
    n = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("not a JSON object")
            text, channel = str(item.get("text") or ""), str(item.get("channel") or "")
        except ValueError as exc:
            out.write(json.dumps({"error": f"invalid input line: {exc}"}, ensure_ascii=False) + "\n")
            continue
        d = clf.classify(text, channel.removeprefix("CHANNEL_"))
        out.write(json.dumps(d.as_json(), ensure_ascii=False) + "\n")
        out.flush()
        n += 1
    return n


def classify_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.intake classify", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", default="", help="classifier version (default: the promoted one)")
    args = parser.parse_args(argv)
    classify_stream(sys.stdin, sys.stdout, version=args.version)


def train_main(argv: list[str], corrections: Callable[[], list[dict]], entries: Callable[[], list]) -> None:
    """`corrections()`: the call-takers' labelled examples (from intake's database when it is reachable);
    `entries()`: the knowledge base's entries, on which its answer threshold is calibrated."""
    parser = argparse.ArgumentParser(prog="python -m services.intake train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(corpus.CORPUS_DIR), help="the labelled corpus directory")
    parser.add_argument("--models", default=str(artifacts.models_dir()), help="where artifacts are written")
    parser.add_argument("--no-corrections", action="store_true", help="train on the corpus alone")
    args = parser.parse_args(argv)

    def say(msg: str) -> None:
        print(f"==> {msg}", file=sys.stderr, flush=True)

    found = [] if args.no_corrections else corrections()
    say(f"{len(found)} call-taker corrections")
    doc = training.train(corrections=found, corpus_dir=Path(args.corpus), models_dir=Path(args.models),
                         now=datetime.now(timezone.utc), say=say)
    kb = training.calibrate_knowledge(entries(), corpus_dir=Path(args.corpus), models_dir=Path(args.models), say=say)
    held = doc["heldout"]
    print(json.dumps({"version": doc["version"], "promoted": doc["promoted"], "previous": doc["previous"],
                      "category_accuracy": held["category_accuracy"], "type_accuracy": held["type_accuracy"],
                      "critical_misses": held["critical_misses"], "non_police_recall": held["non_police_recall"],
                      "knowledge": kb.get("heldout") or kb.get("train") or {}},
                     ensure_ascii=False))
