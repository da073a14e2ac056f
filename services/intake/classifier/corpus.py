"""The labelled corpus (`services/intake/corpus/`): reports (id, text, channel, category, type,
priority, split, style) and consultations (id, question, entry_id or null for an expert, split).
The `heldout` split is for measuring only; training and tuning use `train`."""
from __future__ import annotations

import json
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parent.parent / "corpus"
TRAIN, HELDOUT = "train", "heldout"


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line being written
                continue
    return out


def reports(split: str | None = None, directory: Path | None = None) -> list[dict]:
    rows = read_jsonl((directory or CORPUS_DIR) / "reports.jsonl")
    return [r for r in rows if split is None or r.get("split") == split]


def consultations(split: str | None = None, directory: Path | None = None) -> list[dict]:
    rows = read_jsonl((directory or CORPUS_DIR) / "consultations.jsonl")
    return [r for r in rows if split is None or r.get("split") == split]
