"""Weighted evidence per type: every evidence word found in one Aho-Corasick pass, read in its
clause (`services.runtime.language`): asserted words add their weight to their type, hearsay
half, negated, hypothetical, reported and figurative ones nothing. A word inside a longer word
found at the same place counts only through the longer one ("燃气味" not also "燃气").

A question about a matter ("如果碰到有人抢劫该怎么办") is evidence of a consultation on its topic."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import ahocorasick

from services.runtime import language

from .. import rules
from .lexicon import DANGER_WORDS, EVIDENCE, LIFE_THREATENING, SAFETY_WEIGHT

CONTEXT_WEIGHT = {"": 1.0, language.HEARSAY_: 0.5}
# The consultation topic a question about a police matter belongs to.
QUESTION_TOPIC = {"TELECOM_FRAUD": "CONSULTATION_ANTI_FRAUD", "FIRE": "CONSULTATION_FIRE",
                  "GAS_LEAK": "CONSULTATION_FIRE", "TRAFFIC_ACCIDENT": "CONSULTATION_TRAFFIC",
                  "DRUNK_DRIVING": "CONSULTATION_TRAFFIC", "CONGESTION": "CONSULTATION_TRAFFIC"}
QUESTION_DEFAULT_TOPIC = "CONSULTATION_PUBLIC_ORDER"
# A question about a service matter is a consultation on its topic (护照怎么办理 is no complaint).
ASKED_ABOUT = {"PASSPORT": "CONSULTATION_EXIT_ENTRY", "ID_CARD": "CONSULTATION_HOUSEHOLD",
               "HOUSEHOLD_REGISTRATION": "CONSULTATION_HOUSEHOLD", "DRIVING_LICENSE": "CONSULTATION_TRAFFIC",
               "VEHICLE_REGISTRATION": "CONSULTATION_TRAFFIC", "FIRE_HAZARD": "CONSULTATION_FIRE"}
DANGER = "DANGER"
QUESTION_BONUS = 1.5


def reported_in_clause(text: str, start: int) -> bool:
    """A media cue anywhere before the term in its clause ("我在电视新闻里看到最近有人…抢包"), beyond
    the reach the cue module gives it."""
    left, _ = language.clause_bounds(text, start, start)
    return any(m in text[left:start] for m in language.REPORTED_BEFORE)


@dataclass(frozen=True)
class Hit:
    word: str
    incident_type: str  # or DANGER
    weight: float
    start: int
    end: int
    context: str  # "" asserted, else language's context name

    @property
    def counts(self) -> float:
        return self.weight * CONTEXT_WEIGHT.get(self.context, 0.0)


@dataclass
class Evidence:
    text: str
    hits: list[Hit] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    # Per type, the weight of its words the caller used without asserting them (negated, supposed,
    # reported, figurative): what the model's n-grams of those words wrongly suggest.
    against: dict[str, float] = field(default_factory=dict)
    question: str = ""  # the question marker, when the caller asks
    prank: str = ""

    def asserted(self, incident_type: str) -> list[Hit]:
        return [h for h in self.hits if h.incident_type == incident_type and h.context in CONTEXT_WEIGHT]

    def dismissed(self) -> list[Hit]:
        return [h for h in self.hits if h.context not in CONTEXT_WEIGHT]

    def danger(self) -> list[Hit]:
        return [h for h in self.hits if h.incident_type == DANGER and h.context == ""]

    def life_threat(self) -> Hit | None:
        """The surest asserted word of a life-threatening type, when one is sure enough."""
        found = [h for h in self.hits if h.incident_type in LIFE_THREATENING and h.context == ""
                 and h.weight >= SAFETY_WEIGHT]
        return max(found, key=lambda h: (h.weight, -h.start)) if found else None

    @property
    def only_unasserted_police(self) -> bool:
        """The caller names police matters only without asserting them (不是, 如果, 新闻说, 心里着火了)."""
        def police(t: str) -> bool:
            return t in rules.INCIDENT_TYPES and rules.INCIDENT_TYPES[t].category == rules.POLICE
        return any(police(t) for t in self.against) and not any(police(t) for t in self.scores) \
            and not self.danger()

    def tokens(self) -> list[str]:
        """What the statistical model sees of the evidence: types and contexts as tokens."""
        out = []
        for h in self.hits:
            if h.context in CONTEXT_WEIGHT:
                out.append(f"ev:{h.incident_type}")
            else:
                group = rules.INCIDENT_TYPES[h.incident_type].category if h.incident_type != DANGER else DANGER
                out.append(f"ctx:{h.context}:{group}")
        if self.question:
            out.append("mode:ask")
        if self.prank:
            out.append("mode:prank")
        return out


class EvidenceFinder:
    def __init__(self):
        self._automaton = ahocorasick.Automaton()
        table: dict[str, list[tuple[str, float]]] = {}
        for itype, words in EVIDENCE.items():
            for word, weight in words:
                table.setdefault(word, []).append((itype, weight))
        for word, weight in DANGER_WORDS:
            table.setdefault(word, []).append((DANGER, weight))
        for word, entries in table.items():
            self._automaton.add_word(word, (word, tuple(entries)))
        self._automaton.make_automaton()

    def find(self, text: str) -> Evidence:
        ev = Evidence(text, question=language.asks(text), prank=language.pranks(text))
        if not text:
            return ev
        found = []
        for end_idx, (word, entries) in self._automaton.iter(text):
            found.append((end_idx - len(word) + 1, end_idx + 1, word, entries))
        spans = [(s, e) for s, e, _, entries in found if any(t != DANGER for t, _ in entries)]
        for start, end, word, entries in found:
            for itype, weight in entries:
                if itype != DANGER and any(s <= start and end <= e and (e - s) > (end - start) for s, e in spans):
                    continue
                ctx = language.context_of(text, start, end, language.CALLER_CUES)
                if ctx == "" and reported_in_clause(text, start):
                    ctx = language.REPORTED
                ev.hits.append(Hit(word, itype, weight, start, end, ctx))
        if ev.prank:  # the caller declares the call a joke: its police words assert nothing
            ev.hits = [replace(h, context=language.PRANK) if h.context == "" and h.incident_type in rules.INCIDENT_TYPES
                       and rules.INCIDENT_TYPES[h.incident_type].category == rules.POLICE else h for h in ev.hits]
        # A word the caller also uses as a figure of speech is that figure ("着火了！我心里着火了").
        figures = {h.word for h in ev.hits if h.context == language.FIGURATIVE}
        if figures:
            ev.hits = [replace(h, context=language.FIGURATIVE) if h.word in figures else h for h in ev.hits]
        for h in ev.hits:
            if h.incident_type == DANGER:
                continue
            if h.counts:
                ev.scores[h.incident_type] = ev.scores.get(h.incident_type, 0.0) + h.counts
                continue
            ev.against[h.incident_type] = ev.against.get(h.incident_type, 0.0) + h.weight
            # A question supposing a police matter, or news of one, is a consultation on its topic.
            if ((ev.question and h.context == language.HYPOTHETICAL_) or h.context == language.REPORTED) and \
                    rules.INCIDENT_TYPES[h.incident_type].category == rules.POLICE:
                topic = QUESTION_TOPIC.get(h.incident_type, QUESTION_DEFAULT_TOPIC)
                ev.scores[topic] = ev.scores.get(topic, 0.0) + h.weight
        if ev.question:
            # A question about a topic is a consultation on it rather than the matter itself.
            for t, topic in ASKED_ABOUT.items():
                if t in ev.scores:
                    ev.scores[topic] = max(ev.scores.get(topic, 0.0), ev.scores[t])
                    ev.scores[t] /= 2
            topics = [t for t in ev.scores if t.startswith("CONSULTATION_") and t != "CONSULTATION_OTHER"]
            for t in topics:
                ev.scores[t] += QUESTION_BONUS
            if not topics:
                ev.scores["CONSULTATION_OTHER"] = ev.scores.get("CONSULTATION_OTHER", 0.0) + QUESTION_BONUS / 2
        return ev
