"""The classifier (services/intake/classifier/): evidence weighed per type (no first match wins),
the model and the evidence combined, the confidence threshold, the safety net for life-threatening
matters, and the shipped classifier on the phrasings the first-match rules got wrong."""
from __future__ import annotations

import pytest

from services.intake.classifier import artifacts
from services.intake.classifier.core import Classifier, Params
from services.intake.classifier.evidence import EvidenceFinder
from services.intake.classifier.fitting import fit

FINDER = EvidenceFinder()
EVIDENCE_ONLY = Classifier(None)


def trained_on(rows: list[tuple[str, str]], **params) -> Classifier:
    base = Classifier(None)
    docs = [base.tokens(text) for text, _ in rows]
    return Classifier(fit(docs, [t for _, t in rows]), Params(**params), "test")


# -- evidence ------------------------------------------------------------------------

def test_every_word_adds_its_weight_to_its_type_whatever_the_order():
    a = FINDER.find("有人抢了我的包，还打了我")
    b = FINDER.find("有人打了我，还抢了我的包")
    assert a.scores == b.scores and a.scores["ROBBERY"] > 0


def test_words_the_caller_does_not_assert_add_nothing_and_count_against_their_type():
    ev = FINDER.find("不是打架，就是吵起来了")
    assert "FIGHT" not in ev.scores and ev.against["FIGHT"] > 0 and ev.scores["DISPUTE"] > 0
    news = FINDER.find("我看新闻说有人抢劫")
    assert "ROBBERY" not in news.scores and [h.context for h in news.dismissed()] == ["reported"]


def test_hearsay_counts_half():
    heard, seen = FINDER.find("听说有人被偷了"), FINDER.find("刚才有人被偷了")
    assert heard.scores["THEFT"] == pytest.approx(seen.scores["THEFT"] / 2)


def test_a_question_about_a_matter_is_a_consultation_on_its_topic():
    ev = FINDER.find("如果在路上碰到有人抢劫我该怎么办")
    assert ev.question and "ROBBERY" not in ev.scores and ev.scores["CONSULTATION_PUBLIC_ORDER"] > 0
    fraud = FINDER.find("要是有人让我转账到安全账户，是不是诈骗")
    assert fraud.scores.get("CONSULTATION_ANTI_FRAUD", 0) > fraud.scores.get("TELECOM_FRAUD", 0)


def test_a_longer_word_hides_the_shorter_ones_inside_it():
    ev = FINDER.find("偷偷给你们打的电话")
    assert "THEFT" not in ev.scores
    assert "ROBBERY" not in FINDER.find("医生正在抢救").scores


# -- the combination -------------------------------------------------------------------

def test_without_a_model_the_evidence_decides_and_says_which_words():
    d = EVIDENCE_ONLY.classify("让人摸了钱包", "PHONE")
    assert (d.category, d.incident_type) == ("POLICE", "THEFT")
    assert "证据词“摸了”" in d.reason and d.version == "evidence-only"


def test_the_evidence_moves_the_model_and_beta_says_how_much():
    rows = [("楼下很吵", "NOISE"), ("邻居半夜唱歌", "NOISE"), ("音响声音太大", "NOISE"),
            ("有人在路边打架", "FIGHT"), ("几个人打起来了", "FIGHT"), ("广场有人斗殴", "FIGHT")]
    text = "楼下有人动手了，很吵"
    without = trained_on(rows, beta=0.0).classify(text, "PHONE")
    with_evidence = trained_on(rows, beta=2.0).classify(text, "PHONE")
    assert without.incident_type == "NOISE" and with_evidence.incident_type == "FIGHT"


def test_below_the_threshold_the_call_taker_confirms():
    unsure = Classifier(None, Params(threshold=0.99)).classify("楼下有人吵架", "PHONE")
    assert unsure.needs_confirmation and "待接警员确认" in unsure.reason
    sure = Classifier(None, Params(threshold=0.01)).classify("楼下有人吵架", "PHONE")
    assert not sure.needs_confirmation


def test_nothing_to_go_on_is_marked_for_confirmation_not_silently_police_p3():
    d = EVIDENCE_ONLY.classify("喂", "PHONE")
    assert d.needs_confirmation


@pytest.mark.parametrize("text", ["", "……", "？？", "  "])
def test_a_text_with_nothing_said_waits_for_the_call_taker_however_sure_the_model_is(text):
    # A model that has only ever seen empty texts as silent calls is sure of them: nothing said
    # confirms it, so the call-taker does.
    sure = trained_on([("", "SILENT_ALARM"), ("……", "SILENT_ALARM"), ("路灯坏了", "STREET_LIGHT"),
                       ("小区停水了", "WATER_OUTAGE")], threshold=0.01)
    d = sure.classify(text, "PHONE")
    assert d.needs_confirmation and "来电无文字内容" in d.reason
    assert not sure.classify("路灯坏了", "PHONE").needs_confirmation


# -- the safety net -------------------------------------------------------------------------

@pytest.mark.parametrize("text, itype", [
    ("我儿子被人绑了，说不给钱就撕票", "KIDNAPPING"),
    ("他拿斧头把他爸砍死了", "HOMICIDE"),
    ("厨房燃气泄漏了，味道很大", "GAS_LEAK"),
    ("有人站在楼顶说不想活了", "SUICIDE_RISK"),
    ("孩子掉河里了", "DROWNING_RISK"),
    # Everyday words for an overdose, for someone shut in, for groping.
    ("我刚才吃了很多药，现在头好晕", "SUICIDE_RISK"),
    ("电梯又坏了，我妈关在里面出不来", "TRAPPED"),
    ("有个男的在公交上一直乱摸我", "SEXUAL_ASSAULT"),
])
def test_a_life_threatening_matter_stays_on_the_police_path_whatever_the_model_says(text, itype):
    # A model that knows only 12345 matters, and no weight for the evidence: the net still holds.
    model = trained_on([("垃圾没人清运", "GARBAGE"), ("路灯坏了", "STREET_LIGHT"), ("小区停水了", "WATER_OUTAGE")],
                       beta=0.0)
    d = model.classify(text, "PHONE")
    assert d.category == "POLICE" and d.priority <= 2 and d.needs_confirmation, d.reason
    assert d.incident_type == itype and "安全兜底" in d.reason and "safety-net" in d.rule_ids


def test_the_safety_net_ignores_what_is_not_asserted():
    model = trained_on([("垃圾没人清运", "GARBAGE"), ("请问怎么办理居住证", "CONSULTATION_HOUSEHOLD")], beta=0.0)
    for text in ("如果家里着火了该怎么逃生", "我看新闻说有人被杀了", "没有人落水，是我看错了"):
        assert "safety-net" not in model.classify(text, "PHONE").rule_ids, text


# -- the shipped classifier, on phrasings the first-match rules got wrong ------------------------

@pytest.mark.parametrize("text, category, itype", [
    ("让人摸了钱包", "POLICE", "THEFT"),
    ("被人从后面拽走了包", "POLICE", "ROBBERY"),
    ("点蜡烛把纸箱子引着了", "POLICE", "FIRE"),
    ("我儿子被人绑了，他们说不给钱就撕票", "POLICE", "KIDNAPPING"),
    ("不是打架，就是吵起来了", "POLICE", "DISPUTE"),
])
def test_ordinary_phrasings(text, category, itype):
    d = artifacts.default().classify(text, "PHONE")
    assert (d.category, d.incident_type) == (category, itype), d.reason


@pytest.mark.parametrize("text", ["如果在路上碰到有人抢劫我该怎么办", "我看新闻说有人抢劫", "着火了！我心里着火了"])
def test_hypotheticals_news_and_figures_of_speech_are_no_emergency(text):
    d = artifacts.default().classify(text, "PHONE")
    assert not (d.category == "POLICE" and d.priority == 1), d.reason


# -- a caller chasing the police (催警) ---------------------------------------------------

@pytest.mark.parametrize("text", ["我刚才报过警，警察怎么还没到？", "半小时前报的警，到现在没人来", "打了110快一个钟头了，你们的人什么时候到"])
def test_a_caller_chasing_an_earlier_report_stays_on_the_police_path(text):
    d = artifacts.default().classify(text)
    assert (d.category, d.incident_type) == ("POLICE", "OTHER") and d.needs_confirmation, d.reason
    assert "follow-up-call" in d.rule_ids and "催警" in d.reason


@pytest.mark.parametrize("text", ["我报过警了，想问问案件进展怎么查", "我没报过警，你们怎么还没到"])
def test_a_prior_report_without_waiting_for_officers_is_not_a_chase(text):
    d = artifacts.default().classify(text)
    assert "follow-up-call" not in d.rule_ids, d.reason
