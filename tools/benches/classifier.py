"""Intake classification (分类定级) and consultations (即问即复) on the corpus's held-out split.

- classifier: the promoted classifier on held-out reports: category and type accuracy, per-category
  precision and recall, the category confusion matrix, critical misses (a 1级 police matter sent
  off the police path or graded below 2级), non-police recall, the share marked needsConfirmation
- first_match_rules: the same figures for the first-match keyword table the classifier replaced
  (`rules.KEYWORD_RULES` read in table order, as intake classified before), for a fair before/after
- knowledge: held-out consultations against the seed knowledge base at the calibrated threshold:
  answered at once and right, answered at once wrongly, rare questions (no entry) sent to an expert
- timing: classifier CPU time per report (p50/p99, microseconds, thread CPU clock) and the load
  time of a fresh process (import, model, jieba dictionary, first classification)

Runs in the process, without the suite: `python -m tools.benches.classifier` writes
bench-results/classifier.json; `make bench ONLY=classifier` does the same through the harness.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sampledata import knowledge as seed
from services.intake import knowledge, rules
from services.intake.classifier import artifacts, corpus, metrics

NEEDS_STACK = False
ROOT = Path(__file__).resolve().parents[2]
LOAD_SCRIPT = ("import time; t = time.perf_counter(); from services.intake.classifier import artifacts; "
               "c = artifacts.load(); c.classify('有人打架', 'PHONE'); print(time.perf_counter() - t)")


def _hit(text: str, keywords: tuple[str, ...]) -> str:
    for kw in keywords:
        if all(p in text for p in kw.split("+")):
            return kw
    return ""


def first_match(text: str, channel: str) -> dict:
    """The classification intake made before the classifier: the first keyword rule that matches,
    else the channel's rule, else POLICE/OTHER/3; then the priority and channel rules."""
    matched = next((r for r in rules.KEYWORD_RULES if _hit(text, r.keywords) and not _hit(text, r.unless)), None)
    channel_rule = rules.CHANNEL_RULES.get(channel)
    if matched is not None:
        itype, priority = matched.incident_type, matched.priority
    elif channel_rule and channel_rule.unmatched_type:
        itype, priority = channel_rule.unmatched_type, channel_rule.unmatched_priority
    else:
        itype, priority = rules.FALLBACK_TYPE, rules.FALLBACK_PRIORITY
    category = rules.INCIDENT_TYPES[itype].category
    if category == rules.POLICE:
        for pr in rules.PRIORITY_RULES:
            if (not pr.incident_types or itype in pr.incident_types) and _hit(text, pr.keywords) \
                    and not _hit(text, pr.unless) and pr.priority < priority:
                priority = pr.priority
        if channel_rule is not None and channel_rule.urgent_priority and priority > channel_rule.urgent_priority:
            priority = channel_rule.urgent_priority
        if channel_rule is not None and channel_rule.calm_priority and priority < channel_rule.calm_priority:
            priority = channel_rule.calm_priority
    return {"category": category, "type": itype, "priority": priority}


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(p / 100 * len(s)))] * 1e6, 1) if s else 0.0


def _summary(m: dict) -> dict:
    return {k: m[k] for k in ("count", "category_accuracy", "type_accuracy", "priority_accuracy", "non_police_recall",
                              "critical_misses", "needs_confirmation_rate")}


def measure(corpus_dir: Path | None = None, say=print) -> dict:
    held = corpus.reports(corpus.HELDOUT, corpus_dir)
    clf = artifacts.default()
    say(f"classifier {clf.version}: {len(held)} held-out reports")
    cpu, predictions = [], []
    for r in held:
        c0 = time.thread_time()
        d = clf.classify(r["text"], r.get("channel", ""))
        cpu.append(time.thread_time() - c0)
        predictions.append(d.as_json())
    new = metrics.evaluate(held, predictions)
    old = metrics.evaluate(held, [first_match(r["text"], r.get("channel", "")) for r in held])
    loads = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", LOAD_SCRIPT], capture_output=True, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": f"{ROOT / 'gen'}:{ROOT}"}, check=True)
        loads.append(float(out.stdout.strip().splitlines()[-1]))
    questions = corpus.consultations(corpus.HELDOUT, corpus_dir)
    index = knowledge.KnowledgeIndex([knowledge.Entry(s.entry_id, s.topic, s.question, s.answer, s.keywords)
                                      for s in seed.entries()],
                                     knowledge.load_paraphrases(corpus_dir / "consultations.jsonl") if corpus_dir else None)
    kb = knowledge.outcomes(index, questions, knowledge.ANSWER_THRESHOLD) if questions else {}
    kb_before = knowledge.outcomes(index, questions, knowledge.DEFAULT_ANSWER_THRESHOLD) if questions else {}
    return {
        "classifier_version": clf.version,
        "classifier": new,
        "first_match_rules": old,
        "summary": {"classifier": _summary(new), "first_match_rules": _summary(old)},
        "knowledge": kb,
        "knowledge_at_default_threshold": kb_before,
        "timing": {"cpu_p50_us": _pct(cpu, 50), "cpu_p99_us": _pct(cpu, 99), "reports": len(cpu),
                   "load_seconds_fresh_process": round(min(loads), 3) if loads else None,
                   "load_seconds_max": round(max(loads), 3) if loads else None},
        "targets": {"category_accuracy": 0.95, "type_accuracy": 0.85, "non_police_recall": 0.9, "critical_misses": 0,
                    "kb_answered_right_share": 0.9, "kb_answered_wrong_share_max": 0.03,
                    "kb_rare_referred_share": 0.9, "cpu_p99_us_max": 5000, "load_seconds_max": 2.0},
    }


def run(stack, say) -> dict:  # the harness's entry point; needs no running suite
    return measure(say=say)


def main() -> None:
    started = time.perf_counter()
    results = measure(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    doc = {"benchmark": "classifier", "description": (__doc__ or "").strip(),
           "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "duration_s": round(time.perf_counter() - started, 1), "results": results}
    out = ROOT / "bench-results" / "classifier.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({"summary": results["summary"], "knowledge": results["knowledge"], "timing": results["timing"]},
                     ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
