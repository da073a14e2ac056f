"""How well a classifier does on labelled reports: category and type accuracy, per-category
precision and recall, the category confusion matrix, critical misses (a 1级 police matter sent off
the police path or graded below 2级) and non-police recall."""
from __future__ import annotations

from collections import Counter

CATEGORIES = ("POLICE", "NON_POLICE", "CONSULTATION", "INVALID")


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def evaluate(rows: list[dict], predictions: list[dict]) -> dict:
    """`rows`: labelled reports (id, category, type, priority); `predictions`: for each, a dict with
    category, type, priority and optionally needsConfirmation."""
    n = len(rows)
    cat_ok = type_ok = pri_ok = 0
    confusion = {g: {p: 0 for p in CATEGORIES} for g in CATEGORIES}
    critical: list[dict] = []
    confirm = 0
    for row, pred in zip(rows, predictions):
        gold_c, got_c = row["category"], pred["category"]
        cat_ok += gold_c == got_c
        type_ok += row["type"] == pred["type"]
        pri_ok += row.get("priority") == pred.get("priority")
        confirm += bool(pred.get("needsConfirmation"))
        if gold_c in confusion and got_c in confusion[gold_c]:
            confusion[gold_c][got_c] += 1
        if gold_c == "POLICE" and row.get("priority") == 1 and (got_c != "POLICE" or pred.get("priority", 4) > 2):
            critical.append({"id": row.get("id"), "text": row.get("text", ""), "type": row["type"],
                             "got": f"{got_c}/{pred['type']}/{pred.get('priority')}"})
    per_category = {}
    for c in CATEGORIES:
        tp = confusion[c][c]
        predicted = sum(confusion[g][c] for g in CATEGORIES)
        actual = sum(confusion[c].values())
        per_category[c] = {"precision": _ratio(tp, predicted), "recall": _ratio(tp, actual), "support": actual}
    return {
        "count": n,
        "category_accuracy": _ratio(cat_ok, n),
        "type_accuracy": _ratio(type_ok, n),
        "priority_accuracy": _ratio(pri_ok, n),
        "non_police_recall": per_category["NON_POLICE"]["recall"],
        "per_category": per_category,
        "confusion": confusion,
        "critical_misses": len(critical),
        "critical_miss_examples": critical[:20],
        "needs_confirmation_rate": _ratio(confirm, n),
        "types_seen": len(Counter(r["type"] for r in rows)),
    }


def not_worse(new: dict, old: dict) -> bool:
    """Whether a new model's held-out figures are at least as good as the current one's: no more
    critical misses, and category and type accuracy together no lower."""
    if not old:
        return True
    if new["critical_misses"] > old["critical_misses"]:
        return False
    return (new["category_accuracy"] or 0) + (new["type_accuracy"] or 0) >= \
        (old["category_accuracy"] or 0) + (old["type_accuracy"] or 0) - 1e-9
