"""The shared cue module (services/runtime/language.py): negation, hypotheticals, news, hearsay and
figures of speech, each scoped to the clause of the term."""
from __future__ import annotations

import pytest

from services.runtime import language
from services.runtime.language import CALLER_CUES, DEFAULT_CUES, context_of


def ctx(text: str, term: str, cues=CALLER_CUES, nth: int = 0) -> str:
    start = -1
    for _ in range(nth + 1):
        start = text.index(term, start + 1)
    return context_of(text, start, start + len(term), cues)


@pytest.mark.parametrize("text, term, why", [
    ("不是打架，就是吵起来了", "打架", "negated"),
    ("他们没有打架", "打架", "negated"),
    ("他没偷东西", "偷东西", "negated"),
    ("差点撞到护栏", "撞到", "negated"),
    ("如果在路上碰到有人抢劫我该怎么办", "抢劫", "hypothetical"),
    ("万一家里着火了怎么逃生", "着火", "hypothetical"),
    ("我看新闻说有人抢劫", "抢劫", "reported"),
    ("网上看到有人被绑架", "绑架", "reported"),
    ("听说隔壁小区有人被偷了", "被偷", "hearsay"),
    ("我心里着火了", "着火", "figurative"),
    ("这天气热死人了", "死人", "figurative"),
])
def test_a_term_in_a_clause_that_does_not_assert_it(text, term, why):
    assert ctx(text, term) == why


@pytest.mark.parametrize("text, term", [
    ("不是我，是他们在打架", "打架"),  # the negation is in another clause
    ("没想到有人抢劫", "抢劫"),  # 没想到 = unexpectedly
    ("没有打架，而是在吵架", "吵架"),
    ("他没钱就去抢劫了", "抢劫"),  # a one-character cue further away negates something else
    ("如果你们不来，快来人啊，有人抢劫", "抢劫"),  # the hypothetical is in another clause
    ("新闻都没报，有人被打了", "被打"),
])
def test_a_term_asserted_in_its_own_clause(text, term):
    assert ctx(text, term) == ""


def test_the_contrast_ends_a_negation_in_the_same_clause():
    assert ctx("没打架而是在吵架", "打架") == "negated"
    assert ctx("没打架而是在吵架", "吵架") == ""


def test_the_default_cues_leave_hearsay_and_figures_to_the_caller_cues():
    # Alerts' matcher reads rules' terms with the default cues: hearsay and figures of speech off.
    assert ctx("听说有人抢劫", "抢劫", DEFAULT_CUES) == ""
    assert ctx("我心里着火了", "着火", DEFAULT_CUES) == ""
    # A hypothetical reaches over the whole clause for callers, over a window for alerts.
    assert ctx("如果在那条很长的路上碰到有人抢劫", "抢劫", CALLER_CUES) == "hypothetical"
    assert ctx("如果在那条很长的路上碰到有人抢劫", "抢劫", DEFAULT_CUES) == ""


def test_questions_and_pranks():
    assert language.asks("请问身份证丢了怎么补办") and language.asks("这是不是诈骗")
    assert not language.asks("有人在楼下打架")
    assert language.pranks("我家着火了，开玩笑的") and not language.pranks("我家着火了")


def test_cue_lists_are_data_a_rule_may_replace():
    cues = language.Cues.from_parameters({"hearsay_cues": "据说", "negation_cues": ""})
    assert ctx("据说有人抢劫", "抢劫", cues) == "hearsay"
    assert ctx("不是抢劫", "抢劫", cues) == ""
