"""Keyword matching (重大警情关键词): every KEYWORD rule's terms in one Aho-Corasick automaton,
with the context that turns a term into a non-incident (negation, hypotheticals, news)."""
from __future__ import annotations

from dataclasses import dataclass

import ahocorasick

from services.runtime import language
from services.runtime.language import Cues

from .common import level_rank

# The cue words that turn a term into a non-incident when they sit in the same clause (negation,
# hypotheticals, news) are the shared ones (`services.runtime.language`); a rule may replace any
# list through its parameters ("negation_cues": "不是,并非", ...).
DEFAULT_CUES = {key: list(getattr(language.DEFAULT_CUES, attr)) for key, attr in Cues.PARAMETERS.items()
                if getattr(language.DEFAULT_CUES, attr)}
DEFAULT_CUE_SET = language.DEFAULT_CUES


@dataclass(frozen=True)
class TermSpec:
    """One term of one keyword rule, at the rule's version in force."""

    rule_id: str
    rule_version: int
    term: str
    grade: str
    exclusions: tuple[str, ...] = ()
    cues: Cues = DEFAULT_CUE_SET


@dataclass(frozen=True)
class KeywordHit:
    spec: TermSpec
    start: int
    end: int

    @property
    def term(self) -> str:
        return self.spec.term


def dismissed_by_context(text: str, start: int, end: int, cues: Cues) -> str:
    """Why a term at text[start:end] is not an incident ("" when it is one)."""
    return language.context_of(text, start, end, cues)


class KeywordMatcher:
    """All keyword rules' terms in one Aho-Corasick automaton: one pass per text.

    Exclusion phrases ("剧本杀", "跳楼价") go into the same automaton; a term
    occurrence covered by one of its own exclusions does not count.
    """

    def __init__(self, specs: list[TermSpec]):
        self.specs = specs
        self._automaton = ahocorasick.Automaton()
        entries: dict[str, tuple[list[TermSpec], set[str]]] = {}
        for spec in specs:
            entries.setdefault(spec.term, ([], set()))[0].append(spec)
            for phrase in spec.exclusions:
                entries.setdefault(phrase, ([], set()))[1].add(spec.term)
        for key, (term_specs, excludes) in entries.items():
            self._automaton.add_word(key, (key, tuple(term_specs), frozenset(excludes)))
        self._empty = not entries
        if not self._empty:
            self._automaton.make_automaton()

    def __len__(self) -> int:
        return len(self.specs)

    def match(self, text: str) -> list[KeywordHit]:
        if self._empty or not text:
            return []
        hits: list[KeywordHit] = []
        excluded: list[tuple[int, int, frozenset[str]]] = []
        for end_idx, (key, term_specs, excludes) in self._automaton.iter(text):
            start = end_idx - len(key) + 1
            if excludes:
                excluded.append((start, end_idx + 1, excludes))
            for spec in term_specs:
                hits.append(KeywordHit(spec, start, end_idx + 1))
        kept = []
        for hit in hits:
            if any(s <= hit.start and hit.end <= e and hit.term in terms for s, e, terms in excluded):
                continue
            if dismissed_by_context(text, hit.start, hit.end, hit.spec.cues):
                continue
            kept.append(hit)
        return kept


def strongest_by_rule(hits: list[KeywordHit]) -> dict[str, list[KeywordHit]]:
    """Hits per rule, the highest grade first (then the earliest)."""
    by_rule: dict[str, list[KeywordHit]] = {}
    for hit in hits:
        by_rule.setdefault(hit.spec.rule_id, []).append(hit)
    for rule_hits in by_rule.values():
        rule_hits.sort(key=lambda h: (-level_rank(h.spec.grade), h.start))
    return by_rule
