"""Address gazetteer matching (标准地址匹配): a standard address code, or
Chinese address text matched on character bigrams.

Chinese has no spaces to split words on, so the text is compared as
overlapping two-character pieces (bigrams), weighted by how rare each piece
is in the gazetteer (IDF): "江城" occurs in every address and says little;
"琴断" names one place. A caller names part of an address ("后湖幸福小区5栋"),
so the score mostly asks how much of what was said the address explains
(weighted coverage of the query's bigrams) and a little how similar the two
are as a whole (cosine), 0..1. An inverted index limits a lookup to the
addresses that share a piece with the query. Plain Python; no SQL, no gRPC.

Why not Postgres pg_trgm: the extension must be created by a superuser (the
service role is not one, and a managed Postgres may not offer it), and its
trigram split follows the database's locale, which in a C locale drops CJK
characters altogether. A few thousand addresses per city fit in memory and
are matched here in about a millisecond.
"""
from __future__ import annotations

import heapq
import math
import os
import re
import unicodedata
from collections import defaultdict

from .domain import Address, AddressMatch

ADDRESS_CODE = re.compile(r"^\d{21}$")
CODE_PREFIX = re.compile(r"^\d{6,21}$")
# Fuzzy matches below this confidence do not locate a report.
MIN_LOCATING_CONFIDENCE = 0.45
COVERAGE_WEIGHT = 0.75
# Words a caller adds around an address that are not part of it.
_FILLER = ("附近", "旁边", "对面", "门口", "这里", "这边", "那边", "楼下", "里面", "路口")
_DROP = re.compile(r"[\s,，。.、:：;；!！?？()（）\[\]【】\"“”'‘’-]+")


def normalize(text: str) -> str:
    """Full-width to half-width, punctuation and filler words removed."""
    t = unicodedata.normalize("NFKC", text)
    t = _DROP.sub("", t)
    for word in _FILLER:
        t = t.replace(word, "")
    return t


def bigrams(text: str) -> list[str]:
    if len(text) < 2:
        return [text] if text else []
    return [text[i:i + 2] for i in range(len(text) - 1)]


class Gazetteer:
    """The standard addresses of the city, searchable by code and by text."""

    CANDIDATES = 300

    def __init__(self, addresses: list[Address]):
        self.addresses = addresses
        # The city every address begins with (江城市): callers seldom say it.
        prefix = os.path.commonprefix([a.full_address for a in addresses]) if addresses else ""
        city_name = prefix[:prefix.find("市") + 1] if "市" in prefix else ""
        self.city_name = city_name
        self._by_code = {a.code: a for a in addresses}
        self._by_text: dict[str, Address] = {}
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        vectors: list[dict[str, int]] = []
        self._in_district: dict[str, set[int]] = defaultdict(set)
        # Street (街道) stems, e.g. "易家墩" of 易家墩街道: a caller names the place, not the office.
        self._in_street: dict[str, set[int]] = defaultdict(set)
        for i, a in enumerate(addresses):
            text = normalize(a.full_address)
            self._by_text.setdefault(text, a)
            if city_name and text.startswith(city_name):
                self._by_text.setdefault(text[len(city_name):], a)
            self._in_district[a.district].add(i)
            self._in_street[a.street.removesuffix("街道")].add(i)
            counts: dict[str, int] = defaultdict(int)
            for g in bigrams(text):
                counts[g] += 1
            vectors.append(counts)
            for g, c in counts.items():
                postings[g].append((i, c))
        n = max(len(addresses), 1)
        self._idf = {g: math.log(1 + n / len(p)) for g, p in postings.items()}
        # Pieces in more than half the addresses ("江城", "社区") tell nothing apart.
        self._postings = {g: p for g, p in postings.items() if len(p) <= n / 2}
        # Candidates come from the rarer pieces; the common ones only add to their scores.
        self._rare = max(50, n // 10)
        self._vectors = [{g: c for g, c in v.items() if g in self._postings} for v in vectors]
        self._norms = [math.sqrt(sum((c * self._idf[g]) ** 2 for g, c in v.items())) or 1.0
                       for v in self._vectors]
        self._stems = sorted((s for s in self._in_street if len(s) >= 2), key=len, reverse=True)

    def __len__(self) -> int:
        return len(self.addresses)

    def by_code(self, code: str) -> Address | None:
        return self._by_code.get(code)

    def _area(self, q: str, district: str) -> set[int] | None:
        """Addresses in the districts and streets the text names; None when it names none."""
        districts = [district] if district else [d for d in self._in_district if d in q]
        area: set[int] | None = None
        if districts:
            area = set().union(*(self._in_district.get(d, set()) for d in districts))
        stems = [s for s in self._stems if s in q]
        if stems:
            streets = set().union(*(self._in_street[s] for s in stems))
            narrowed = streets if area is None else area & streets
            if narrowed:
                area = narrowed
        return area

    def _one_station_street(self, q: str) -> str:
        """The station whose jurisdiction holds every address of the streets the text names, or ""."""
        area = self._area(q, "")
        if area is None or not any(s in q for s in self._stems):
            return ""
        stations = {self.addresses[i].station_id for i in area}
        return stations.pop() if len(stations) == 1 else ""

    def search(self, query: str, *, limit: int = 10, district: str = "") -> list[tuple[Address, float, str]]:
        """Best addresses for a code (or code prefix) or a text, as (address, score, method)."""
        q = normalize(query)
        if not q:
            return []
        if CODE_PREFIX.match(q):
            keep = (lambda a: a.district == district) if district else (lambda a: True)
            if len(q) == 21:
                a = self._by_code.get(q)
                return [(a, 1.0, "EXACT_CODE")] if a and keep(a) else []
            hits = [a for a in self.addresses if a.code.startswith(q) and keep(a)]
            return [(a, round(len(q) / 21, 4), "EXACT_CODE") for a in hits[:limit]]
        results: list[tuple[Address, float, str]] = []
        exact = self._by_text.get(q)
        if exact is not None and (not district or exact.district == district):
            results.append((exact, 1.0, "EXACT_TEXT"))
        area = self._area(q, district)
        if district and area is None:
            return results
        q_counts: dict[str, int] = defaultdict(int)
        grams = bigrams(q)
        for g in grams:
            q_counts[g] += 1
        known = sum(1 for g in grams if g in self._idf)
        useful = {g: qc for g, qc in q_counts.items() if g in self._postings}
        rare = {g: qc for g, qc in useful.items() if len(self._postings[g]) <= self._rare}
        common = {g: qc for g, qc in useful.items() if g not in rare}
        if not rare:
            rare, common = useful, {}
        q_mass = sum((qc * self._idf[g]) ** 2 for g, qc in useful.items())
        dot: dict[int, float] = defaultdict(float)
        covered: dict[int, float] = defaultdict(float)
        for g, qc in rare.items():
            idf2 = self._idf[g] ** 2
            for i, c in self._postings[g]:
                if area is None or i in area:
                    dot[i] += qc * c * idf2
                    covered[i] += qc * min(qc, c) * idf2
        if not dot:
            return results
        if common:
            # The common pieces only reorder the best candidates of the rare ones.
            best = heapq.nlargest(self.CANDIDATES, covered, key=covered.__getitem__)
            dot = {i: dot[i] for i in best}
            for i in best:
                vector = self._vectors[i]
                for g, qc in common.items():
                    c = vector.get(g)
                    if c:
                        idf2 = self._idf[g] ** 2
                        dot[i] += qc * c * idf2
                        covered[i] += qc * min(qc, c) * idf2
        q_norm = math.sqrt(q_mass)
        # Pieces no address has (a shop's name, "502室") lower the confidence, not the ranking.
        known_share = math.sqrt(known / len(grams))
        ranked = sorted(
            ((known_share * (COVERAGE_WEIGHT * covered[i] / q_mass
                             + (1 - COVERAGE_WEIGHT) * d / (q_norm * self._norms[i])), i)
             for i, d in dot.items()),
            key=lambda t: (-t[0], t[1]))
        for score, i in ranked:
            a = self.addresses[i]
            if a is exact:
                continue
            results.append((a, round(min(score, 0.9999), 4), "FUZZY_TEXT"))
            if len(results) >= limit:
                break
        return results

    def match(self, *, code: str = "", text: str = "") -> AddressMatch:
        """The gazetteer's answer for a report's address: exact code, exact or fuzzy text, or no match."""
        if code:
            a = self._by_code.get(code)
            if a is not None:
                return AddressMatch("EXACT_CODE", 1.0, a)
        if text:
            best = self.search(text, limit=1)
            if best:
                a, score, method = best[0]
                if method != "FUZZY_TEXT":
                    return AddressMatch(method, score, a)
                if score >= MIN_LOCATING_CONFIDENCE:
                    return AddressMatch("FUZZY_TEXT", score, a)
                if self._one_station_street(normalize(text)) == a.station_id:
                    return AddressMatch("STREET", score, a)
                return AddressMatch("NO_MATCH", score, a)
        return AddressMatch("NO_MATCH", 0.0, None)
