"""Classification and grading (分类定级): category, incident type and priority 1-4 of a report from the
rule tables in `rules.py`, explained in Chinese with the rules that fired. Pure."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from .. import rules


@dataclass
class Classification:
    category: str
    incident_type: str
    priority: int
    reason: str
    rule_ids: list[str] = field(default_factory=list)
    corrected: bool = False


def _keyword_hit(text: str, keywords: tuple[str, ...]) -> str:
    """The first keyword that occurs ("A+B": both parts), or ""."""
    for kw in keywords:
        parts = kw.split("+")
        if all(p in text for p in parts):
            return "”+“".join(parts)
    return ""


def local_hour(at: datetime) -> int:
    return (at.astimezone(timezone.utc) + timedelta(hours=rules.LOCAL_UTC_OFFSET_HOURS)).hour


def _in_window(hour: int, start: int, end: int) -> bool:
    return start <= hour < end if start < end else hour >= start or hour < end


def classify(description: str, channel: str, *, at: datetime | None = None,
             recent_invalid_calls: int = 0) -> Classification:
    """Category, incident type and priority 1-4 from the rule tables, explained in Chinese."""
    text = description
    fired: list[str] = []
    reasons: list[str] = []
    matched = None
    for rule in rules.KEYWORD_RULES:
        keyword = _keyword_hit(text, rule.keywords)
        if keyword and not _keyword_hit(text, rule.unless):
            matched = rule
            break
    channel_rule = rules.CHANNEL_RULES.get(channel)
    if matched is not None:
        itype, priority = matched.incident_type, matched.priority
        fired.append(matched.rule_id)
        reasons.append(f"命中关键词“{keyword}”（规则 {matched.rule_id}）：{rules.INCIDENT_TYPES[itype].label}")
    elif channel_rule and channel_rule.unmatched_type:
        itype, priority = channel_rule.unmatched_type, channel_rule.unmatched_priority
        fired.append(channel_rule.rule_id)
        reasons.append(f"未命中关键词，按渠道规则（{channel_rule.rule_id}）处理：{rules.INCIDENT_TYPES[itype].label}")
    else:
        itype, priority = rules.FALLBACK_TYPE, rules.FALLBACK_PRIORITY
        reasons.append("未命中分类规则，按一般警情处理，待接警员确认")
    category = rules.INCIDENT_TYPES[itype].category

    rep = rules.REPEAT_INVALID
    if recent_invalid_calls >= rep.threshold:
        if matched is None or category == rules.INVALID:
            itype, priority, category = "HARASSING_CALL", 4, rules.INVALID
            reasons.append(f"该号码{rep.window_minutes}分钟内已有{recent_invalid_calls}次无效报警，"
                           f"认定为重复恶意骚扰（规则 {rep.rule_id}）")
        else:
            reasons.append(f"注意：该号码{rep.window_minutes}分钟内已有{recent_invalid_calls}次无效报警"
                           f"（规则 {rep.rule_id}），本次仍按所报警情处理")
        fired.append(rep.rule_id)

    if category == rules.POLICE:
        for pr in rules.PRIORITY_RULES:
            if pr.incident_types and itype not in pr.incident_types:
                continue
            keyword = _keyword_hit(text, pr.keywords)
            if keyword and not _keyword_hit(text, pr.unless) and pr.priority < priority:
                priority = pr.priority
                fired.append(pr.rule_id)
                reasons.append(f"{pr.reason}（“{keyword}”，规则 {pr.rule_id}）")
        hour = local_hour(at) if at is not None else None
        for tr in rules.TIME_RULES:
            if itype not in tr.incident_types or tr.priority >= priority:
                continue
            by_clock = hour is not None and _in_window(hour, tr.start_hour, tr.end_hour)
            keyword = _keyword_hit(text, tr.keywords)
            if by_clock or keyword:
                priority = tr.priority
                fired.append(tr.rule_id)
                when = f"报警时间{hour}时" if by_clock else f"“{keyword}”"
                reasons.append(f"{tr.reason}（{when}，规则 {tr.rule_id}）")
    if channel_rule is not None and channel_rule.rule_id not in fired:
        if category == rules.POLICE and channel_rule.urgent_priority and priority > channel_rule.urgent_priority:
            priority = channel_rule.urgent_priority
        if category == rules.POLICE and channel_rule.calm_priority and priority < channel_rule.calm_priority:
            priority = channel_rule.calm_priority
        fired.append(channel_rule.rule_id)
        reasons.append(f"{channel_rule.note}（规则 {channel_rule.rule_id}）")
    elif channel_rule is not None:
        reasons.append(channel_rule.note)
    reasons.append(f"定为{CATEGORY_LABELS[category]}，{priority}级")
    return Classification(category, itype, priority, "；".join(reasons), fired)


CATEGORY_LABELS = {"POLICE": "警情", "NON_POLICE": "非警务求助", "CONSULTATION": "咨询", "INVALID": "无效报警"}
