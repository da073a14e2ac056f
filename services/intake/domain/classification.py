"""Classification and grading (分类定级) of a report: category, incident type and priority 1-4 from
the classifier (`services/intake/classifier/`: evidence words read in their clause, a statistical
model trained on labelled reports, the priority, time, channel and repeated-invalid rules of
`rules.py`, the safety net for life-threatening matters), explained in Chinese. Pure."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .. import rules
from ..classifier import artifacts
from ..classifier.core import CATEGORY_LABELS, Classifier, local_hour
from ..classifier.lexicon import LIFE_THREATENING


@dataclass
class Classification:
    category: str
    incident_type: str
    priority: int
    reason: str
    rule_ids: list[str] = field(default_factory=list)
    corrected: bool = False
    # 0..1, how sure the classifier was; 1 for a call-taker's correction.
    confidence: float = 1.0
    # The call-taker is to confirm or correct it (low confidence, or the safety net).
    needs_confirmation: bool = False
    # The classifier version that classified the report.
    classifier_version: str = ""


@dataclass(frozen=True)
class LabelledExample:
    """A call-taker's correction of a classification, kept for the next training."""

    report_id: str
    text: str
    channel: str
    category: str
    incident_type: str
    priority: int
    previous_category: str
    previous_type: str
    previous_priority: int
    classifier_version: str
    corrected_by: str
    reason: str
    create_time: datetime


def classify(description: str, channel: str, *, at: datetime | None = None, recent_invalid_calls: int = 0,
             classifier: Classifier | None = None) -> Classification:
    """Category, incident type and priority 1-4, explained in Chinese (the promoted classifier
    unless one is given)."""
    d = (classifier or artifacts.default()).classify(description, channel, at=at,
                                                      recent_invalid_calls=recent_invalid_calls)
    return Classification(d.category, d.incident_type, d.priority, d.reason, d.rule_ids,
                          confidence=round(d.confidence, 4), needs_confirmation=d.needs_confirmation,
                          classifier_version=d.version)


@dataclass(frozen=True)
class TaxonomyEntry:
    """One incident type (警情类型) as the screens show it: the classifier's own taxonomy, its
    default priority and whether the safety net treats it as possibly life-threatening."""

    code: str
    label: str
    category: str
    group: str
    default_priority: int
    life_threatening: bool


def taxonomy(classifier: Classifier | None = None) -> list[TaxonomyEntry]:
    """Every incident type in `rules.INCIDENT_TYPES` order, graded by the promoted classifier
    unless one is given."""
    c = classifier or artifacts.default()
    return [TaxonomyEntry(t.code, t.label, t.category, t.group, c.default_priority(t.code), t.code in LIFE_THREATENING)
            for t in rules.INCIDENT_TYPES.values()]


__all__ = ["CATEGORY_LABELS", "Classification", "LabelledExample", "TaxonomyEntry", "classify", "local_hour",
           "taxonomy"]
