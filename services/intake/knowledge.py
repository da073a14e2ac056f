"""Consultations answered at once (即问即复) and the expert queue (为民服务圈).

Search runs over an in-memory index of character bigrams and keywords, built
from the `knowledge_entries` table at first use and rebuilt when an entry is
added. Why not pg_trgm: the extension has to be created by a superuser while
each service runs as a role that owns only its schema (a managed Postgres may
not offer it at all), and trigrams fit Chinese poorly: most Chinese words are
two characters, so the bigram is the unit that carries meaning. The knowledge
base is small (hundreds to a few thousand entries), so a posting-list index
in the process answers in well under a millisecond and rebuilds in a few
milliseconds. Replicas notice entries added elsewhere by comparing the
table's highest sequence number, read at most every few seconds
(`queries.KnowledgeBase`).

Pure: the entries, the index, the consultation and its steps (claimed, answered).
The tables are in `store.py`, the index's loading in `queries.py`.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import lru_cache
from datetime import datetime
from pathlib import Path

from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from services.runtime.model import TimelineEntry

from .classifier import text as classifier_text

TOPICS = ("户政", "出入境", "交管", "治安", "反诈", "消防", "其他")
# Where `python -m services.intake train` writes the threshold it calibrated on the consultations'
# train split; without it, DEFAULT_ANSWER_THRESHOLD.
CALIBRATION = Path(__file__).resolve().parent / "models" / "knowledge.json"
DEFAULT_ANSWER_THRESHOLD = 0.4
# Calibration targets, out of fold on the train split: wrong answers at most this share of the questions...
MAX_WRONG_SHARE = 0.03
# ...and at least this share of the questions the base cannot answer sent to an expert.
MIN_REFERRED_SHARE = 0.9


def _calibration() -> dict:
    try:
        doc = json.loads(CALIBRATION.read_text(encoding="utf-8"))
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def _calibrated_threshold(doc: dict) -> float:
    try:
        return float(doc["answer_threshold"])
    except (KeyError, TypeError, ValueError):
        return DEFAULT_ANSWER_THRESHOLD


_CALIBRATED = _calibration()
# A consultation whose best answer scores at least this is answered at once.
ANSWER_THRESHOLD = _calibrated_threshold(_CALIBRATED)
# Citizens' own phrasings of the base's questions: the labelled consultations' train split
# (question, entry_id), searched as further questions of their entries.
PARAPHRASES = Path(__file__).resolve().parent / "corpus" / "consultations.jsonl"


# The key of `load_paraphrases` under which the questions only an expert can answer are kept: the
# phrasing model learns them as one more class, so a question like them reads as one the base lacks.
EXPERT_ONLY = "__expert__"


def load_paraphrases(path: Path = PARAPHRASES, split: str = "train") -> dict[str, list[str]]:
    """Entry id -> its phrasings in the labelled consultations; EXPERT_ONLY -> the questions no entry
    answers."""
    out: dict[str, list[str]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("split") == split and row.get("question"):
            out.setdefault(row.get("entry_id") or EXPERT_ONLY, []).append(row["question"])
    return out


DEFAULT_PARAPHRASES = load_paraphrases()
# How long a replica trusts its index before checking the table for new entries.
REFRESH_CHECK_SECONDS = 2.0

_RUNS = re.compile(r"[\u4e00-\u9fff]+|[a-z0-9]+")
# Everyday words citizens use for the terms the answers are written in.
SYNONYMS = {
    "驾照": "驾驶证", "行车证": "行驶证", "电瓶车": "电动车", "户口本": "户口簿", "掉了": "丢了", "弄丢": "丢了",
    "不见了": "丢了", "遗失": "丢失", "补领": "补办", "多久": "多长时间", "几天": "多长时间", "煤气": "燃气",
    "身份证件": "身份证", "周六": "周末", "周日": "周末", "星期六": "周末", "星期天": "周末", "骗子": "诈骗",
    "上班": "办公时间", "过期": "到期", "开车": "驾驶", "驾车": "驾驶", "摩托": "摩托车", "小孩": "孩子",
    "娃": "孩子", "咋办": "怎么办", "咋": "怎么", "啥": "什么", "补一张": "补办", "重办": "补办",
    # moving a household registration, and registering a newborn
    "户口迁移": "迁户口", "迁移户口": "迁户口", "转户口": "迁户口", "户口迁": "迁户口", "户口转": "迁户口",
    "报户口": "上户口", "入户口": "上户口", "落户口": "上户口",
    # dates and documents
    "期满": "到期", "超期": "逾期", "驾驶本": "驾驶证", "驾驶执照": "驾驶证", "良民证": "无犯罪记录",
    "无犯罪证明": "无犯罪记录", "港澳证": "港澳通行证", "临牌": "临时号牌", "上牌照": "上牌", "上牌子": "上牌",
    "挂牌照": "上牌", "验车": "年检", "罚单": "罚款",
    # everyday words for people, money, matters
    "过世": "去世", "离世": "去世", "病故": "去世", "工钱": "工资", "薪水": "工资", "薪资": "工资",
    "造谣": "谣言", "假消息": "谣言", "谣传": "谣言", "不实信息": "谣言", "假警察": "冒充警察",
    "爸妈": "父母", "儿子": "孩子", "女儿": "孩子", "闺女": "孩子", "宝宝": "孩子",
    "出国读书": "出国留学", "出国上学": "出国留学", "国外读书": "出国留学", "国外上学": "出国留学",
    "开饭馆": "开店", "开餐馆": "开店", "开饭店": "开店", "开个店": "开店",
    "刮蹭": "剐蹭", "蹭了": "剐蹭", "刮了": "剐蹭", "碰了一下": "剐蹭",
    "挨打": "被打", "挨揍": "被打", "被揍": "被打", "被人打": "被打",
    "养了条狗": "养狗", "养了只狗": "养狗", "养了一条狗": "养狗", "养了一只狗": "养狗",
    "搞丢": "丢了", "丢啦": "丢了", "找不到了": "丢了", "找不着了": "丢了", "寻不见": "丢了",
    "网络报警": "网上报警", "在线报警": "网上报警", "打错电话": "打错", "拨错": "打错",
    "说不了话": "聋哑人", "不能说话": "聋哑人", "哑巴": "聋哑人", "聋人": "聋哑人",
    "臭鸡蛋味": "燃气泄漏", "煤气味": "燃气泄漏", "燃气味": "燃气泄漏",
    "烧起来": "着火", "起火": "着火", "锁住": "锁闭", "锁上了": "锁闭", "延签": "签证延期",
}
# Names citizens use for a member of a class the answers speak of as a whole (a breed for 狗, a
# country for 外国, a city of Taiwan for 台湾): replaced first, so SYNONYMS can then read the class
# word in its phrase (去德国 → 去外国 → 出国).
_COUNTRIES = ("美国 英国 法国 德国 日本 韩国 俄罗斯 意大利 西班牙 葡萄牙 加拿大 澳大利亚 澳洲 新西兰 泰国 越南 缅甸 老挝 "
              "柬埔寨 马来西亚 新加坡 印度尼西亚 印尼 印度 巴基斯坦 菲律宾 荷兰 瑞士 瑞典 挪威 丹麦 芬兰 比利时 奥地利 "
              "希腊 爱尔兰 波兰 乌克兰 土耳其 伊朗 以色列 沙特 阿联酋 迪拜 埃及 南非 尼日利亚 巴西 阿根廷 墨西哥 智利 "
              "蒙古 朝鲜 哈萨克斯坦 欧洲 美洲 非洲 东南亚 中东 海外 国外 境外").split()
_DOG_BREEDS = ("柯基 泰迪 金毛 哈士奇 二哈 拉布拉多 比熊 柴犬 秋田犬 阿拉斯加 边牧 德牧 牧羊犬 藏獒 萨摩耶 博美 吉娃娃 "
               "斗牛犬 法斗 巴哥 雪纳瑞 贵宾犬 中华田园犬 土狗 狗狗 小狗 大狗 宠物狗").split()
_CAR_NAMES = ("桑塔纳 捷达 宝马 奔驰 奥迪 丰田 本田 日产 别克 雪佛兰 福特 起亚 比亚迪 吉利 哈弗 奇瑞 "
              "五菱 宏光 特斯拉 面包车 小轿车 轿车 私家车 小汽车 越野车 皮卡 新能源车").split()
HYPERNYMS = {
    **{c: "外国" for c in _COUNTRIES},
    **{d: "狗" for d in _DOG_BREEDS},
    **{c: "车" for c in _CAR_NAMES},
    "台北": "台湾", "高雄": "台湾", "台中": "台湾", "台南": "台湾", "宝岛": "台湾", "香港": "港澳", "澳门": "港澳",
    "老外": "外国人", "外籍": "外国", "洋人": "外国人",
}
_HYPERNYM = re.compile("|".join(sorted(map(re.escape, HYPERNYMS), key=len, reverse=True)))
SYNONYMS.update({
    # the class words in their phrases
    "去外国": "出国", "到外国": "出国", "出外国": "出国", "外国玩": "出国旅游", "外国旅游": "出国旅游",
    "外国旅行": "出国旅游", "外国读书": "出国留学", "外国留学": "出国留学", "外国工作": "出国工作", "外国定居": "出国定居",
    "外国朋友": "外国人", "外国同事": "外国人", "外国员工": "外国人", "外国工程师": "外国人", "外国专家": "外国人",
    "外国客人": "外国人", "外国游客": "外国人", "外国学生": "外国人", "养了条狗": "养狗", "养了只狗": "养狗",
    "养只狗": "养狗", "养条狗": "养狗", "养了一只狗": "养狗", "领养了一只狗": "养狗", "领养狗": "养狗", "买了只狗": "养狗",
    # everyday words for the matters the answers are about
    "失效": "到期", "作废": "到期", "不给工资": "拖欠工资", "不发工资": "拖欠工资", "欠工资": "拖欠工资",
    "拖工资": "拖欠工资", "工资不给": "拖欠工资", "讨工钱": "讨薪", "赌钱": "赌博", "开赌场": "聚赌", "赌场": "聚赌",
    "老公打": "家暴", "丈夫打": "家暴", "男人打我": "家暴", "打老婆": "家暴", "打媳妇": "家暴", "对象打我": "家暴",
    "误打": "误拨", "按错": "误拨", "防火的东西": "消防器材", "灭火的东西": "消防器材", "消防设施坏": "消防隐患",
    "消防设备坏": "消防隐患", "灭火器坏": "消防隐患",
})
_SYNONYM = re.compile("|".join(sorted(map(re.escape, SYNONYMS), key=len, reverse=True)))


def normalize(text: str) -> str:
    lowered = _HYPERNYM.sub(lambda m: HYPERNYMS[m.group(0)], text.lower())
    return _SYNONYM.sub(lambda m: SYNONYMS[m.group(0)], lowered)


def grams(text: str) -> set[str]:
    """Character bigrams of Chinese runs, whole tokens of Latin letters and digits."""
    out: set[str] = set()
    for run in _RUNS.findall(normalize(text)):
        if run.isascii() or len(run) == 1:
            out.add(run)
        else:
            out.update(run[i:i + 2] for i in range(len(run) - 1))
    return out


@dataclass(frozen=True)
class Entry:
    entry_id: str
    topic: str
    question: str
    answer: str
    keywords: tuple[str, ...] = ()
    source: str = "SEED"
    source_consultation: str = ""
    create_time: datetime | None = None


@dataclass(frozen=True)
class Match:
    entry: Entry
    score: float


# The evidence a candidate entry is ranked on, in `Candidate.features` order.
FEATURES = ("blended_score", "blend", "lead_over_runner_up", "words", "bigrams", "fields",
            "unseen_share_of_question", "ranked_first", "question_terms_per_10",
            "model_score", "model_lead", "model_first", "both_first", "model_expert_only",
            # the same evidence where it counts most: a lead or a value of the model's first entry,
            # the blend of the words' first, the expert-only class against the model's first entry
            "model_lead_if_first", "model_score_if_both_first", "blend_if_ranked_first", "model_score_if_first",
            "model_expert_only_if_first", "model_score_above_zero")
# The features the word-and-character views give (the first nine); a candidate only the phrasing
# model proposes has them at zero.
LEXICAL_FEATURES = 9


@dataclass(frozen=True)
class Candidate:
    entry: Entry
    blended_score: float  # the hand-weighted blend less the runner-up's lead, 0..1
    features: tuple[float, ...]  # FEATURES


@dataclass(frozen=True)
class Combiner:
    """A logistic model over a candidate's evidence (FEATURES): the probability that the entry is the
    right answer. Fitted out of fold on the consultations' train split, so a score means the same
    whatever the question, and the answer threshold is a probability."""

    weights: tuple[float, ...]
    bias: float

    def probability(self, features: tuple[float, ...]) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.weights, features))
        return round(1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z)))), 4)

    def as_json(self) -> dict:
        return {"features": list(FEATURES), "weights": [round(w, 6) for w in self.weights],
                "bias": round(self.bias, 6)}

    @classmethod
    def from_json(cls, doc: dict | None) -> "Combiner | None":
        if not doc or list(doc.get("features", ())) != list(FEATURES):
            return None  # fitted on other evidence: not usable
        return cls(tuple(float(w) for w in doc["weights"]), float(doc["bias"]))


# The combiner `python -m services.intake train` fitted (in CALIBRATION); None: the hand-weighted blend.
DEFAULT_COMBINER = Combiner.from_json(_CALIBRATED.get("combiner"))


# Words that say nothing about which entry is meant (how a question is asked, not what about).
STOP_WORDS = frozenset("""请问 你好 您好 想问 问 问一下 一下 咨询 我 我们 你 你们 他 她 的 了 吗 呢 吧 啊 呀 么 是 在 有 和 与 或
要 想 能 会 可以 可不可以 能不能 怎么 怎么样 怎样 如何 什么 哪 哪里 哪儿 在哪 多少 几 需要 一个 这个 那个 这 那 就 都 也 还 又
得 地 着 过 对 把 被 给 让 去 来 到 从 说 下 上 个 吗? 吗？ 请 谢谢 警察 同志 警官 一直""".split())
BM25_K1, BM25_B = 1.2, 0.75
# A word of the citizen's question found only in an entry's answer explains this much of itself.
ANSWER_WORD_SHARE = 0.5
# The share of an entry's score from reading its fields separately (`FieldScorer`); the rest is the
# words' and bigrams' view of its question and keywords.
FIELD_SHARE = 0.5
# How much the runner-up's score counts against the best entry's (see `KnowledgeIndex.search`).
LEAD_WEIGHT = 2.0
# The words' (BM25) share of the score; the rest is the character bigrams'.
WORD_SHARE = 0.5


def terms(text: str) -> list[str]:
    """The words of a question (jieba, everyday words mapped to the base's, stop words dropped) and
    the character bigrams inside them, so a paraphrase segmented differently still meets its entry."""
    return list(_terms(text))


@lru_cache(maxsize=65536)
def _terms(text: str) -> tuple[str, ...]:
    # Building the index segments each entry's answer and keywords once for every phrasing of it:
    # remembered, they are segmented once (the index builds in a third less time).
    out: list[str] = []
    for run in _RUNS.findall(normalize(text)):
        if run.isascii():
            out.append(run)
            continue
        for w in classifier_text.tokenizer().lcut(run, HMM=True):
            if w in STOP_WORDS:
                continue
            out.append(w)
            out.extend(w[i:i + 2] for i in range(len(w) - 1) if len(w) > 2)
    return tuple(out)


class BigramScorer:
    """Character bigram postings over questions and keywords, weighted by inverse document frequency.

    The score (0..1) blends three things: how much of the citizen's question
    the entry explains (idf-weighted bigram coverage, bigrams never seen in
    the base counting as unexplained), how much of the entry's own question
    was asked, and how many of the entry's keywords occur in the question.
    """

    def __init__(self, entries: list[Entry]):
        self.entries = list(entries)
        self._question_grams = [grams(e.question) for e in self.entries]
        all_grams = [q | grams(" ".join(e.keywords)) for q, e in zip(self._question_grams, self.entries)]
        self._keywords = [tuple(normalize(k) for k in e.keywords if k) for e in self.entries]
        postings: dict[str, list[int]] = {}
        for i, gs in enumerate(all_grams):
            for g in gs:
                postings.setdefault(g, []).append(i)
        n = max(len(self.entries), 1)
        self._postings = postings
        self._idf = {g: math.log(1 + n / len(ids)) for g, ids in postings.items()}
        # A bigram the base has never seen is content no entry explains.
        self._unseen = math.log(1 + n)
        # Bigrams in more than a fifth of the entries ("怎么", "需要") add to the scores of
        # entries found through rarer ones but find no entries themselves.
        self._common = {g for g, ids in postings.items() if len(ids) > max(5, n // 5)}
        self._own_total = [sum(self._idf[g] for g in own) or 1.0 for own in self._question_grams]

    def scores(self, query: str) -> dict[int, float]:
        """Entry index -> score for the entries sharing a rare bigram with the query."""
        q = grams(query)
        if not q:
            return {}
        text = normalize(query)
        total = sum(self._idf.get(g, self._unseen) for g in q)
        asked: dict[int, float] = {}
        rare = [g for g in q if g in self._postings and g not in self._common]
        for g in rare:
            w = self._idf[g]
            for i in self._postings[g]:
                asked[i] = asked.get(i, 0.0) + w
        for g in q:
            if g in self._common:
                w = self._idf[g]
                for i in self._postings[g]:
                    if i in asked:
                        asked[i] += w
        out = {}
        for i, explained in asked.items():
            own = self._question_grams[i]
            shared = sum(self._idf[g] for g in q if g in own)
            keywords = self._keywords[i]
            hits = sum(1 for k in keywords if k in text)
            kw = min(1.0, hits / min(2, len(keywords))) if keywords else 0.0
            out[i] = 0.45 * explained / total + 0.25 * shared / self._own_total[i] + 0.30 * kw
        return out


def char_ngrams(text: str) -> list[str]:
    """Character 1-3-grams of the Chinese runs (everyday words mapped to the base's), whole Latin and
    digit tokens."""
    out: list[str] = []
    for run in _RUNS.findall(normalize(text)):
        if run.isascii():
            out.append(run)
            continue
        for n in (1, 2, 3):
            out.extend(run[i:i + n] for i in range(len(run) - n + 1))
    return out


class FieldScorer:
    """Each entry's fields read separately: the cosine (tf-idf over character 1-3-grams) of the
    citizen's question with the entry's best-matching phrasing of its question, plus half of it with
    the keywords and with the answer. A question worded like the answer, or naming the entry's
    keywords in other words around them, still meets it."""

    FIELD_WEIGHTS = {"question": 1.0, "keywords": 0.5, "answer": 0.5}

    def __init__(self, entries: list[Entry]):
        docs: list[tuple[str, str, str]] = []  # (field, entry id, text)
        seen: set[str] = set()
        for e in entries:
            docs.append(("question", e.entry_id, e.question))
            if e.entry_id not in seen:  # phrasings share their entry's keywords and answer
                seen.add(e.entry_id)
                docs.append(("keywords", e.entry_id, " ".join(e.keywords)))
                docs.append(("answer", e.entry_id, e.answer))
        counts = [Counter(char_ngrams(t)) for _, _, t in docs]
        n = max(len(docs), 1)
        df = Counter(g for c in counts for g in c)
        self._idf = {g: math.log((1 + n) / (1 + k)) + 1.0 for g, k in df.items()}
        self._docs = [(f, eid) for f, eid, _ in docs]
        postings: dict[str, list[tuple[int, float]]] = {}
        for d, c in enumerate(counts):
            for g, w in self._vector(c).items():
                postings.setdefault(g, []).append((d, w))
        self._postings = postings
        self._total = sum(self.FIELD_WEIGHTS.values())

    def _vector(self, counts: Counter) -> dict[str, float]:
        v = {g: (1.0 + math.log(f)) * self._idf[g] for g, f in counts.items() if g in self._idf}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {g: x / norm for g, x in v.items()}

    def scores(self, query: str) -> dict[str, float]:
        """Entry id -> 0..1 for the entries sharing a character with the query."""
        dots: dict[int, float] = {}
        for g, w in self._vector(Counter(char_ngrams(query))).items():
            for d, x in self._postings.get(g, ()):
                dots[d] = dots.get(d, 0.0) + w * x
        best: dict[tuple[str, str], float] = {}
        for d, c in dots.items():
            key = self._docs[d]
            if c > best.get(key, 0.0):
                best[key] = c
        out: dict[str, float] = {}
        for (f, eid), c in best.items():
            out[eid] = out.get(eid, 0.0) + self.FIELD_WEIGHTS[f] * c / self._total
        return out


class PhrasingModel:
    """Which entry a question is asked about, learnt from the entries' own words and the citizens'
    phrasings: a linear support-vector classifier (scikit-learn's LinearSVC, one entry against the
    rest) over tf-idf character 1-3-grams and jieba words, each entry's question, keywords, the head
    of its answer and every phrasing of it being examples of the entry, and the questions only an
    expert could answer examples of one more class (EXPERT_ONLY): how far a question is like those is
    evidence that the base does not know its answer, however many words it shares with an entry.
    Where the word views count shared words, this one learns which words tell entries apart (换一个名字
    is about 改名 even though it shares no word with the entry's question once a phrasing said so).
    Fits in one to two seconds for the seed base and its phrasings; refitted whenever the index is
    rebuilt."""

    ANSWER_HEAD = 60  # characters of the answer read as one more example of its entry
    C = 1.0

    def __init__(self, entries: list[Entry], expert_only: list[str] = ()):
        texts: list[str] = []
        labels: list[str] = []
        seen: set[str] = set()
        for e in entries:
            texts.append(e.question)
            labels.append(e.entry_id)
            if e.entry_id not in seen:  # phrasings share their entry's keywords and answer
                seen.add(e.entry_id)
                for extra in (" ".join(e.keywords), e.answer[:self.ANSWER_HEAD]):
                    if extra.strip():
                        texts.append(extra)
                        labels.append(e.entry_id)
        if seen:
            texts += list(expert_only)
            labels += [EXPERT_ONLY] * len(expert_only)
        self.classes: list[str] = sorted(seen)
        self._model = None
        if len(self.classes) < 2:
            return
        self._chars = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, preprocessor=normalize)
        self._words = TfidfVectorizer(analyzer=terms, sublinear_tf=True)
        x = hstack([self._chars.fit_transform(texts), self._words.fit_transform(texts)]).tocsr()
        self._model = LinearSVC(C=self.C).fit(x, labels)
        self.classes = [str(c) for c in self._model.classes_]

    def scores(self, query: str) -> dict[str, float]:
        """Entry id (or EXPERT_ONLY) -> the classifier's decision value (above 0: more likely this
        entry than not)."""
        if self._model is None:
            return {}
        x = hstack([self._chars.transform([query]), self._words.transform([query])]).tocsr()
        d = self._model.decision_function(x)[0]
        if len(self.classes) == 2:  # a binary model gives one value, for the second class
            return {self.classes[0]: float(-d), self.classes[1]: float(d)}
        return {c: float(v) for c, v in zip(self.classes, d)}


class KnowledgeIndex:
    """Two views of each entry, averaged: BM25 over its question (counted twice) and keywords in
    jieba words and their bigrams, and character bigrams with keywords (`BigramScorer`).

    Ranked by BM25 normalised by the entry's own best score (what its own question would get), so
    the score is 0..1 and comparable across entries; multiplied by how much of the citizen's question
    the entry explains (idf-weighted, words the base has never seen counting as unexplained), so a
    question about something the base does not know stays low however well one common word matches.
    That view is blended with the entry's fields read separately (`FieldScorer`: its question and
    phrasings, keywords, answer). The reported score is the blend less twice what the best other
    entry scores beyond it, so a question two entries fit alike stays low and goes to an expert.
    The threshold above which a consultation is answered at once is calibrated on the consultations'
    train split (`ANSWER_THRESHOLD`).
    """

    def __init__(self, entries: list[Entry], paraphrases: dict[str, list[str]] | None = None,
                 combiner: "Combiner | None | bool" = True):
        """`paraphrases`: entry id -> other phrasings of its question (default: the labelled
        consultations' train split), each searched as a further question of the entry. `combiner`:
        True for the fitted one (`DEFAULT_COMBINER`, if any), None for the hand-weighted blend."""
        self.combiner = DEFAULT_COMBINER if combiner is True else combiner or None
        self.base = list(entries)
        known = {e.entry_id for e in self.base}
        extra = DEFAULT_PARAPHRASES if paraphrases is None else paraphrases
        by_id = {e.entry_id: e for e in self.base}
        self.entries = self.base + [replace(by_id[eid], question=q) for eid, qs in extra.items() if eid in known
                                    for q in qs]
        docs = []
        for e in self.entries:
            q = terms(e.question)
            docs.append(q + q + [t for k in e.keywords if k for t in terms(k)])
        self._tf = [Counter(d) for d in docs]
        self._len = [len(d) or 1 for d in docs]
        n = max(len(self.entries), 1)
        self._avg = sum(self._len) / n
        df = Counter(t for tf in self._tf for t in tf)
        self._idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self._unseen = math.log(1 + (n + 0.5) / 0.5)
        postings: dict[str, list[int]] = {}
        for i, tf in enumerate(self._tf):
            for t in tf:
                postings.setdefault(t, []).append(i)
        self._postings = postings
        self._self = [self._bm25(i, set(terms(e.question))) or 1.0 for i, e in enumerate(self.entries)]
        self._answer = [set(terms(e.answer)) for e in self.entries]
        self._bigrams = BigramScorer(self.entries)
        self._fields = FieldScorer(self.entries)
        self._model = PhrasingModel(self.entries, extra.get(EXPERT_ONLY, ()))
        self._by_id = {e.entry_id: e for e in self.base}
        # Each entry's own words (its question and keywords), to tell a question from a topic.
        self._own = {e.entry_id: set(terms(e.question)) | {t for k in e.keywords if k for t in terms(k)}
                     for e in self.base}

    def __len__(self) -> int:
        return len(self.base)

    def _bm25(self, i: int, query: set[str]) -> float:
        tf, length = self._tf[i], self._len[i]
        score = 0.0
        for t in query:
            f = tf.get(t, 0)
            if f:
                score += self._idf[t] * f * (BM25_K1 + 1) / (f + BM25_K1 * (1 - BM25_B + BM25_B * length / self._avg))
        return score

    def search(self, query: str, *, topic: str = "", limit: int = 5) -> list[Match]:
        """The best entries for a question, best first. Each score is the combiner's probability that
        the entry is the right answer (`Combiner`, fitted by `python -m services.intake train`), or,
        without a fitted combiner, the hand-weighted blend (`Candidate.blended_score`)."""
        found = self.candidates(query, topic=topic, limit=limit)
        if self.combiner is None:
            scored = [Match(c.entry, c.blended_score) for c in found]
        else:
            scored = [Match(c.entry, self.combiner.probability(c.features)) for c in found]
        # One word that several entries' own words hold (护照, 签证, 驾驶证 alone) names a topic, not a
        # question: it fits each of those entries alike, so none is more than one of them, and it is
        # not answered at once.
        named = self.topic_of(query, topic=topic)
        if named > 1:
            scored = [Match(m.entry, round(m.score / named, 4)) for m in scored]
        # Both views propose up to `limit` entries each; the caller asked for `limit`.
        return sorted(scored, key=lambda m: (-m.score, m.entry.entry_id))[:limit]

    def topic_of(self, query: str, *, topic: str = "") -> int:
        """For a question of one word (its bigrams aside): how many entries' own words (question and
        keywords) hold it; 0 for a question of more words."""
        q = set(terms(query))
        words = {t for t in q if not any(t != u and t in u for u in q)}
        if len(words) != 1:
            return 0
        return sum(1 for eid, own in self._own.items()
                   if q <= own and not (topic and self._by_id[eid].topic != topic))

    def candidates(self, query: str, *, topic: str = "", limit: int = 5) -> list["Candidate"]:
        """The entries that share words or characters with the question, by the hand-weighted blend,
        then the phrasing model's best ones not among them, each with the evidence it was ranked on
        (FEATURES)."""
        q = set(terms(query))
        if not q:
            return []
        total = sum(self._idf.get(t, self._unseen) for t in q)
        unseen = sum(self._unseen for t in q if t not in self._idf) / total
        by_bigrams = self._bigrams.scores(query)
        candidates = {i for t in q for i in self._postings.get(t, ())} | set(by_bigrams)
        views: dict[str, tuple[float, float, float]] = {}  # entry id -> (score, words, bigrams) of its best phrasing
        for i in candidates:
            e = self.entries[i]
            if topic and e.topic != topic:
                continue
            relevance = min(1.0, self._bm25(i, q) / self._self[i])
            explained = sum(self._idf[t] if t in self._tf[i] else ANSWER_WORD_SHARE * self._idf.get(t, self._unseen)
                            for t in q if t in self._tf[i] or t in self._answer[i]) / total
            words = math.sqrt(relevance * explained)
            score = round(WORD_SHARE * words + (1 - WORD_SHARE) * by_bigrams.get(i, 0.0), 4)
            best = views.get(e.entry_id)
            if best is None or score > best[0]:
                views[e.entry_id] = (score, words, by_bigrams.get(i, 0.0))
        by_fields = self._fields.scores(query)
        for eid in by_fields:
            if eid not in views and not (topic and self._by_id[eid].topic != topic):
                views[eid] = (0.0, 0.0, 0.0)
        blended = sorted(((eid, (1 - FIELD_SHARE) * v[0] + FIELD_SHARE * by_fields.get(eid, 0.0))
                          for eid, v in views.items()), key=lambda x: (-x[1], x[0]))
        # Each entry's blend, less LEAD_WEIGHT times what the best other entry explains beyond it:
        # a question two entries answer equally well is not one the base can answer at once.
        lexical: dict[str, tuple[int, float, tuple[float, ...]]] = {}
        for k, (eid, v) in enumerate(blended[:limit]):
            other = blended[1][1] if k == 0 and len(blended) > 1 else (blended[0][1] if k else 0.0)
            lead = v - other
            score = round(max(0.0, (v + LEAD_WEIGHT * lead) / (1 + LEAD_WEIGHT)), 4)
            words, bigrams = views[eid][1], views[eid][2]
            lexical[eid] = (k, score, (score, v, lead, words, bigrams, by_fields.get(eid, 0.0), unseen,
                                       1.0 if k == 0 else 0.0, min(len(q), 20) / 10))
        # The phrasing model's view: its best entries join the candidates, and every candidate carries
        # its decision value, its lead over the model's best other entry, and whether both views put
        # it first (two views agreeing is the strongest sign the base knows the answer).
        values = self._model.scores(query)
        expert_only = round(values.get(EXPERT_ONLY, -1.0), 4)  # -1: a model without that class
        model = {eid: v for eid, v in values.items()
                 if eid in self._by_id and not (topic and self._by_id[eid].topic != topic)}
        ranked = sorted(model, key=lambda eid: (-model[eid], eid))
        out = []
        for eid in dict.fromkeys([*lexical, *ranked[:limit]]):
            k, score, features = lexical.get(eid, (None, 0.0, (0.0,) * LEXICAL_FEATURES))
            value = model.get(eid, -1.0)
            first = bool(ranked) and ranked[0] == eid
            other = (model[ranked[1]] if len(ranked) > 1 else -1.0) if first else (model[ranked[0]] if ranked else -1.0)
            lead, both = round(value - other, 4), first and k == 0
            out.append(Candidate(self._by_id[eid], score, features + (
                round(value, 4), lead, 1.0 if first else 0.0, 1.0 if both else 0.0, expert_only,
                lead if first else 0.0, round(value, 4) if both else 0.0, features[1] if k == 0 else 0.0,
                round(value, 4) if first else 0.0, expert_only if first else 0.0, round(max(0.0, value), 4))))
        return out

    def _original(self, e: Entry) -> Entry:
        return next((b for b in self.base if b.entry_id == e.entry_id), e) if e not in self.base else e


def outcomes(index: KnowledgeIndex, questions: list[dict], threshold: float) -> dict:
    """How the base answers labelled questions (question, entry_id; None = only an expert can answer)
    at a threshold: answered at once and right, answered wrongly, referred; and of the rare questions
    (no entry), how many were referred."""
    scored = []
    for q in questions:
        best = index.search(q["question"], limit=1)
        scored.append((best[0].score if best else 0.0, best[0].entry.entry_id if best else None, q.get("entry_id")))
    return _outcomes_of(scored, threshold)


def _outcomes_of(scored: list[tuple[float, str | None, str | None]], threshold: float) -> dict:
    right = wrong = referred = rare = rare_referred = 0
    for score, got, expected in scored:
        rare += expected is None
        if got is None or score < threshold:
            referred += 1
            rare_referred += expected is None
        elif got == expected:
            right += 1
        else:
            wrong += 1
    n = max(len(scored), 1)
    return {"count": len(scored), "threshold": threshold, "answered_right": right, "answered_wrong": wrong,
            "referred": referred, "answered_right_share": round(right / n, 4),
            "answered_wrong_share": round(wrong / n, 4),
            # of the questions the base has an entry for
            "answerable_right_share": round(right / (len(scored) - rare), 4) if len(scored) > rare else None,
            "rare": rare,
            "rare_referred_share": round(rare_referred / rare, 4) if rare else None}


def other_folds(questions: list[dict], k: int, folds: int) -> dict[str, list[str]]:
    """The other folds' questions as `load_paraphrases` gives them (the rare ones under EXPERT_ONLY)."""
    rest: dict[str, list[str]] = {}
    for i, q in enumerate(questions):
        if i % folds != k:
            rest.setdefault(q.get("entry_id") or EXPERT_ONLY, []).append(q["question"])
    return rest


def calibrate(index_for, questions: list[dict], folds: int = 5) -> tuple[float, dict]:
    """The lowest threshold (most answered at once) that keeps wrong answers at most MAX_WRONG_SHARE
    of the questions and refers at least MIN_REFERRED_SHARE of the rare ones, and the figures at it;
    out of fold: `index_for(paraphrases)` is the index with the other folds' questions as phrasings."""
    scored = []
    for k in range(folds):
        held = [q for i, q in enumerate(questions) if i % folds == k]
        index = index_for(other_folds(questions, k, folds))
        for q in held:
            best = index.search(q["question"], limit=1)
            scored.append((best[0].score if best else 0.0, best[0].entry.entry_id if best else None, q.get("entry_id")))
    grid = [round(0.05 + 0.01 * i, 2) for i in range(95)]
    for t in grid:
        o = _outcomes_of(scored, t)
        if o["answered_wrong_share"] <= MAX_WRONG_SHARE and (o["rare_referred_share"] is None or
                                                               o["rare_referred_share"] >= MIN_REFERRED_SHARE):
            return t, o
    return grid[-1], _outcomes_of(scored, grid[-1])


# -- consultations ------------------------------------------------------------

@dataclass
class Consultation:
    report_id: str
    question: str
    status: str  # QUEUED, CLAIMED, ANSWERED
    topic: str = ""
    answer: str = ""
    entry_id: str = ""
    score: float = 0.0
    answered_at_once: bool = False
    expert: str = ""
    expert_name: str = ""
    suggestions: list[dict] = field(default_factory=list)
    station_id: str = ""
    create_time: datetime | None = None
    claim_time: datetime | None = None
    answer_time: datetime | None = None

    @property
    def name(self) -> str:
        return f"consultations/{self.report_id}"


def consult(question: str, index: KnowledgeIndex, *, report_id: str, station_id: str,
            now: datetime) -> Consultation:
    """At intake: the best knowledge-base answer when it is good enough, else a place in the queue."""
    matches = index.search(question, limit=3)
    best = matches[0] if matches else None
    if best is not None and best.score >= ANSWER_THRESHOLD:
        return Consultation(
            report_id=report_id, question=question, status="ANSWERED", topic=best.entry.topic,
            answer=best.entry.answer, entry_id=best.entry.entry_id, score=best.score, answered_at_once=True,
            station_id=station_id, create_time=now, answer_time=now,
        )
    return Consultation(
        report_id=report_id, question=question, status="QUEUED", topic=best.entry.topic if best else "",
        score=best.score if best else 0.0, station_id=station_id, create_time=now,
        suggestions=[{"entry_id": m.entry.entry_id, "topic": m.entry.topic, "question": m.entry.question,
                      "answer": m.entry.answer, "score": m.score} for m in matches],
    )


EXPERT_ROLES = ("expert",)


def claim(c: Consultation, actor: AuthContext, now: datetime) -> TimelineEntry:
    """An expert officer takes a queued consultation."""
    if c.status == "ANSWERED":
        raise FailedPrecondition(f"{c.name} is already answered", reason="CONSULTATION_ANSWERED")
    if c.status == "CLAIMED":
        if c.expert == actor.subject:
            raise FailedPrecondition(f"{c.name} is already claimed by you", reason="CONSULTATION_CLAIMED")
        raise FailedPrecondition(f"{c.name} is claimed by {c.expert_name or c.expert}",
                                 reason="CONSULTATION_CLAIMED", metadata={"expert": c.expert})
    c.status, c.expert, c.expert_name, c.claim_time = "CLAIMED", actor.subject, actor.name, now
    return TimelineEntry("CONSULTATION_CLAIMED", actor.subject, sorted(actor.roles), now,
                         f"专家 {actor.name or actor.subject} 认领咨询")


def answer(c: Consultation, actor: AuthContext, *, text: str, entry_id: str, topic: str,
           now: datetime) -> TimelineEntry:
    """The expert who claimed it answers; the answer becomes knowledge entry `entry_id`."""
    if c.status == "ANSWERED":
        raise FailedPrecondition(f"{c.name} is already answered", reason="CONSULTATION_ANSWERED")
    if c.status != "CLAIMED":
        raise FailedPrecondition(f"{c.name} must be claimed before it is answered", reason="CONSULTATION_NOT_CLAIMED")
    if c.expert != actor.subject:
        raise PermissionDenied(f"{c.name} is claimed by another expert", reason="CLAIMED_BY_ANOTHER_EXPERT",
                               metadata={"expert": c.expert})
    c.status, c.answer, c.entry_id, c.topic, c.answer_time = "ANSWERED", text, entry_id, topic, now
    return TimelineEntry("CONSULTATION_ANSWERED", actor.subject, sorted(actor.roles), now,
                         f"专家 {actor.name or actor.subject} 答复，答复已加入知识库（{entry_id}）")


def expert_entry(c: Consultation, *, entry_id: str, topic: str, question: str, text: str, keywords: list[str],
                 now: datetime) -> Entry:
    """The knowledge entry an expert's answer becomes (the consultation's question unless another is given)."""
    return Entry(entry_id, topic, question or c.question, text, tuple(keywords), "EXPERT", c.name, now)


def require(c: Consultation | None, name: str) -> Consultation:
    if c is None:
        raise NotFound(name)
    return c
