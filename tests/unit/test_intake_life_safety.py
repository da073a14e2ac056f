"""The life-safety guard (services/intake/classifier/guard.py, cues in lexicon.LIFE_SAFETY): a cue of
danger to life the caller asserts keeps the report on the police path at 1级–2级 with a fitting type,
whatever the model says; a negated, supposed, reported, heard, wished or played cue does not."""
from __future__ import annotations

import pytest

from services.intake import rules
from services.intake.classifier import artifacts
from services.intake.classifier.core import Classifier, Params
from services.intake.classifier.fitting import fit
from services.intake.classifier.guard import LifeSafetyGuard
from services.intake.classifier.lexicon import LIFE_SAFETY
from services.intake.classifier.text import normalize
from services.runtime import language

GUARD = LifeSafetyGuard()


def cue(text: str):
    norm = normalize(text)
    return GUARD.find(norm, prank=bool(language.pranks(norm)))


def misled() -> Classifier:
    """A model that has only ever seen 12345 matters: it reads everything as one of them."""
    base = Classifier(None)
    rows = [("楼上邻居家天天吵吵闹闹", "NEIGHBOR_DISPUTE"), ("隔壁邻居把东西堆在楼道里", "NEIGHBOR_DISPUTE"),
            ("小区电梯又坏了停在三楼", "ELEVATOR_FAULT"), ("电梯门关不上一直响", "ELEVATOR_FAULT"),
            ("河边的栏杆锈坏了没人修", "SAFETY_HAZARD"), ("路边这个井盖松了", "MANHOLE_COVER")]
    docs = [base.tokens(t) for t, _ in rows]
    return Classifier(fit(docs, [t for _, t in rows]), Params(beta=0.0, threshold=0.5), "test-misled")


MISLED = misled()


# -- cues the caller asserts: police path, 1级–2级, a fitting type ---------------------------------

ASSERTED = [
    ("对面楼里有个女的一直在喊救命，声音很惨", "呼救"),
    ("快来人啊，救救我，他把门堵上了", "呼救"),
    ("我听见隔壁屋有小孩在哭着求救", "呼救"),
    ("楼下超市门口一个男的拿着菜刀追着人跑", "持刀砍人"),
    ("我老公喝醉了举着刀在客厅里转", "持刀砍人"),
    ("有个人被捅伤了躺在公交站边上", "持刀砍人"),
    ("他刚才在我胳膊上砍了我一刀就跑了", "持刀砍人"),
    ("我爸头上全是血，是被人用砖头拍的", "流血"),
    ("路口有人满脸是血坐在地上", "流血"),
    ("我妈摔了一跤，后脑勺血止不住", "流血"),
    ("我爷爷倒在厨房里，好像没气了", "没有生命迹象"),
    ("我摇他他也没反应了，嘴唇发紫", "没有生命迹象"),
    ("有个姑娘坐在天台边上哭，说要跳下去", "跳楼轻生"),
    ("我室友说她不想活了，把自己锁在卫生间", "跳楼轻生"),
    ("一个小男孩掉进池塘里了，在水里扑腾", "落水"),
    ("桥下面有个人被水冲走了，快派人", "落水"),
    ("对面小区六楼起火了，阳台上还有人在里面喊", "着火有人被困"),
    ("仓库烧起来了，有两个工人没跑出来", "着火有人被困"),
    ("我女儿放学路上被一辆面包车拽上车带走了", "绑架拐走"),
    ("有人发短信说我儿子在他们手上，要二十万赎金", "绑架拐走"),
    ("我被他们关在一个地下室里，说不拿钱就不放我", "绑架拐走"),
    ("出租房里发现一具尸体，都臭了", "打死杀人"),
    ("我前夫在电话里说今晚要弄死我", "扬言杀人"),
    ("他掐住我的脖子，我差点喘不上气", "掐脖捂嘴"),
    ("商场里刚才砰砰两声，像是有人开枪", "持枪"),
    ("有个男的在公园角落里猥亵一个女学生", "性侵害"),
]


@pytest.mark.parametrize("text,group", ASSERTED)
def test_an_asserted_cue_of_danger_to_life_is_found_in_its_group(text, group):
    found = cue(text)
    assert found is not None and found.group == group, found
    assert 1 <= found.priority <= 2 and all(t in rules.INCIDENT_TYPES for t in found.types)


@pytest.mark.parametrize("text,group", ASSERTED)
def test_whatever_the_model_says_the_report_stays_on_the_police_path_at_1_or_2(text, group):
    d = MISLED.classify(text, "PHONE")
    found = cue(text)
    assert d.category == rules.POLICE, d.reason
    assert d.priority <= 2 and d.incident_type in found.types, d.reason
    # Said in Chinese by this guard, or by the safety net of the life-threatening types before it.
    assert "兜底" in d.reason and {"life-safety", "safety-net"} & set(d.rule_ids) and d.needs_confirmation


def test_a_cry_for_help_off_the_police_path_says_so_in_chinese():
    d = MISLED.classify("隔壁那家一直传出呼救的声音", "PHONE")
    assert (d.category, d.priority) == (rules.POLICE, 1)
    assert "来电明确说到“呼救”" in d.reason and "可能危及生命" in d.reason and "转警情" in d.reason


def test_a_cue_in_two_parts_needs_both_fire_and_someone_inside():
    assert cue("厂房着火了，里面还有人在").group == "着火有人被困"
    assert cue("厂房着火了，人都跑出来了") is None


def test_a_police_type_the_decision_has_is_kept_and_raised():
    shipped = artifacts.default()
    d = shipped.classify("两个司机在路口撞车了，一个司机满头是血", "PHONE")
    assert d.category == rules.POLICE and d.priority <= 2, d.reason


def test_a_lesser_police_type_is_outgrown_by_the_cue():
    d = MISLED.classify("本来是在吵架，现在那个男的抄起刀就捅人", "PHONE")
    assert d.category == rules.POLICE and d.incident_type != "DISPUTE" and d.priority <= 2, d.reason


# -- cues the caller does not assert: the guard stays out -----------------------------------------

NOT_ASSERTED = [
    "没有人流血，就是两个人推了几下",                 # negated
    "不是有人喊救命，是楼下小孩在玩闹",               # negated
    "我朋友差点掉水里，被我一把拉住了",               # a near miss
    "假如有坏人拿着刀冲进教室，老师该怎么组织学生",   # hypothetical
    "万一孩子掉进河里，家长第一时间该做什么",         # hypothetical
    "要是楼里着火了有人出不来，消防通道在哪",         # hypothetical
    "我在新闻上看到有个小区有人跳楼",                 # reported
    "昨天电视里演的那个绑架案太吓人了",               # reported
    "听说隔壁村有人被砍伤了，不知道真假",             # hearsay
    "据说那条河去年有人溺水",                         # hearsay
    "气死我了，我真想捅了他一刀",                     # the caller's wish
    "开玩笑的，没人喊救命，骗你的",                   # a declared joke
    "我们在玩游戏，他扮演的人被绑走了",               # play
    "我手机掉水里了，开不了机",                       # an object, not a person
    "我打死也不会再去那家店买东西了",                 # an idiom
    "这家店砍价砍得太狠了，一件衣服砍了一半",         # bargaining
    "我去医院抽血化验，护士扎了三针才扎进去",         # a blood test
    "这个电梯里的求救电话号码是空号",                 # a thing named, not a cry
    "家里天然气没气了，人没法做饭",                   # gas outage
]


@pytest.mark.parametrize("text", NOT_ASSERTED)
def test_a_cue_the_caller_does_not_assert_does_not_trip_the_guard(text):
    assert cue(text) is None


@pytest.mark.parametrize("text", ["我在新闻上看到有个小区有人跳楼", "假如有坏人拿着刀冲进教室，老师该怎么组织学生",
                                  "气死我了，我真想捅了他一刀"])
def test_without_an_asserted_cue_the_guard_leaves_the_decision_alone(text):
    d = MISLED.classify(text, "PHONE")
    assert "life-safety" not in d.rule_ids and "生命安全兜底" not in d.reason


def test_the_cue_lists_are_data_with_synonyms_for_every_group():
    names = [name for name, *_ in LIFE_SAFETY]
    assert len(names) == len(set(names)) >= 10
    for name, words, types, priority, _unless in LIFE_SAFETY:
        assert len(words) >= 1 and types and priority in (1, 2), name
        assert sum(len(alt) for w in words for part in w for alt in part) > 1, name


def test_a_figure_of_speech_is_not_the_matter_it_names():
    d = artifacts.default().classify("唉，我心里着火了一样，烦得要命", "PHONE")
    assert d.incident_type != "FIRE" and "life-safety" not in d.rule_ids, d.reason


def test_news_of_a_crime_with_no_victim_to_help_is_no_emergency():
    d = artifacts.default().classify("我在电视新闻里看到最近有人骑摩托车抢包", "PHONE")
    assert not (d.category == rules.POLICE and d.priority <= 2), d.reason
    assert "life-safety" not in d.rule_ids


def test_a_place_name_that_ends_like_a_feeling_is_meant_literally():
    d = artifacts.default().classify("我儿子在市体育中心里走丢了，穿蓝色外套", "PHONE")
    assert (d.category, d.incident_type) == (rules.POLICE, "MISSING_PERSON"), d.reason
