"""The life-safety guard (生命安全兜底): cue words of danger to life (`lexicon.LIFE_SAFETY`: a cry
for help, a knife attack, bleeding, no sign of life, a jump, someone in the water, a fire with people
inside, an abduction, a killing, strangling, a gun) that the caller asserts keep the report on the
police path at 1级 (or the group's priority) with a fitting type, whatever the model says.

A cue counts only in a clause that asserts it: not negated (没流血), supposed (如果有人拿刀砍我), wished (真想砍了他),
reported (新闻里说有人跳楼), heard from others (听说有人被绑架), said as a figure of speech, or in a
call the caller declares a joke or frames as play (在玩游戏, 排练); nor when a word in its clause makes
it something else (手机掉水里了, 打死也不去). All cue words are found in one Aho-Corasick pass."""
from __future__ import annotations

from dataclasses import dataclass

import re

import ahocorasick

from services.runtime import language

from .evidence import reported_in_clause
from .lexicon import LIFE_SAFETY, PLAY_FRAMES, WISHES


@dataclass(frozen=True)
class Cue:
    group: str  # the group's Chinese name, for the reason
    words: str  # what the caller said ("着火”+“有人在里面")
    types: tuple[str, ...]  # the fitting types, the usual one first
    priority: int


class LifeSafetyGuard:
    def __init__(self, groups=LIFE_SAFETY, frames: tuple[str, ...] = PLAY_FRAMES, wishes: str = WISHES):
        self.groups = groups
        self.frames = frames
        self.wishes = re.compile(wishes)
        self._automaton = ahocorasick.Automaton()
        for _name, words, _types, _priority, _unless in groups:
            for parts in words:
                for alternatives in parts:
                    for alt in alternatives:
                        self._automaton.add_word(alt, alt)
        self._automaton.make_automaton()

    def _asserted(self, text: str) -> dict[str, tuple[int, int]]:
        """Every cue word the caller asserts, with the clause it is in (the first such occurrence)."""
        out: dict[str, tuple[int, int]] = {}
        found = [(end_idx - len(word) + 1, end_idx + 1, word) for end_idx, word in self._automaton.iter(text)]
        for start, end, word in found:
            if word in out:
                continue
            # A word inside a longer cue word found around it is read with it ("没人喊救命" asserts no 救命).
            if any(s <= start and end <= e and (e - s) > (end - start) for s, e, _ in found):
                continue
            left, right = language.clause_bounds(text, start, end)
            if language.context_of(text, start, end, language.CALLER_CUES) == "" \
                    and not self.wishes.search(text, left, start) \
                    and not reported_in_clause(text, start):
                out[word] = (left, right)
        return out

    def _played(self, text: str) -> bool:
        for frame in self.frames:
            pos = text.find(frame)
            while pos >= 0:
                if language.context_of(text, pos, pos + len(frame), language.CALLER_CUES) == "":
                    return True
                pos = text.find(frame, pos + 1)
        return False

    def find(self, text: str, prank: bool = False) -> Cue | None:
        """The first group a cue of which the caller asserts, or None."""
        if not text or prank:
            return None
        asserted = self._asserted(text)
        if not asserted or self._played(text):
            return None
        for name, words, types, priority, unless in self.groups:
            for parts in words:
                said = []
                for alternatives in parts:
                    hit = next((alt for alt in alternatives if alt in asserted
                                and not any(u in text[slice(*asserted[alt])] for u in unless)), "")
                    if not hit:
                        break
                    said.append(hit)
                else:
                    return Cue(name, "”+“".join(said), types, priority)
        return None
