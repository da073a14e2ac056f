"""Retraining (`python -m services.intake train`): from the corpus's train split and the
call-takers' corrections, a new model; β, λ and the confidence threshold tuned by k-fold
cross-validation within the training examples (never on held-out); the held-out figures of the
new model and of the current one on the same texts; a versioned artifact; and the `current`
pointer moved only when the new model does not do worse on held-out."""
from __future__ import annotations

import hashlib
import json
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from sklearn.linear_model import LogisticRegression

from .. import knowledge, rules
from . import artifacts, corpus, metrics
from .core import Classifier, Params
from .fitting import fit

# A call-taker's correction counts this many times a corpus example: it is the live language.
CORRECTION_WEIGHT = 3.0
FOLDS = 5
# The evidence is the language's prior, for types and phrasings the corpus lacks: never turned off.
BETAS = (0.25, 0.5, 0.75, 1.0, 1.5)
SMOOTHINGS = (0.05, 0.2, 0.4)
# Words used without asserting them always count against their type (language, not corpus).
GAMMAS = (1.0, 0.5)
THRESHOLDS = tuple(round(0.2 + 0.05 * i, 2) for i in range(13))  # 0.20 .. 0.80
# The confident decisions (at or above the threshold) should be at least this accurate in
# cross-validation: the type accuracy asked of the classifier as a whole. Asking more of the
# unconfirmed decisions marks most reports for confirmation, and a call-taker who has to confirm
# most calls confirms none with care.
CONFIDENT_TYPE_ACCURACY = 0.85


@dataclass(frozen=True)
class Example:
    id: str
    text: str
    channel: str
    incident_type: str
    priority: int
    weight: float = 1.0


def examples(train_rows: list[dict], corrections: list[dict]) -> list[Example]:
    out = [Example(r["id"], r["text"], r.get("channel", ""), r["type"], int(r["priority"])) for r in train_rows
           if r.get("type") in rules.INCIDENT_TYPES]
    out += [Example(f"correction:{c['report_id']}", c["text"], c.get("channel", ""), c["incident_type"],
                    int(c["priority"]), CORRECTION_WEIGHT) for c in corrections
            if c.get("incident_type") in rules.INCIDENT_TYPES and c.get("text")]
    return out


def _fold(example_id: str, folds: int) -> int:
    return zlib.crc32(example_id.encode()) % folds


def _urgency_label(e: Example) -> str:
    return "1" if e.priority == 1 else "0"


def cross_validate(exs: list[Example], docs: list[list[str]], evs: list, base: Classifier, *, folds: int,
                   say: Callable[[str], None]) -> tuple[list[dict], list[float]]:
    """Out-of-fold type probabilities and urgency (1级) probabilities for every example."""
    out: list[dict] = [{} for _ in exs]
    urgent: list[float] = [0.0 for _ in exs]
    for k in range(folds):
        train_idx = [i for i, e in enumerate(exs) if _fold(e.id, folds) != k]
        test_idx = [i for i, e in enumerate(exs) if _fold(e.id, folds) == k]
        if not test_idx or len({exs[i].incident_type for i in train_idx}) < 2:
            continue
        m = fit([docs[i] for i in train_idx], [exs[i].incident_type for i in train_idx],
                weights=[exs[i].weight for i in train_idx])
        u = fit([docs[i] for i in train_idx], [_urgency_label(exs[i]) for i in train_idx],
                weights=[exs[i].weight for i in train_idx])
        for i in test_idx:
            out[i] = m.probabilities(docs[i])
            urgent[i] = u.probabilities(docs[i]).get("1", 0.0)
        say(f"  fold {k + 1}/{folds}: trained on {len(train_idx)}, predicted {len(test_idx)}")
    return out, urgent


def tune_urgency(exs: list[Example], urgent: list[float], tops: list[str], base: Classifier) -> tuple[float, float, dict]:
    """The urgency thresholds, out of fold: `keep` (a police report graded below 2级 is kept at 2级)
    the highest that leaves no more than 1% of the 1级 police matters the decision alone would grade
    below 2级 or send off the police path; `raise` (to 1级, or back onto the police path) the lowest
    at which nine in ten raised are 1级 matters."""
    police = rules.POLICE
    ones = [(u, top) for e, u, top in zip(exs, urgent, tops)
            if rules.INCIDENT_TYPES[e.incident_type].category == police and e.priority == 1]
    allowed = len(ones) // 100
    keep = 0.1  # below this, nearly every police report would be kept at 2级: the threshold means nothing
    for t in (0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1):
        missed = sum(1 for u, top in ones if u < t and (rules.INCIDENT_TYPES[top].category != police
                                                        or base.default_priority(top) > 2))
        if missed <= allowed:
            keep = t
            break
    raise_at = 0.95
    for t in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        raised = [e for e, u in zip(exs, urgent) if u >= t]
        if raised and sum(e.priority == 1 for e in raised) / len(raised) >= 0.9:
            raise_at = max(t, keep)
            break
    low = [u for e, u, top in zip(exs, urgent, tops) if rules.INCIDENT_TYPES[top].category == police
           and base.default_priority(top) > 2]
    return keep, raise_at, {"urgent_kept_at_2_share": round(sum(u >= keep for u in low) / max(len(low), 1), 4)}


def tune(exs: list[Example], oof: list[dict], evs: list, base: Classifier) -> tuple[Params, dict]:
    """β, λ and γ that make the combined decision best out of fold, then the lowest threshold above
    which the decisions are accurate enough."""
    best, best_score, figures = None, -1.0, {}
    grid = [(b, s, g) for b in BETAS for s in SMOOTHINGS for g in GAMMAS]
    for beta, smoothing, gamma in grid:
        p = Params(beta=beta, smoothing=smoothing, gamma=gamma)
        type_ok = cat_ok = 0
        for e, probs, ev in zip(exs, oof, evs):
            top = base.combine(probs, ev, p)[0][0]
            type_ok += top == e.incident_type
            cat_ok += rules.INCIDENT_TYPES[top].category == rules.INCIDENT_TYPES[e.incident_type].category
        score = (type_ok + cat_ok) / (2 * max(len(exs), 1))
        figures[f"beta={beta},smoothing={smoothing},gamma={gamma}"] = round(score, 4)
        if score > best_score + 1e-9:
            best, best_score = p, score
    ranked = [(base.combine(probs, ev, best)[0], e) for e, probs, ev in zip(exs, oof, evs)]
    threshold = THRESHOLDS[-1]
    for t in THRESHOLDS:
        confident = [(top, e) for (top, conf), e in ranked if conf >= t]
        if confident and sum(top == e.incident_type for top, e in confident) / len(confident) >= CONFIDENT_TYPE_ACCURACY:
            threshold = t
            break
    confirmed = sum(1 for (_, conf), _ in ranked if conf < threshold) / max(len(ranked), 1)
    return Params(best.beta, best.smoothing, best.gamma, threshold), {
        "cv_grid": figures, "cv_score": round(best_score, 4), "cv_needs_confirmation_rate": round(confirmed, 4)}


def type_priorities(exs: list[Example]) -> dict[str, int]:
    """Each type's usual priority in the training examples (the most frequent; the more urgent on a tie)."""
    by_type: dict[str, Counter] = defaultdict(Counter)
    for e in exs:
        by_type[e.incident_type][e.priority] += e.weight
    return {t: min(c, key=lambda p: (-c[p], p)) for t, c in by_type.items()}


def evaluate(clf: Classifier, rows: list[dict]) -> dict:
    return metrics.evaluate(rows, [clf.classify(r["text"], r.get("channel", "")).as_json() for r in rows])


def version_of(exs: list[Example], now: datetime) -> str:
    digest = hashlib.sha256(json.dumps([(e.text, e.incident_type, e.priority, e.weight) for e in exs],
                                       ensure_ascii=False).encode()).hexdigest()[:8]
    return f"{now.astimezone(timezone.utc):%Y%m%d%H%M%S}-{digest}"


def fit_combiner(index_for, questions: list[dict], folds: int = 5, limit: int = 3) -> knowledge.Combiner | None:
    """A `Combiner` fitted out of fold: for each fold's questions, the candidates of an index built with
    the other folds' questions as phrasings (`index_for(paraphrases)`, without a combiner), labelled
    right when the candidate is the question's entry (a rare question has none). None when the
    questions give no right and no wrong candidate to learn from."""
    xs: list[tuple[float, ...]] = []
    ys: list[int] = []
    for k in range(folds):
        index = index_for(knowledge.other_folds(questions, k, folds))
        for i, q in enumerate(questions):
            if i % folds != k:
                continue
            for c in index.candidates(q["question"], limit=limit):
                xs.append(c.features)
                ys.append(int(c.entry.entry_id == q.get("entry_id")))
    if len(set(ys)) < 2:
        return None
    model = LogisticRegression(C=1.0, max_iter=2000).fit(xs, ys)
    return knowledge.Combiner(tuple(float(w) for w in model.coef_[0]), float(model.intercept_[0]))


def calibrate_knowledge(entries: list, *, corpus_dir: Path | None = None, models_dir: Path | None = None,
                        say: Callable[[str], None] = print) -> dict:
    """The knowledge base's answer threshold calibrated on the consultations' train split, with the
    held-out figures at it; written to `knowledge.json` beside the models (read by `knowledge`)."""
    train_q = corpus.consultations(corpus.TRAIN, corpus_dir)
    held_q = corpus.consultations(corpus.HELDOUT, corpus_dir)
    if not train_q:
        say("no labelled consultations: the knowledge base keeps its threshold")
        return {}
    say(f"knowledge base: fitting the answer combiner on {len(train_q)} train questions, out of fold")
    combiner = fit_combiner(
        lambda phrasings: knowledge.KnowledgeIndex(entries, phrasings, combiner=None), train_q)
    threshold, at_train = knowledge.calibrate(
        lambda phrasings: knowledge.KnowledgeIndex(entries, phrasings, combiner=combiner), train_q)
    index = knowledge.KnowledgeIndex(entries, knowledge.load_paraphrases(corpus_dir / "consultations.jsonl")
                                     if corpus_dir else None, combiner=combiner)
    doc = {"answer_threshold": threshold, "entries": len(entries),
           "combiner": combiner.as_json() if combiner is not None else None, "train": at_train,
           "heldout": knowledge.outcomes(index, held_q, threshold) if held_q else {}}
    d = models_dir or artifacts.models_dir()
    d.mkdir(parents=True, exist_ok=True)
    (d / "knowledge.json").write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    say(f"knowledge base: answer threshold {threshold} on {len(train_q)} train questions, out of fold "
        f"(right {at_train['answered_right_share']}, wrong {at_train['answered_wrong_share']}, "
        f"rare referred {at_train['rare_referred_share']})")
    return doc


def train(*, corrections: list[dict] = (), corpus_dir: Path | None = None, models_dir: Path | None = None,
          now: datetime, folds: int = FOLDS, say: Callable[[str], None] = print) -> dict:
    """Trains, evaluates and (when it does not do worse) promotes a new classifier; returns the summary."""
    train_rows = corpus.reports(corpus.TRAIN, corpus_dir)
    heldout = corpus.reports(corpus.HELDOUT, corpus_dir)
    exs = examples(train_rows, list(corrections))
    if len({e.incident_type for e in exs}) < 2:
        raise ValueError(f"too few labelled examples to train on ({len(exs)})")
    say(f"training on {len(exs)} examples ({len(train_rows)} from the corpus train split, "
        f"{len(exs) - len([r for r in train_rows if r.get('type') in rules.INCIDENT_TYPES])} corrections), "
        f"{len({e.incident_type for e in exs})} types; {len(heldout)} held-out reports")
    base = Classifier(None)
    say("segmenting and finding evidence")
    evs = [base.evidence(e.text) for e in exs]
    docs = [base.tokens(e.text, ev) for e, ev in zip(exs, evs)]
    say(f"cross-validating ({folds} folds)")
    oof, urgent = cross_validate(exs, docs, evs, base, folds=folds, say=say)
    params, tuning = tune(exs, oof, evs, base)
    tops = [base.combine(probs, ev, params)[0][0] for probs, ev in zip(oof, evs)]
    keep, raise_at, urgency_tuning = tune_urgency(exs, urgent, tops, base)
    tuning.update(urgency_tuning)
    params = Params(params.beta, params.smoothing, params.gamma, params.threshold, type_priorities(exs), keep,
                    raise_at)
    say(f"tuned: beta={params.beta} smoothing={params.smoothing} gamma={params.gamma} threshold={params.threshold} "
        f"urgent_keep={params.urgent_keep} urgent_raise={params.urgent_raise} "
        f"(cross-validated score {tuning['cv_score']})")
    say("fitting the final model on every training example")
    model = fit(docs, [e.incident_type for e in exs], weights=[e.weight for e in exs])
    urgency = fit(docs, [_urgency_label(e) for e in exs], weights=[e.weight for e in exs])
    version = version_of(exs, now)
    clf = Classifier(model, params, version, urgency)
    say(f"evaluating {version} on held-out")
    held = evaluate(clf, heldout)
    current = artifacts.current_version(models_dir)
    current_held: dict = {}
    if current:
        try:
            current_held = evaluate(artifacts.load(current, models_dir), heldout)
        except (FileNotFoundError, KeyError, ValueError) as exc:
            say(f"the current version {current} cannot be evaluated ({exc}); the new one replaces it")
    promoted = metrics.not_worse(held, current_held) if heldout else not current
    doc = {"version": version, "trained_at": now.astimezone(timezone.utc).isoformat(),
           "examples": len(exs), "corrections": len(exs) - len([e for e in exs if not e.id.startswith("correction:")]),
           "params": {k: v for k, v in params.to_dict().items() if k != "type_priority"},
           "tuning": tuning, "heldout": held, "previous": current,
           "previous_heldout": {k: current_held.get(k) for k in ("category_accuracy", "type_accuracy",
                                                                  "critical_misses")} if current_held else {},
           "promoted": promoted, "features": len(model.vocabulary), "classes": len(model.classes)}
    path = artifacts.save(version, model, urgency, params, doc, models_dir)
    say(f"wrote {path} ({path.stat().st_size // 1024} KiB): held-out category {held['category_accuracy']}, "
        f"type {held['type_accuracy']}, critical misses {held['critical_misses']}")
    if promoted:
        artifacts.promote(version, models_dir)
        say(f"promoted {version}" + (f" (was {current})" if current else ""))
    else:
        say(f"kept {current}: {version} does worse on held-out "
            f"(category {current_held.get('category_accuracy')}, type {current_held.get('type_accuracy')}, "
            f"critical misses {current_held.get('critical_misses')} for the current one)")
    return doc
