"""The standing rules a new installation starts with (keywords, volumes, anomaly, strength gap,
signals, obligations, enforcement), editable through the API afterwards."""
from __future__ import annotations

from services.runtime.app import Runtime
from services.runtime.uow import UnitOfWork

from . import mapping, store
from .domain import SYSTEM, KeywordTerm, Rule
from .handlers import rules


def minutes(n: float) -> float:
    return float(int(n * 60))


# Major-incident terms (重大警情关键词) and the grade each implies; exclusions are
# phrases in which the term means something else.
KEYWORD_TERMS = [
    ("杀人", "RED", ["杀人游戏", "剧本杀人"]),
    ("绑架", "RED", []),
    ("爆炸", "RED", ["爆炸头", "信息爆炸", "爆炸性"]),
    ("劫持", "RED", []),
    ("纵火", "RED", []),
    ("持枪", "RED", []),
    ("抢劫", "ORANGE", []),
    ("持刀", "ORANGE", []),
    ("砍人", "ORANGE", []),
    ("跳楼", "ORANGE", ["跳楼价", "跳楼甩卖", "跳楼大甩卖"]),
    ("轻生", "YELLOW", []),
    ("强奸", "ORANGE", []),
]

STANDING_RULES = {
    "keyword-major": Rule(
        display_name="重大警情关键词", kind="KEYWORD", enabled=True, level="YELLOW",
        description="报警内容出现重大警情关键词即预警（否定、假设、新闻转述除外）",
        terms=[KeywordTerm(term=t, grade=g, exclusions=ex) for t, g, ex in KEYWORD_TERMS],
        suggested_action="立即核实警情，按预案就近调派警力处置", escalate_after=minutes(2)),
    "volume-station-1h": Rule(
        display_name="派出所辖区1小时警情量", kind="VOLUME", enabled=True, level="YELLOW",
        description="同一派出所辖区1小时内警情超过20起", window=minutes(60), threshold=20,
        area_kind="STATION", suggested_action="关注辖区警情态势，必要时增派巡逻力量",
        escalate_after=minutes(15)),
    "volume-fight-grid-30m": Rule(
        display_name="网格打架斗殴聚集", kind="VOLUME", enabled=True, level="ORANGE",
        description="同一网格30分钟内打架斗殴警情超过3起", window=minutes(30), threshold=3,
        area_kind="GRID", incident_types=["FIGHT"],
        suggested_action="防范群体性事件，调派巡特警到场", escalate_after=minutes(5)),
    "anomaly-station-hour": Rule(
        display_name="辖区同时段警情异常", kind="ANOMALY", enabled=True, level="YELLOW",
        description="本小时警情远高于近4周同一时段", threshold=3, area_kind="STATION",
        parameters={"history_weeks": "4", "min_count": "8"}, escalate_after=minutes(15)),
    "strength-gap": Rule(
        display_name="警力缺口（热力图对冰点图）", kind="STRENGTH_GAP", enabled=True, level="ORANGE",
        description="1小时内单元及周边警情与可用警力之比达到3", window=minutes(60), threshold=3,
        area_kind="H3", h3_resolution=8, parameters={"min_incidents": "4", "ring": "1"},
        escalate_after=minutes(10)),
    "signal-cash-withdrawal": Rule(
        display_name="异常取现（反诈）", kind="EXTERNAL_SIGNAL", enabled=True, level="ORANGE",
        description="银行或反诈中心推送的异常取现、疑似受骗预警", threshold=0.6,
        signal_types=["ABNORMAL_CASH_WITHDRAWAL", "FRAUD_VICTIM_WARNING"],
        suggested_action="属地派出所立即联系当事人核实，必要时上门劝阻并通知银行止付", escalate_after=minutes(5)),
    "obligation-due": Rule(
        display_name="到期未办事项", kind="OBLIGATION", enabled=True, level="BLUE",
        description="检查、回告、工单办理期限前1小时提醒，逾期升级", threshold=3600,
        escalate_after=minutes(30)),
    "enforcement-warning": Rule(
        display_name="执法办案预警", kind="ENFORCEMENT", enabled=True, level="YELLOW",
        description="执法办案积分系统发出的执法问题预警", suggested_action="法制员督促整改",
        escalate_after=minutes(60)),
}


def seed(rt: Runtime) -> None:
    """Adds the standing rules not there yet (idempotent), as the alerts service itself.

    `python -m services.alerts seed` runs this on a runtime the service was not assembled on, so
    the unit of work is given the repositories here.
    """
    with rt.engine.begin() as conn:
        uow = UnitOfWork(conn=conn, outbox=rt.outbox, clock=rt.clock, actor=SYSTEM, repos=store.Repositories(conn),
                         event_mapping=mapping.event_to_message)
        rules.add_standing_rules(uow, STANDING_RULES)
        uow.flush()
