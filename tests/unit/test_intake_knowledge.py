"""Knowledge search (即问即复) and the duplicate rules as plain functions."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sampledata import knowledge as seed
from services.intake import duplicates
from services.intake.classifier.training import fit_combiner
from services.intake.duplicates import Candidate
from services.intake.knowledge import (ANSWER_THRESHOLD, EXPERT_ONLY, FEATURES, Combiner, Entry, KnowledgeIndex,
                                       PhrasingModel, calibrate, consult, grams, load_paraphrases, normalize,
                                       other_folds)

INDEX = KnowledgeIndex([Entry(s.entry_id, s.topic, s.question, s.answer, s.keywords) for s in seed.entries()])
T = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def test_seed_has_seven_topics_and_realistic_entries():
    entries = seed.entries()
    assert len(entries) >= 150 and {e.topic for e in entries} == set(seed.TOPICS)
    assert len({e.entry_id for e in entries}) == len({e.question for e in entries}) == len(entries)
    assert all(e.keywords and len(e.answer) >= 30 for e in entries)


def test_bigrams_and_everyday_words():
    assert grams("身份证") == {"身份", "份证"}
    assert grams("驾照过期") == grams("驾驶证到期")
    assert grams("ETC认证") >= {"etc", "认证"}


def test_citizens_words_find_the_entry():
    cases = {
        "身份证掉了去哪里补办": "KB-HZ-001",
        "楼道里能给电瓶车充电吗": "KB-XF-003",
        "有人打电话说我涉嫌洗钱让我转到安全账户": "KB-FZ-001",
        "派出所周六上班吗": "KB-QT-002",
    }
    for question, entry_id in cases.items():
        best = INDEX.search(question)[0]
        assert best.entry.entry_id == entry_id and best.score >= ANSWER_THRESHOLD, question


def test_everyday_words_mean_the_same_as_the_bases():
    assert grams("户口迁移") == grams("迁户口") and grams("老人过世了") == grams("老人去世了")
    for question, entry_id in {"买房了想迁户口到江城要啥材料": "KB-HZ-008", "家里老人过世了户口咋办": "KB-HZ-015",
                               "我闺女刚生下来怎么报户口": "KB-HZ-005", "说不了话的人怎么报警": "KB-QT-005"}.items():
        best = INDEX.search(question)[0]
        assert best.entry.entry_id == entry_id and best.score >= ANSWER_THRESHOLD, question


def test_a_question_two_entries_answer_alike_is_not_answered_at_once():
    # "身份证" alone fits losing, renewing and collecting an ID card equally: the runner-up
    # counts against the best, so neither is read out.
    first, second = INDEX.search("身份证", limit=2)
    assert second.score <= first.score < ANSWER_THRESHOLD


def test_a_topic_named_alone_is_not_a_question_answered_at_once():
    # 护照 alone is held by the words of every passport entry: it names a topic, and no entry is more
    # than one of them. Said with what is wanted, the question has one entry again.
    assert INDEX.topic_of("护照") > 1 and INDEX.topic_of("护照丢了怎么办") == 0
    for word in ("护照", "签证", "驾驶证", "出入境"):
        assert all(m.score < ANSWER_THRESHOLD for m in INDEX.search(word)), word
    best = INDEX.search("护照丢了怎么办")[0]
    assert best.entry.entry_id == "KB-CRJ-005" and best.score >= ANSWER_THRESHOLD
    assert INDEX.topic_of("") == 0


def test_an_expired_licence_finds_its_entry():
    best = INDEX.search("驾照过期了还能开车吗")[0]
    assert best.entry.entry_id == "KB-JG-019" and best.score >= ANSWER_THRESHOLD


def test_questions_outside_the_base_stay_below_the_threshold():
    for question in ("请问明天天气怎么样", "我想咨询一下公积金怎么提取", "医保报销比例是多少", "请问小区物业费怎么收的"):
        assert all(m.score < ANSWER_THRESHOLD for m in INDEX.search(question)), question


def test_topic_filter_limit_and_order():
    found = INDEX.search("护照丢了怎么办", topic="出入境", limit=3)
    assert len(found) == 3 and {m.entry.topic for m in found} == {"出入境"}
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)
    assert INDEX.search("？！") == []


def test_consult_answers_or_queues_with_suggestions():
    answered = consult("请问身份证丢了怎么补办？", INDEX, report_id="r1", station_id="S01", now=T)
    assert answered.status == "ANSWERED" and answered.answered_at_once and answered.entry_id == "KB-HZ-001"
    queued = consult("请问公积金怎么提取？", INDEX, report_id="r2", station_id="S01", now=T)
    assert queued.status == "QUEUED" and not queued.answer and queued.answer_time is None
    assert all(s["score"] < ANSWER_THRESHOLD for s in queued.suggestions)


def candidate(rid, kind="FIGHT", at=0, point=(114.30, 30.58), phone="", address="", category="POLICE"):
    lon, lat = point if point else (None, None)
    return Candidate(rid, category, kind, phone, lon, lat, address, T + timedelta(minutes=at))


def test_duplicate_rules():
    first = candidate("a")
    near = candidate("b", at=5, point=(114.301, 30.58))
    assert duplicates.match(near, [first]).master_id == "a"
    assert duplicates.match(candidate("c", at=5, point=(114.32, 30.58)), [first]) is None  # ~1.9 km
    assert duplicates.match(candidate("d", at=31, point=(114.301, 30.58)), [first]) is None  # too late
    assert duplicates.match(candidate("e", kind="FIRE", at=5), [first]) is None  # another kind of event
    assert duplicates.match(candidate("f", kind="ASSAULT", at=5), [first]).master_id == "a"  # compatible
    assert duplicates.match(candidate("g", kind="FIGHT", at=5, category="NON_POLICE"), [first]) is None
    caller = candidate("h", kind="THEFT", phone="13900000001", point=None)
    again = candidate("i", kind="OTHER", at=50, phone="13900000001", point=None)
    assert "同一来电人" in duplicates.match(again, [caller]).reason
    assert duplicates.match(candidate("j", kind="OTHER", at=61, phone="13900000001"), [caller]) is None
    same_address = candidate("k", kind="NOISE", at=10, point=None, address="江岸区中山大道100号")
    assert duplicates.match(candidate("l", kind="NOISE", at=20, point=None, address="江岸区中山大道100号"),
                            [same_address]).master_id == "k"
    assert duplicates.match(candidate("m", kind="CONSULTATION", category="CONSULTATION"), [first]) is None
    # The earliest matching incident is the master.
    earlier = candidate("z", at=-10, point=(114.3005, 30.58))
    assert duplicates.match(near, [first, earlier]).master_id == "z"


def test_a_paraphrased_consultation_is_answered_at_once():
    # Words the base's question does not use: 补一张 (补办), 丢了 for 掉了, a different order.
    for question, entry_id in (("我身份证找不着了，想补一张，要带啥", "KB-HZ-001"),
                               ("驾照快过期了，去哪儿换", "KB-JG-001")):
        answered = consult(question, INDEX, report_id="r3", station_id="S01", now=T)
        assert answered.status == "ANSWERED" and answered.entry_id == entry_id, question


def test_class_names_are_read_as_their_class():
    # A breed is a dog, a country is abroad, a city of Taiwan is Taiwan: the base speaks of the class.
    assert "养狗" in normalize("我刚养了只柯基")
    assert "出国" in normalize("下个月想去德国玩")
    assert "台湾" in normalize("单位组织去台北交流")
    assert normalize("我的护照失效了") == normalize("我的护照过期了")
    for question, entry_id in (("刚领养了一只泰迪，要去登记吗", "KB-ZA-004"),
                               ("外籍同事在江城把护照弄丢了，先去哪", "KB-CRJ-019")):
        best = INDEX.search(question, limit=1)[0]
        assert best.entry.entry_id == entry_id, question


def test_the_combiner_gives_a_probability_and_refuses_evidence_it_was_not_fitted_on():
    c = Combiner(weights=tuple(1.0 if f == "lead_over_runner_up" else 0.0 for f in FEATURES), bias=0.0)
    low, high = (c.probability(tuple(x if f == "lead_over_runner_up" else 0.0 for f in FEATURES))
                 for x in (-2.0, 2.0))
    assert 0.0 < low < 0.5 < high < 1.0
    assert Combiner.from_json(c.as_json()) == Combiner(tuple(round(w, 6) for w in c.weights), 0.0)
    assert Combiner.from_json({**c.as_json(), "features": ["something", "else"]}) is None
    assert Combiner.from_json(None) is None


def test_a_fitted_combiner_answers_what_its_questions_taught_and_refers_what_no_entry_answers():
    entries = [Entry(s.entry_id, s.topic, s.question, s.answer, s.keywords) for s in seed.entries()]
    questions = [{"question": s.question, "entry_id": s.entry_id} for s in seed.entries()[:60]] + \
        [{"question": q, "entry_id": None} for q in ("我家祖宅底下挖出了古墓该向谁报告", "剧本杀店用烟雾机合法吗",
                                                     "军队驾照退役后怎么换地方驾照", "养老院能把消防通道改成康复区吗")]
    combiner = fit_combiner(lambda p: KnowledgeIndex(entries, p, combiner=None), questions)
    assert combiner is not None
    index = KnowledgeIndex(entries, {}, combiner=combiner)
    best = index.search("身份证丢了怎么补办", limit=1)[0]
    assert best.entry.entry_id == "KB-HZ-001" and 0.5 < best.score <= 1.0
    threshold, figures = calibrate(lambda p: KnowledgeIndex(entries, p, combiner=combiner), questions)
    assert 0.05 <= threshold <= 0.99 and figures["answered_wrong_share"] <= 0.03
    # Nothing to learn from: every candidate right, or none.
    assert fit_combiner(lambda p: KnowledgeIndex(entries, p, combiner=None), questions[-4:]) is None


def test_the_phrasing_model_learns_which_words_tell_entries_apart():
    entries = [Entry("A", "户政", "怎么改名字", "携带户口簿和身份证到户籍窗口申请变更姓名。", ("改名",)),
               Entry("B", "户政", "身份证丢了怎么补办", "携带户口簿到任一派出所户籍窗口申请补领身份证。", ("补办",)),
               Entry("C", "交管", "驾驶证到期怎么换证", "到期前九十日内到车管所申请换领驾驶证。", ("换证",)),
               Entry("A", "户政", "我想换一个名字要怎么弄", "", ())]
    model = PhrasingModel(entries)
    assert set(model.classes) == {"A", "B", "C"}
    scores = model.scores("想给孩子换个名字")
    assert max(scores, key=scores.get) == "A"
    scores = model.scores("驾照快到期了去哪换")
    assert max(scores, key=scores.get) == "C"
    # One entry is not a classification: no model, no scores.
    assert PhrasingModel(entries[:1]).scores("怎么改名字") == {}


def test_questions_only_an_expert_answers_are_a_class_of_their_own():
    entries = [Entry("A", "户政", "身份证丢了怎么补办", "携带户口簿到任一派出所户籍窗口申请补领身份证。", ("补办",)),
               Entry("B", "交管", "驾驶证到期怎么换证", "到期前九十日内到车管所申请换领驾驶证。", ("换证",))]
    expert = ["医保卡丢了怎么补办", "社保卡丢了去哪补", "公积金卡丢了怎么办", "医保报销比例是多少"]
    with_experts, without = PhrasingModel(entries, expert), PhrasingModel(entries)
    assert EXPERT_ONLY in with_experts.classes and EXPERT_ONLY not in without.classes
    # A question like the expert-only ones reads as one, an entry's own question does not.
    assert with_experts.scores("医保卡掉了咋补")[EXPERT_ONLY] > 0
    assert with_experts.scores("身份证丢了怎么补办")[EXPERT_ONLY] < 0
    assert EXPERT_ONLY not in without.scores("医保卡掉了咋补")
    # Every candidate carries it; the expert-only class is never itself a candidate.
    index = KnowledgeIndex(entries, {EXPERT_ONLY: expert}, combiner=None)
    found = index.candidates("医保卡掉了咋补办")
    assert found and all(c.entry.entry_id in {"A", "B"} for c in found)
    assert all(c.features[FEATURES.index("model_expert_only")] > 0 for c in found)
    # The labelled consultations and the folds keep the rare questions under EXPERT_ONLY.
    assert load_paraphrases().get(EXPERT_ONLY)
    folds = other_folds([{"question": "q1", "entry_id": "A"}, {"question": "q2", "entry_id": None}], 2, 3)
    assert folds == {"A": ["q1"], EXPERT_ONLY: ["q2"]}


def test_the_phrasing_model_proposes_candidates_the_word_views_miss_and_search_keeps_the_limit():
    index = KnowledgeIndex([Entry(s.entry_id, s.topic, s.question, s.answer, s.keywords) for s in seed.entries()])
    found = index.candidates("有人打电话说我涉嫌洗钱，让我转到安全账户", limit=2)
    # Up to `limit` from each view; the model's evidence is on every candidate.
    assert 1 <= len(found) <= 4 and all(len(c.features) == len(FEATURES) for c in found)
    assert sum(c.features[FEATURES.index("model_first")] for c in found) == 1.0
    assert len(index.search("有人打电话说我涉嫌洗钱，让我转到安全账户", limit=2)) <= 2
