"""Referral rules as data: matter keywords, joint-rescue linkage, time limits,
and the unreasonable-request (不合理不合规诉求) rules with their standard
replies (规范答复口径). Domain text is Chinese; changing a rule is changing
this table, not code.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

# -- matters -------------------------------------------------------------------

# Keywords that name a matter when a report's incident type is not itself a
# matter code (e.g. intake's PUBLIC_UTILITIES covers 停水, 停电, 路灯, 井盖).
# First match wins, so the more specific phrases come first.
MATTER_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("GAS_LEAK", ("燃气泄漏", "煤气泄漏", "燃气管", "天然气管", "燃气味", "煤气味")),
    ("PIPE_BURST", ("水管爆裂", "爆管", "自来水管破裂")),
    ("BLOCKED_FIRE_EXIT", ("消防通道",)),
    ("ILLEGAL_PARKING", ("违停", "违章停车", "乱停车", "乱停乱放", "堵住车库", "挡住出口", "堵门停车")),
    ("WATER_OUTAGE", ("停水",)),
    ("POWER_OUTAGE", ("停电",)),
    ("STREET_LIGHT", ("路灯",)),
    ("MANHOLE_COVER", ("井盖",)),
    ("SEWER_BLOCKAGE", ("下水道", "污水外溢")),
    ("WAGE_ARREARS", ("拖欠工资", "欠薪", "不发工资")),
    ("CONSTRUCTION_NOISE", ("施工噪音", "夜间施工", "半夜施工")),
    ("STREET_VENDOR", ("占道经营", "摆摊")),
    ("GARBAGE", ("垃圾没人清", "垃圾堆", "垃圾清运")),
    ("TREE_HAZARD", ("树倒", "树木倒伏", "大树倾斜")),
    ("ROAD_DAMAGE", ("路面塌陷", "路面破损", "坑洼")),
    ("WATERLOGGING", ("渍水", "积水")),
    ("TRAFFIC_SIGNAL", ("红绿灯", "信号灯")),
    ("ELEVATOR_FAULT", ("电梯故障", "电梯坏了")),
    ("FOOD_SAFETY", ("变质", "食物中毒", "过期食品")),
    ("PROPERTY_MANAGEMENT", ("物业",)),
    ("STRAY_ANIMALS", ("流浪狗", "流浪猫")),
    ("NOISE", ("噪音", "扰民", "太吵")),
)

# The 12345 catalogue category (分类) of a matter; "综合" when not listed.
CATEGORY_BY_MATTER: dict[str, str] = {
    **dict.fromkeys(("ILLEGAL_CONSTRUCTION", "STREET_VENDOR", "CONSTRUCTION_NOISE", "GARBAGE", "SANITATION",
                     "ILLEGAL_PARKING", "STREET_LIGHT", "TREE_HAZARD", "MANHOLE_COVER", "GREEN_SPACE"), "城市管理"),
    **dict.fromkeys(("TRAFFIC_SIGNAL", "TRAFFIC_CONGESTION", "TAXI_COMPLAINT", "BUS_SERVICE", "ROAD_DAMAGE"),
                    "交通出行"),
    **dict.fromkeys(("GAS_LEAK", "GAS_OUTAGE", "POWER_OUTAGE", "POWER_LINE_HAZARD", "WATER_OUTAGE", "PIPE_BURST",
                     "WATER_QUALITY", "SEWER_BLOCKAGE"), "公用事业"),
    **dict.fromkeys(("WAGE_ARREARS", "SOCIAL_INSURANCE", "LABOR_DISPUTE"), "劳动社保"),
    **dict.fromkeys(("FOOD_SAFETY", "PRICE_GOUGING", "CONSUMER_DISPUTE", "ELEVATOR_FAULT"), "市场监管"),
    **dict.fromkeys(("NOISE", "NEIGHBOR_DISPUTE", "PROPERTY_MANAGEMENT", "ELDERLY_ASSISTANCE"), "社区事务"),
}
EMERGENCY_CATEGORY = "紧急抢险"

# -- joint rescue (联动抢险) -------------------------------------------------------


@dataclass(frozen=True)
class LinkageRule:
    """A police incident type that also needs city departments at once.

    The department handling `lead_matter` in the area leads; those handling
    the cooperating matters join (协办). Each part carries its reason.
    """

    incident_type: str
    lead_matter: str
    lead_reason: str
    cooperating: tuple[tuple[str, str], ...]  # (matter, reason)
    urgency: int = 1


LINKAGE: dict[str, LinkageRule] = {
    "GAS_LEAK": LinkageRule(
        incident_type="GAS_LEAK",
        lead_matter="GAS_LEAK",
        lead_reason="燃气泄漏一级抢险：属地燃气企业牵头关阀抢修",
        cooperating=(
            ("ILLEGAL_CONSTRUCTION", "燃气泄漏一级抢险：城管执法部门查处挖断管线的违规施工、维护现场秩序"),
            ("CONSTRUCTION_SAFETY", "燃气泄漏一级抢险：住建部门督促施工单位停工整改、排查周边管线"),
        ),
    ),
}

# -- time limits (办理时限) ------------------------------------------------------

# By urgency: level 1 (一级抢险) and 2 in minutes or hours of the clock; 3 and 4
# in working days (工作日: weekends and public holidays skipped, make-up working
# days counted; see services/runtime/workdays.py).
MINUTES_LIMIT: dict[int, timedelta] = {1: timedelta(minutes=30), 2: timedelta(hours=2)}
WORKING_DAYS_LIMIT: dict[int, int] = {3: 3, 4: 5}
URGENCY_LABEL = {1: "一级（紧急抢险）", 2: "二级（紧急）", 3: "三级（较急）", 4: "四级（一般）"}

# Reopens (重办) after which the order is escalated to the lead department's
# supervisor (督办).
ESCALATE_AFTER_REOPENS = 2

# Repeated calls (重复来电): this many requests from one number about one
# matter within the window flag the order.
REPEAT_WINDOW = timedelta(hours=24)
REPEAT_THRESHOLD = 3
# Requests counted for the prior-requests figure.
PRIOR_WINDOW = timedelta(days=30)
# Same-matter requests within PRIOR_WINDOW after which a new one is proposed
# as malicious repetition (恶意重复诉求).
MALICIOUS_REPEAT_THRESHOLD = 5

# -- unreasonable requests (不合理不合规诉求) --------------------------------------

CATEGORY_LABEL = {
    "OUTSIDE_GOVERNMENT_POWERS": "超出政府职权范围",
    "CONTRARY_TO_LAW": "违反法律法规",
    "SUPERSTITION_OR_PUBLIC_ORDER": "封建迷信或违背公序良俗",
    "OTHERS_PRIVATE_DATA": "索要他人隐私",
    "MALICIOUS_REPEATED": "恶意重复诉求",
}

STANDARD_REPLY = {
    "OUTSIDE_GOVERNMENT_POWERS": (
        "您好，感谢您的来电。您反映的诉求属于民事主体之间的私人事务，超出了政府部门的法定职权范围，"
        "12345热线无法受理办理。建议您通过协商、人民调解或向人民法院提起诉讼等途径依法解决。感谢您的理解与支持。"),
    "CONTRARY_TO_LAW": (
        "您好，感谢您的来电。您提出的要求与现行法律法规和政策规定不符，相关部门不能违规办理。"
        "如您对处理结果有异议，可以依法申请行政复议或提起行政诉讼。感谢您的理解与支持。"),
    "SUPERSTITION_OR_PUBLIC_ORDER": (
        "您好，感谢您的来电。您提出的诉求涉及封建迷信或违背公序良俗，不属于政府部门受理范围，12345热线不予受理。"
        "倡导您崇尚科学、文明生活；如遇现实困难，欢迎再次来电反映。感谢您的理解与支持。"),
    "OTHERS_PRIVATE_DATA": (
        "您好，感谢您的来电。您要求查询的是他人的个人信息。根据《中华人民共和国个人信息保护法》等规定，"
        "他人的收入、住址、联系方式等属于个人隐私，12345热线及相关部门无权向您提供。"
        "如确因纠纷需要，建议您通过诉讼等法定途径，由人民法院依法调取。感谢您的理解与支持。"),
    "MALICIOUS_REPEATED": (
        "您好，感谢您的来电。您反映的问题此前已由相关部门依法依规作出答复，您本次来电未提出新的事实和理由，"
        "我们将不再重复受理。如有新的情况，欢迎您随时来电反映。感谢您的理解与支持。"),
}


@dataclass(frozen=True)
class UnreasonableRule:
    """Fires when every keyword group has a hit in the request text."""

    rule_id: str
    category: str
    groups: tuple[tuple[str, ...], ...]
    reason: str  # "{0}", "{1}" … are replaced by the word each group matched


_ASK = ("查询", "查一下", "查查", "查下", "帮我查", "调取", "提供", "告诉我", "打听", "要到")
_OTHER_PERSON = ("丈夫", "老公", "妻子", "老婆", "前妻", "前夫", "男朋友", "女朋友", "邻居", "同事", "别人",
                 "他人", "对方", "儿媳", "女婿", "亲家", "房东", "租客")
_PRIVATE_ITEM = ("工资", "收入", "住址", "家庭住址", "电话号码", "手机号", "身份证号", "开房记录", "行踪",
                 "通话记录", "银行流水", "存款", "房产信息", "社保缴费")

UNREASONABLE_RULES: tuple[UnreasonableRule, ...] = (
    UnreasonableRule("ur-privacy", "OTHERS_PRIVATE_DATA", (_ASK, _OTHER_PERSON, _PRIVATE_ITEM),
                     "要求{0}{1}的{2}，属索要他人隐私"),
    UnreasonableRule("ur-superstition", "SUPERSTITION_OR_PUBLIC_ORDER",
                     (("算命", "看风水", "驱鬼", "闹鬼", "做法事", "招魂", "跳大神", "请大仙", "烧纸钱驱邪"),),
                     "诉求涉及“{0}”，属封建迷信，违背公序良俗"),
    UnreasonableRule("ur-public-order", "SUPERSTITION_OR_PUBLIC_ORDER",
                     (("帮我", "要求", "让"), ("代孕", "找小姐", "介绍二奶", "赌资")),
                     "诉求涉及“{1}”，违背公序良俗"),
    UnreasonableRule("ur-illegal-favour", "CONTRARY_TO_LAW",
                     (("帮我", "要求", "能不能", "让", "必须"),
                      ("撤销罚单", "消除违章记录", "删除违章", "开假证明", "办假证", "删除案底", "不交罚款",
                       "免于处罚", "走后门", "插队入学", "违规审批")),
                     "要求“{1}”，与法律法规相悖"),
    UnreasonableRule("ur-private-debt", "OUTSIDE_GOVERNMENT_POWERS",
                     (("政府", "12345", "你们", "帮我"),
                      ("追讨私人借款", "替我还", "帮我还信用卡", "帮我还债", "介绍对象", "找对象", "赔偿炒股损失",
                       "股票亏损", "安排编制", "分配工作", "给我安排工作", "帮我要回借款")),
                     "要求“{1}”，属私人事务，超出政府职权范围"),
)
