"""The decision (分类定级): the statistical model's probabilities and the evidence words, weighed
together; the priority from the type and the rule tables (injury, weapon, vulnerable person, fresh
fraud, time of day, channel, repeated invalid calls); the safety net that keeps a possibly
life-threatening matter on the police path at high priority; and a reason in Chinese.

score(type) = log((1 - λ)·p_model(type) + λ/N) + β·min(evidence(type), CAP), softmax over the
taxonomy. β and λ are tuned by cross-validation on the training split; below the confidence
threshold the report waits for the call-taker's confirmation (needsConfirmation)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from services.runtime import language

from .. import rules
from .evidence import DANGER, QUESTION_DEFAULT_TOPIC, QUESTION_TOPIC, Evidence, EvidenceFinder
from .guard import LifeSafetyGuard
from .lexicon import FOLLOW_UP_REPORTED, FOLLOW_UP_WAITING, LIFE_THREATENING, LITERAL_BEFORE, OUTGROWN, RESTRAINT
from .model import LinearModel
from .text import features, normalize

EVIDENCE_CAP = 8.0
# The combined probability below which a type that fits a cue of danger to life is a long shot
# and the cue's usual type is chosen instead.
FITTING_LONG_SHOT = 0.05
# Types a text never decides.
NOT_FROM_TEXT: set[str] = set()
CATEGORY_LABELS = {"POLICE": "警情", "NON_POLICE": "非警务求助", "CONSULTATION": "咨询", "INVALID": "无效报警"}
CONTEXT_LABELS = language.CONTEXT_LABELS


def _rule_priorities() -> dict[str, int]:
    out: dict[str, int] = {}
    for rule in rules.KEYWORD_RULES:
        out.setdefault(rule.incident_type, rule.priority)
    return out


RULE_PRIORITIES = _rule_priorities()


def _default_priorities() -> dict[str, int]:
    out: dict[str, int] = {}
    for rule in rules.KEYWORD_RULES:
        out.setdefault(rule.incident_type, rule.priority)
    for code, t in rules.INCIDENT_TYPES.items():
        out.setdefault(code, 3 if t.category == rules.POLICE else 4)
    for code in LIFE_THREATENING:
        out[code] = 1
    return out


DEFAULT_PRIORITIES = _default_priorities()


@dataclass(frozen=True)
class Params:
    """What training tunes (and the defaults of a classifier without a model)."""

    beta: float = 1.0
    smoothing: float = 0.2
    # How much the words used without asserting them count against their type (× β).
    gamma: float = 1.0
    threshold: float = 0.5
    type_priority: dict = field(default_factory=dict)
    # The urgency model's probability of a 1级 matter at which a police report is kept at 2级 or
    # raised to 1级 (tuned so that cross-validation misses no 1级 matter it can see).
    urgent_keep: float = 0.3
    urgent_raise: float = 0.6

    def to_dict(self) -> dict:
        return {"beta": self.beta, "smoothing": self.smoothing, "gamma": self.gamma, "threshold": self.threshold,
                "type_priority": dict(self.type_priority), "urgent_keep": self.urgent_keep,
                "urgent_raise": self.urgent_raise}

    @classmethod
    def from_dict(cls, d: dict) -> "Params":
        return cls(float(d.get("beta", 1.0)), float(d.get("smoothing", 0.2)), float(d.get("gamma", 1.0)),
                   float(d.get("threshold", 0.5)),
                   {k: int(v) for k, v in (d.get("type_priority") or {}).items()},
                   float(d.get("urgent_keep", 0.3)), float(d.get("urgent_raise", 0.6)))


@dataclass
class Decision:
    category: str
    incident_type: str
    priority: int
    confidence: float
    needs_confirmation: bool
    reason: str
    rule_ids: list[str]
    version: str
    alternatives: list[tuple[str, float]] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"category": self.category, "type": self.incident_type, "priority": self.priority,
                "confidence": round(self.confidence, 4), "needsConfirmation": self.needs_confirmation,
                "reason": self.reason, "ruleIds": self.rule_ids, "classifierVersion": self.version}


def local_hour(at: datetime) -> int:
    return (at.astimezone(timezone.utc) + timedelta(hours=rules.LOCAL_UTC_OFFSET_HOURS)).hour


def _in_window(hour: int, start: int, end: int) -> bool:
    return start <= hour < end if start < end else hour >= start or hour < end


def said(text: str, keywords: tuple[str, ...]) -> str:
    """The first keyword ("A+B": both, in one clause) the caller asserts (not negated, supposed,
    reported or a figure of speech), or ""."""
    for kw in keywords:
        parts = kw.split("+")
        if all(_asserted(text, p) for p in parts):
            return "”+“".join(parts)
    return ""


def _asserted(text: str, word: str) -> bool:
    pos = text.find(word)
    while pos >= 0:
        if language.context_of(text, pos, pos + len(word), language.CALLER_CUES) in ("", language.HEARSAY_):
            return True
        pos = text.find(word, pos + 1)
    return False


def _label(itype: str) -> str:
    t = rules.INCIDENT_TYPES.get(itype)
    return t.label if t else itype


class Classifier:
    def __init__(self, model: LinearModel | None, params: Params | None = None, version: str = "evidence-only",
                 urgency: LinearModel | None = None):
        self.model = model
        self.urgency = urgency
        self.params = params or Params()
        self.version = version
        self.finder = EvidenceFinder()
        self.guard = LifeSafetyGuard()
        self.types = [t for t in rules.INCIDENT_TYPES if t not in NOT_FROM_TEXT]

    # -- the pieces, also used by training ---------------------------------------------

    def evidence(self, text: str) -> Evidence:
        return self.finder.find(normalize(text))

    def tokens(self, text: str, ev: Evidence | None = None) -> list[str]:
        return features(text, (ev or self.evidence(text)).tokens())

    def combine(self, probs: dict[str, float], ev: Evidence, params: Params | None = None) -> list[tuple[str, float]]:
        """Every type's combined probability, the likeliest first."""
        p = params or self.params
        n = len(self.types)
        # A type the model never saw but the text has evidence of is as likely as half an average type
        # it saw: its evidence decides.
        unseen = 0.5 / max(len(probs), 1) if probs else 0.5 / n
        # Words used without asserting them count against their type, and half against its category:
        # the caller talks about a crime without reporting one.
        against_category: dict[str, float] = {}
        for t, w in ev.against.items():
            c = rules.INCIDENT_TYPES[t].category
            against_category[c] = against_category.get(c, 0.0) + w
        scores = []
        for t in self.types:
            if probs:
                pm = probs.get(t, unseen if ev.scores.get(t) else 0.0)
            else:  # evidence alone: with no evidence at all, the fallback, for the call-taker to confirm
                pm = 3 * unseen if t == rules.FALLBACK_TYPE else unseen
            against = ev.against.get(t, 0.0) + 0.5 * against_category.get(rules.INCIDENT_TYPES[t].category, 0.0)
            s = math.log((1 - p.smoothing) * pm + p.smoothing / n) + p.beta * (
                min(ev.scores.get(t, 0.0), EVIDENCE_CAP) - p.gamma * min(against, EVIDENCE_CAP))
            scores.append((t, s))
        top = max(s for _, s in scores)
        exp = [(t, math.exp(s - top)) for t, s in scores]
        total = sum(v for _, v in exp)
        return sorted(((t, v / total) for t, v in exp), key=lambda x: -x[1])

    def probabilities(self, text: str, ev: Evidence) -> dict[str, float]:
        return self.model.probabilities(self.tokens(text, ev)) if self.model is not None else {}

    # -- the decision ---------------------------------------------------------------------

    def default_priority(self, itype: str) -> int:
        """The rule table's priority of a type, else its usual one in the training examples; a
        life-threatening type is 1级."""
        priority = RULE_PRIORITIES.get(itype) or self.params.type_priority.get(itype, DEFAULT_PRIORITIES.get(itype, 4))
        return min(priority, RULE_PRIORITIES.get(itype, 1)) if itype in LIFE_THREATENING else priority

    def classify(self, description: str, channel: str = "", *, at: datetime | None = None,
                 recent_invalid_calls: int = 0) -> Decision:
        text = normalize(description)
        ev = self.finder.find(text)
        fired: list[str] = []
        reasons: list[str] = []
        channel_rule = rules.CHANNEL_RULES.get(channel)
        channel_priority = 0
        if not text and channel_rule and channel_rule.unmatched_type:
            itype, confidence = channel_rule.unmatched_type, 1.0
            channel_priority = channel_rule.unmatched_priority
            ranked = [(itype, 1.0)]
            fired.append(channel_rule.rule_id)
            reasons.append(f"无文字描述，按渠道规则（{channel_rule.rule_id}）处理：{_label(itype)}")
            urgent = 0.0
        else:
            tokens = self.tokens(description, ev)
            probs = self.model.probabilities(tokens) if self.model is not None else {}
            urgent = self.urgency.probabilities(tokens).get("1", 0.0) if self.urgency is not None else 0.0
            ranked = self.combine(probs, ev)
            itype, confidence = ranked[0]
            named = self._only_named(ev)
            if itype in named:
                # The caller names this matter only as a figure of speech ("我心里着火了"): not it.
                itype, confidence = next(((t, p) for t, p in ranked if t not in named), ranked[0])
            fired.append(f"classifier:{self.version}")
            reasons.append(self._explain(itype, confidence, probs, ev))
            if channel_rule and channel_rule.unmatched_type and not ev.scores and confidence < self.params.threshold:
                itype = channel_rule.unmatched_type
                channel_priority = channel_rule.unmatched_priority
                fired.append(channel_rule.rule_id)
                reasons.append(f"文字不足以判断，按渠道规则（{channel_rule.rule_id}）处理：{_label(itype)}")
        category = rules.INCIDENT_TYPES[itype].category
        needs_confirmation = confidence < self.params.threshold or itype == "OTHER"
        # Nothing said (an empty text, "……", "？"): whatever type the model leans to, nothing in the
        # text confirms it.
        unsaid = not any(ch.isalnum() for ch in text)
        needs_confirmation = needs_confirmation or unsaid

        rep = rules.REPEAT_INVALID
        if recent_invalid_calls >= rep.threshold:
            unstated = itype in ("SILENT_ALARM", rules.FALLBACK_TYPE) or confidence < self.params.threshold
            if category == rules.INVALID or (unstated and not ev.life_threat()):
                itype, category = "HARASSING_CALL", rules.INVALID
                reasons.append(f"该号码{rep.window_minutes}分钟内已有{recent_invalid_calls}次无效报警，"
                               f"认定为重复恶意骚扰（规则 {rep.rule_id}）")
            else:
                reasons.append(f"注意：该号码{rep.window_minutes}分钟内已有{recent_invalid_calls}次无效报警"
                               f"（规则 {rep.rule_id}），本次仍按所报警情处理")
            fired.append(rep.rule_id)

        priority = channel_priority or self.default_priority(itype)
        unasserted = ev.only_unasserted_police and not ev.asserted(itype)
        if unasserted and category == rules.POLICE:
            urgent = 0.0
            needs_confirmation = True
            if priority < 3:
                priority = 3
                reasons.append("来电所说的警情词均未确认发生（否定、假设、转述或比喻），不按紧急警情定级，请接警员确认")
        threat = ev.life_threat()
        joking = category == rules.INVALID and bool(ev.prank)
        if threat is not None and not joking and (category != rules.POLICE or priority > 2):
            if category != rules.POLICE:
                reasons.append(f"安全兜底：文中明确说到“{threat.word}”（{_label(threat.incident_type)}），"
                               f"可能危及生命，保留在警情处置，请接警员确认")
                itype, category = threat.incident_type, rules.POLICE
                priority = DEFAULT_PRIORITIES[itype]
            else:
                reasons.append(f"安全兜底：文中明确说到“{threat.word}”（{_label(threat.incident_type)}），"
                               f"可能危及生命，按{_label(threat.incident_type)}处置，等级不低于2级")
                if itype not in LIFE_THREATENING:
                    itype = threat.incident_type
            priority = min(priority, 2)
            needs_confirmation = True
            fired.append("safety-net")

        held = next((w for w in RESTRAINT if said(text, (w,))), "")
        if held and category != rules.POLICE:
            police = next((t for t, _ in ranked if rules.INCIDENT_TYPES[t].category == rules.POLICE), "DISPUTE")
            reasons.append(f"来电人被限制离开（“{held}”），转警情处置（{_label(police)}），请接警员确认")
            itype, category, needs_confirmation = police, rules.POLICE, True
            priority = self.default_priority(police)
            fired.append("held-against-will")
        # (The life-safety guard runs after this and may still override it.)
        unsure = category != rules.POLICE or (confidence < self.params.threshold
                                              and "safety-net" not in fired and "held-against-will" not in fired)
        chased = said(text, FOLLOW_UP_REPORTED) if unsure else ""
        waiting = said(text, FOLLOW_UP_WAITING) if chased else ""
        if waiting:
            # Not a new matter and not a question: the caller's earlier report, still waited for. On the
            # police path it is merged into that report when the same caller rang within the hour.
            reasons.append(f"来电称已报警、仍在等候出警（“{chased}”“{waiting}”，催警），按警情跟进其原报警，"
                           f"请接警员确认")
            itype, category, needs_confirmation = "OTHER", rules.POLICE, True
            priority = self.default_priority("OTHER")
            fired.append("follow-up-call")
        if category == rules.POLICE:
            priority = self._police_priority(text, itype, priority, ev, at, fired, reasons)
            if urgent >= self.params.urgent_raise and priority > 1:
                priority = 1
                fired.append("urgency-model")
                reasons.append(f"紧急程度模型认为可能危及人身安全（概率 {urgent:.2f}），定为1级")
            elif urgent >= self.params.urgent_keep and priority > 2:
                priority = 2
                needs_confirmation = True
                fired.append("urgency-model")
                reasons.append(f"紧急程度模型认为不能排除危及人身安全（概率 {urgent:.2f}），定为2级，请接警员确认")
        elif urgent >= self.params.urgent_raise and not ev.only_unasserted_police:
            police = next((t for t, _ in ranked if rules.INCIDENT_TYPES[t].category == rules.POLICE), "OTHER")
            reasons.append(f"安全兜底：紧急程度模型认为可能危及人身安全（概率 {urgent:.2f}），"
                           f"保留在警情处置（{_label(police)}），请接警员确认")
            itype, category, needs_confirmation = police, rules.POLICE, True
            priority = min(DEFAULT_PRIORITIES.get(police, 2), 2)
            fired.append("urgency-model")
        if channel_rule is not None and channel_rule.rule_id not in fired:
            if category == rules.POLICE and channel_rule.urgent_priority and priority > channel_rule.urgent_priority:
                priority = channel_rule.urgent_priority
            if category == rules.POLICE and channel_rule.calm_priority and priority < channel_rule.calm_priority:
                priority = channel_rule.calm_priority
            fired.append(channel_rule.rule_id)
            reasons.append(f"{channel_rule.note}（规则 {channel_rule.rule_id}）")
        elif channel_rule is not None:
            reasons.append(channel_rule.note)
        cue = self.guard.find(text, prank=bool(ev.prank))
        # A police type the decision has stays, unless the cue outgrows it (a quarrel in which
        # someone is stabbed is an assault).
        fits = cue is not None and category == rules.POLICE and (itype in cue.types or itype not in OUTGROWN)
        if cue is not None and (category != rules.POLICE or priority > cue.priority or not fits):
            if category != rules.POLICE or not fits:
                fitting = self._fitting(cue.types, ranked, ev)
                was = f"{CATEGORY_LABELS[category]}“{_label(itype)}”"
                itype, category = fitting, rules.POLICE
                reasons.append(f"生命安全兜底：来电明确说到“{cue.words}”（{cue.group}），可能危及生命，"
                               f"不按{was}处理，转警情“{_label(itype)}”，定为{cue.priority}级，请接警员确认")
                needs_confirmation = True
            else:
                reasons.append(f"生命安全兜底：来电明确说到“{cue.words}”（{cue.group}），可能危及生命，"
                               f"等级提至{cue.priority}级")
            priority = min(priority, cue.priority)
            fired.append("life-safety")
        if confidence < self.params.threshold and "safety-net" not in fired and "life-safety" not in fired:
            second = ", ".join(f"{_label(t)} {p:.2f}" for t, p in ranked[1:3])
            reasons.append(f"置信度{confidence:.2f}低于{self.params.threshold:.2f}，待接警员确认"
                           + (f"（其次：{second}）" if second else ""))
        elif unsaid and "safety-net" not in fired and "life-safety" not in fired:
            reasons.append("来电无文字内容，类型待接警员确认")
        reasons.append(f"定为{CATEGORY_LABELS[category]}“{_label(itype)}”，{priority}级")
        return Decision(category, itype, priority, confidence, needs_confirmation, "；".join(reasons), fired,
                        self.version, ranked[:3])

    @staticmethod
    def _fitting(types: tuple[str, ...], ranked: list[tuple[str, float]], ev: Evidence) -> str:
        """Of the types that fit a cue of danger to life: the likeliest one the caller's words are
        evidence of, else the likeliest one when it is no long shot and clearly likelier than the
        usual one (the first), else the usual one."""
        backed = [(t, p) for t, p in ranked if t in types and ev.scores.get(t)]
        if backed:
            return backed[0][0]
        prob = dict(ranked)
        likeliest = max(types, key=lambda t: prob.get(t, 0.0))
        usual = types[0]
        return likeliest if prob.get(likeliest, 0.0) >= max(FITTING_LONG_SHOT, 2 * prob.get(usual, 0.0)) else usual

    @staticmethod
    def _only_named(ev: Evidence) -> set[str]:
        """The police types whose words the caller uses only as a figure of speech, and, when the
        caller asks nothing, their consultation topic (心里着火了 is neither a fire nor a question
        about fire safety)."""
        out: set[str] = set()
        for h in ev.dismissed():
            t = h.incident_type
            if t == DANGER or t in ev.scores or not h.weight or h.context != language.FIGURATIVE \
                    or rules.INCIDENT_TYPES[t].category != rules.POLICE:
                continue
            if any(ev.text[max(0, h.start - len(w) - 2):h.start].find(w) >= 0 for w in LITERAL_BEFORE):
                return set()
            out.add(t)
            if not ev.question:
                out.add(QUESTION_TOPIC.get(t, QUESTION_DEFAULT_TOPIC))
        return out

    def _police_priority(self, text: str, itype: str, priority: int, ev: Evidence, at: datetime | None,
                         fired: list[str], reasons: list[str]) -> int:
        for pr in rules.PRIORITY_RULES:
            if pr.incident_types and itype not in pr.incident_types:
                continue
            keyword = said(text, pr.keywords)
            if keyword and not said(text, pr.unless) and pr.priority < priority:
                priority = pr.priority
                fired.append(pr.rule_id)
                reasons.append(f"{pr.reason}（“{keyword}”，规则 {pr.rule_id}）")
        danger = [h for h in ev.danger() if h.weight >= 3]
        if danger and priority > 1:
            priority = 1
            fired.append("danger-words")
            reasons.append(f"危及人身安全（“{danger[0].word}”）")
        hour = local_hour(at) if at is not None else None
        for tr in rules.TIME_RULES:
            if itype not in tr.incident_types or tr.priority >= priority:
                continue
            by_clock = hour is not None and _in_window(hour, tr.start_hour, tr.end_hour)
            keyword = said(text, tr.keywords)
            if by_clock or keyword:
                priority = tr.priority
                fired.append(tr.rule_id)
                when = f"报警时间{hour}时" if by_clock else f"“{keyword}”"
                reasons.append(f"{tr.reason}（{when}，规则 {tr.rule_id}）")
        return priority

    def _explain(self, itype: str, confidence: float, probs: dict[str, float], ev: Evidence) -> str:
        words = sorted(ev.asserted(itype), key=lambda h: -h.counts)
        parts = []
        if words:
            cited = "、".join(f"“{h.word}”" + ("（听说）" if h.context else "") for h in words[:4])
            parts.append(f"证据词{cited}")
        if probs:
            parts.append(f"模型 {self.version} 判为此类的概率 {probs.get(itype, 0.0):.2f}")
        dismissed = ev.dismissed()
        if dismissed:
            parts.append("不计" + "、".join(f"“{h.word}”（{CONTEXT_LABELS.get(h.context, h.context)}）"
                                          for h in dismissed[:3] if h.incident_type != DANGER)
                         if any(h.incident_type != DANGER for h in dismissed[:3]) else "")
        if ev.question:
            parts.append(f"来电在询问（“{ev.question}”）")
        if ev.prank:
            parts.append(f"玩笑用语（“{ev.prank}”）")
        head = f"判为“{_label(itype)}”，综合置信度 {confidence:.2f}"
        return head + ("：" + "，".join(p for p in parts if p) if any(parts) else "")
