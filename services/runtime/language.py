"""How callers say that something did not happen here and now (语境线索), shared by intake's
classifier and alerts' keyword matcher. Pure: no database, no gRPC.

A word such as 抢劫 is evidence of a robbery only in a clause that asserts it. The cues below, as
data, turn an occurrence into something else when they sit in the same clause (a clause ends at
。！？；，, or a line break):

- negation (否定, 没有/不是/没): before the term, close to it; a contrast (而是/就是/只是) between
  the cue and the term ends its scope ("不是打架，就是吵起来了", "没打架而是在吵架");
- hypothetical (假设, 如果/假如/万一/梦见): before the term in its clause ("如果在路上碰到有人抢劫");
- reported (转述, 新闻/报道/电视上/网上看到): media before the term, or right after it
  ("抢劫案的新闻");
- hearsay (听说/据说): the caller did not see it; still possibly a matter, less sure;
- figurative (夸张, 心里着火了, 饿死了, 笑死): the term is a figure of speech.

Every cue list is a tuple a caller may replace (alerts' rules carry their own lists as parameters).
Whole-text markers say what kind of call it is: a question (咨询, "…该怎么办？"), a prank (开玩笑).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

CLAUSE_BREAK = re.compile(r"[。！？!?；;，,\n\r]")

NEGATION = ("不是", "并非", "并不是", "没有", "没", "未", "无", "否认", "不存在", "不像", "排除")
# Phrases that contain a negation cue but do not negate (没想到 = "unexpectedly").
NEGATION_EXEMPT = ("没想到", "不知道", "不得了", "不停", "无数", "没多久", "不一会", "没办法", "未成年",
                   "没人管", "无缘无故")
# Words after which a negation no longer reaches the term ("不是打架，而是吵架").
CONTRAST = ("而是", "就是", "只是", "但是", "可是", "却", "倒是")
# It nearly happened, so it did not (差点撞到 = no collision).
NEAR_MISS = ("差点", "差一点", "险些", "差点儿")
HYPOTHETICAL = ("假如", "如果", "假设", "要是", "万一", "倘若", "若是", "梦见", "梦到", "想象", "比如")
REPORTED_BEFORE = ("新闻", "报道", "电视上", "电视里", "电影", "小说", "游戏里", "剧里", "网上看到", "听说过")
REPORTED_AFTER = ("案的新闻", "新闻", "报道", "电视剧", "电影", "小说", "游戏", "剧情", "片", "案件的报道")
HEARSAY = ("听说", "据说", "听别人说", "听人说", "传闻", "传言", "网上说", "有人说")
# The term is a figure of speech: a feeling (心里着火了), an intensifier (饿死了, 笑死, 气死).
FIGURATIVE_BEFORE = ("心里", "心头", "心都", "心在", "心快", "心像", "肚子里", "脑子里", "眼里", "嗓子",
                     "嘴里", "眼睛", "后院")
# Adjectives a following 死/炸/疯 only intensifies (饿死了, 笑死, 气炸了).
INTENSIFIED = ("饿", "累", "热", "冷", "笑", "气", "烦", "困", "急", "渴", "忙", "美", "馋", "痒", "乐", "吵",
               "愁", "闷", "丑", "臭", "酸", "疼", "熏", "吓", "冻", "挤", "晒", "闲", "想", "恨", "羡慕")
INTENSIFIERS = ("死", "炸", "疯")

# A call that asks how to do something rather than telling what happens (咨询).
QUESTION_MARKERS = ("怎么办", "该怎么", "怎么处理", "怎么弄", "怎么做", "怎么样才", "如何", "请问", "咨询", "想问",
                    "问一下", "问问", "能不能", "可不可以", "可以吗", "行不行", "需要什么", "要什么", "哪里",
                    "在哪", "多久", "多长时间", "几天", "什么时候", "是不是", "算不算", "会不会", "有没有用",
                    "要不要", "吗？", "吗?", "吗", "呢？", "呢?", "怎么", "咋", "啥", "什么材料", "要带", "能否",
                    "是否", "不？", "没？", "哪些", "要准备")
PRANK_MARKERS = ("开玩笑", "开个玩笑", "骗你的", "逗你玩", "逗你的", "恶作剧", "闹着玩", "试试110", "测试一下",
                 "打着玩")
BEFORE_WINDOW = 8
AFTER_WINDOW = 6

NEGATED, HYPOTHETICAL_, REPORTED, HEARSAY_, FIGURATIVE = "negated", "hypothetical", "reported", "hearsay", \
    "figurative"
PRANK = "prank"  # the whole call is declared a joke (开玩笑的, 骗你的)
CONTEXT_LABELS = {NEGATED: "否定", HYPOTHETICAL_: "假设", REPORTED: "转述新闻影视", HEARSAY_: "听说",
                  FIGURATIVE: "比喻夸张", PRANK: "玩笑"}


@dataclass(frozen=True)
class Cues:
    """The cue lists and their reach. `window`: how far before the term a negation or media cue may
    sit (within its clause); `hypothetical_window`: the same for hypotheticals, 0 = the whole clause
    before the term. Hearsay and figurative cues are off unless given."""

    negation: tuple[str, ...] = NEGATION
    hypothetical: tuple[str, ...] = HYPOTHETICAL
    news_before: tuple[str, ...] = REPORTED_BEFORE
    news_after: tuple[str, ...] = REPORTED_AFTER
    negation_exempt: tuple[str, ...] = NEGATION_EXEMPT
    contrast: tuple[str, ...] = CONTRAST
    hearsay: tuple[str, ...] = ()
    figurative_before: tuple[str, ...] = ()
    window: int = BEFORE_WINDOW
    hypothetical_window: int = BEFORE_WINDOW
    after_window: int = AFTER_WINDOW

    # Parameter names as rules carry them ("negation_cues": "不是,并非").
    PARAMETERS = {"negation_cues": "negation", "hypothetical_cues": "hypothetical",
                  "news_before_cues": "news_before", "news_after_cues": "news_after",
                  "negation_exempt": "negation_exempt", "hearsay_cues": "hearsay"}

    @classmethod
    def from_parameters(cls, parameters: dict[str, str] | None = None, base: "Cues | None" = None) -> "Cues":
        """`base` (default: the standard lists) with each list a parameter names replaced; an empty
        parameter turns that cue off."""
        values = {}
        for key, attr in cls.PARAMETERS.items():
            raw = (parameters or {}).get(key)
            if raw is not None:
                values[attr] = tuple(x.strip() for x in raw.split(",") if x.strip())
        return replace(base or cls(), **values)


DEFAULT_CUES = Cues()
# The caller's own words at intake: hearsay and figures of speech count, a hypothetical reaches
# over the whole clause ("如果在路上碰到有人抢劫我该怎么办").
CALLER_CUES = replace(DEFAULT_CUES, negation=NEGATION + NEAR_MISS, hearsay=HEARSAY, figurative_before=FIGURATIVE_BEFORE,
                      window=10, hypothetical_window=0)


def clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The clause around text[start:end]."""
    left = 0
    for m in CLAUSE_BREAK.finditer(text, 0, start):
        left = m.end()
    m = CLAUSE_BREAK.search(text, end)
    return left, (m.start() if m else len(text))


def clauses(text: str) -> list[str]:
    return [c for c in CLAUSE_BREAK.split(text) if c.strip()]


def covers(text: str, phrase: str, idx: int, length: int) -> bool:
    """Whether an occurrence of `phrase` in text covers text[idx:idx+length]."""
    start = max(0, idx - len(phrase) + length)
    pos = text.find(phrase, start)
    while 0 <= pos <= idx:
        if pos + len(phrase) >= idx + length:
            return True
        pos = text.find(phrase, pos + 1)
    return False


def negated(before: str, cues: Cues = DEFAULT_CUES) -> bool:
    """A negation cue in `before` (the clause before the term, up to the window) that reaches the term.

    A one-character cue (没, 未, 无) counts only right before the term ("没杀人", "没人杀人"): further
    away it usually negates something else ("没钱就抢劫"). An exempt phrase (没想到) is no negation;
    a contrast after the cue (而是, 就是) ends its reach.
    """
    for cue in cues.negation:
        idx = before.find(cue)
        while idx >= 0:
            near = len(before) - (idx + len(cue)) <= 1
            if (len(cue) > 1 or near) and not any(covers(before, ex, idx, len(cue)) for ex in cues.negation_exempt) \
                    and not any(c in before[idx + len(cue):] for c in cues.contrast):
                return True
            idx = before.find(cue, idx + 1)
    return False


def context_of(text: str, start: int, end: int, cues: Cues = DEFAULT_CUES) -> str:
    """What the clause makes of the term at text[start:end]: "" (asserted), or negated, hypothetical,
    reported (news, film), hearsay or figurative."""
    left, right = clause_bounds(text, start, end)
    before = text[max(left, start - cues.window):start]
    whole_before = text[left:start]
    hyp_before = whole_before if cues.hypothetical_window <= 0 else text[max(left, start - cues.hypothetical_window):start]
    after = text[end:min(right, end + cues.after_window)]
    if negated(before, cues):
        return NEGATED
    if any(cue in hyp_before for cue in cues.hypothetical):
        return HYPOTHETICAL_
    if any(cue in before for cue in cues.news_before) or any(
            (cue in after) if len(cue) > 1 else after.startswith(cue) for cue in cues.news_after):
        return REPORTED
    if cues.figurative_before and _figurative(whole_before, text[start:end], after, cues):
        return FIGURATIVE
    if any(cue in whole_before for cue in cues.hearsay):
        return HEARSAY_
    return ""


def _figurative(before: str, term: str, after: str, cues: Cues) -> bool:
    """A body part or feeling right before the term (心里着火了), or an adjective the term only
    intensifies (饿死了, 笑死). A simile is not figurative here: "跟土匪一样" describes a real
    robbery, "就像人质一样" a real detention."""
    if any(cue in before[-4:] for cue in cues.figurative_before):
        return True
    return term[:1] in INTENSIFIERS and before[-1:] in INTENSIFIED


def asks(text: str) -> str:
    """The question marker that makes the text a question ("" when it tells rather than asks)."""
    return next((m for m in QUESTION_MARKERS if m in text), "")


def pranks(text: str) -> str:
    """The prank marker the caller asserts ("不是开玩笑" is none), or ""."""
    for m in PRANK_MARKERS:
        pos = text.find(m)
        while pos >= 0:
            if context_of(text, pos, pos + len(m), CALLER_CUES) == "":
                return m
            pos = text.find(m, pos + 1)
    return ""
