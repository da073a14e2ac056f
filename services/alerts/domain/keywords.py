"""Keyword matching (重大警情关键词): every KEYWORD rule's terms in one Aho-Corasick automaton,
with the context that turns a term into a non-incident (negation, hypotheticals, news)."""
from __future__ import annotations

import re
from dataclasses import dataclass

import ahocorasick

from .common import level_rank

# Cue words (as data) that turn a term into a non-incident when they sit in
# the same clause: before the term (否定 negation, 假设 hypothetical,
# 转述 hearsay of news) or right after it ("抢劫案的新闻"). A rule may replace
# any list through its parameters ("negation_cues": "不是,并非", ...).
DEFAULT_CUES = {
    "negation_cues": ["不是", "并非", "并不是", "没有", "没", "未", "无", "否认", "不存在", "不像", "排除"],
    "hypothetical_cues": ["假如", "如果", "假设", "要是", "万一", "倘若", "若是", "梦见", "梦到", "想象", "比如"],
    "news_before_cues": ["新闻", "报道", "电视上", "电视里", "电影", "小说", "游戏里", "剧里", "网上看到", "听说过"],
    "news_after_cues": ["案的新闻", "新闻", "报道", "电视剧", "电影", "小说", "游戏", "剧情", "片", "案件的报道"],
    # Phrases that contain a negation cue but do not negate (没想到 = "unexpectedly").
    "negation_exempt": ["没想到", "不知道", "不得了", "不停", "无数", "没多久", "不一会", "没办法", "未成年",
                        "没人管", "无缘无故"],
}
CLAUSE_BREAK = re.compile(r"[。！？!?；;，,\n\r]")
BEFORE_WINDOW = 8
AFTER_WINDOW = 6


@dataclass(frozen=True)
class Cues:
    negation: tuple[str, ...]
    hypothetical: tuple[str, ...]
    news_before: tuple[str, ...]
    news_after: tuple[str, ...]
    negation_exempt: tuple[str, ...]

    @classmethod
    def from_parameters(cls, parameters: dict[str, str] | None = None) -> "Cues":
        values = {}
        for key, default in DEFAULT_CUES.items():
            raw = (parameters or {}).get(key)
            values[key] = tuple(x.strip() for x in raw.split(",") if x.strip()) if raw is not None else tuple(default)
        return cls(values["negation_cues"], values["hypothetical_cues"], values["news_before_cues"],
                   values["news_after_cues"], values["negation_exempt"])


DEFAULT_CUE_SET = Cues.from_parameters()


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


def _clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    left = 0
    for m in CLAUSE_BREAK.finditer(text, 0, start):
        left = m.end()
    m = CLAUSE_BREAK.search(text, end)
    return left, (m.start() if m else len(text))


def _negated(before: str, cues: Cues) -> bool:
    """A negation cue in the clause before the term, unless an exempt phrase (没想到) covers it.

    A one-character cue (没, 未, 无) counts only right before the term ("没杀人",
    "没人杀人"): further away it usually negates something else ("没钱就抢劫").
    """
    for cue in cues.negation:
        idx = before.find(cue)
        while idx >= 0:
            near = len(before) - (idx + len(cue)) <= 1
            if (len(cue) > 1 or near) and not any(_covers(before, ex, idx, len(cue)) for ex in cues.negation_exempt):
                return True
            idx = before.find(cue, idx + 1)
    return False


def _covers(text: str, phrase: str, idx: int, length: int) -> bool:
    """Whether an occurrence of `phrase` in text covers text[idx:idx+length]."""
    start = max(0, idx - len(phrase) + length)
    pos = text.find(phrase, start)
    while 0 <= pos <= idx:
        if pos + len(phrase) >= idx + length:
            return True
        pos = text.find(phrase, pos + 1)
    return False


def dismissed_by_context(text: str, start: int, end: int, cues: Cues) -> str:
    """Why a term at text[start:end] is not an incident ("" when it is one)."""
    left, right = _clause_bounds(text, start, end)
    before = text[max(left, start - BEFORE_WINDOW):start]
    after = text[end:min(right, end + AFTER_WINDOW)]
    if _negated(before, cues):
        return "negated"
    if any(cue in before for cue in cues.hypothetical):
        return "hypothetical"
    if any(cue in before for cue in cues.news_before) or any(
            (cue in after) if len(cue) > 1 else after.startswith(cue) for cue in cues.news_after):
        return "reported"
    return ""


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
