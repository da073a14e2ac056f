"""Classification and grading rules (警情分类定级规则), as data.

The classifier in `domain.py` reads these tables and nothing else, so a rule
is changed here, reviewed like data, and every decision names the rules that
made it.

- `INCIDENT_TYPES`: the taxonomy, code -> (category, group, Chinese label).
- `KEYWORD_RULES`: Chinese keyword rules, FIRST MATCH WINS in table order.
  The order is deliberate: invalid-call markers, then life-threatening police
  matters, then other police matters, then specific non-police phrases, then
  the generic ones, then consultation topics. A keyword "A+B" matches when
  both A and B occur; `unless` phrases cancel a rule (e.g. "没人受伤").
- `PRIORITY_RULES`: raise the priority of a matched type (injury, weapon,
  vulnerable missing person, fresh fraud).
- `CHANNEL_RULES` and `TIME_RULES`: what the channel and the local time of
  day change.
- `REPEAT_INVALID`: repeated malicious calls from one number.
"""
from __future__ import annotations

from dataclasses import dataclass

POLICE, NON_POLICE, CONSULTATION, INVALID = "POLICE", "NON_POLICE", "CONSULTATION", "INVALID"

# -- taxonomy ---------------------------------------------------------------

_POLICE_TYPES = {
    "CRIMINAL": {
        "HOMICIDE": "命案", "ROBBERY": "抢劫抢夺", "KIDNAPPING": "绑架", "THEFT": "盗窃",
        "TELECOM_FRAUD": "电信网络诈骗", "ASSAULT": "故意伤害", "DOMESTIC_VIOLENCE": "家庭暴力",
        "DRUGS": "涉毒", "SEXUAL_ASSAULT": "性侵害",
    },
    "PUBLIC_ORDER": {
        "FIGHT": "打架斗殴", "DISPUTE": "纠纷", "NOISE": "噪音扰民", "GAMBLING": "赌博",
        "SUSPICIOUS_PERSON": "可疑人员", "OTHER": "其他警情", "SILENT_ALARM": "无声报警（待核实）",
    },
    "TRAFFIC": {
        "TRAFFIC_ACCIDENT": "交通事故", "CONGESTION": "现场交通堵塞", "DRUNK_DRIVING": "酒后驾驶",
    },
    "RESCUE": {
        "MISSING_PERSON": "人员走失", "TRAPPED": "人员被困", "DROWNING_RISK": "溺水危险",
        "FIRE": "火灾", "GAS_LEAK": "燃气泄漏", "SUICIDE_RISK": "轻生",
    },
}

_CONSULTATION_TYPES = {
    "CONSULTATION_HOUSEHOLD": "户政业务咨询",
    "CONSULTATION_EXIT_ENTRY": "出入境业务咨询",
    "CONSULTATION_TRAFFIC": "交管业务咨询",
    "CONSULTATION_CERTIFICATE": "证明开具咨询",
    "CONSULTATION_PUBLIC_ORDER": "治安业务咨询",
    "CONSULTATION_ANTI_FRAUD": "反诈咨询",
    "CONSULTATION_FIRE": "消防咨询",
    "CONSULTATION_OTHER": "其他咨询",
}

_INVALID_TYPES = {"PRANK": "恶作剧", "MISDIAL": "误拨", "HARASSING_CALL": "骚扰辱骂"}

# Non-police service requests: the 12345 matter codes, routed to city
# departments by the referral service (市民服务热线事项).
_NON_POLICE_TYPES = {
    "ILLEGAL_PARKING": "违章停车", "TRAFFIC_SIGNAL": "交通信号灯故障", "TRAFFIC_CONGESTION": "交通拥堵",
    "DRIVING_LICENSE": "驾驶证业务", "VEHICLE_REGISTRATION": "机动车登记", "ILLEGAL_CONSTRUCTION": "违法建设",
    "STREET_VENDOR": "占道经营", "CONSTRUCTION_NOISE": "施工噪音", "GARBAGE": "垃圾清运",
    "SANITATION": "环境卫生", "TAXI_COMPLAINT": "出租车服务投诉", "BUS_SERVICE": "公交服务",
    "ROAD_DAMAGE": "道路破损", "GAS_OUTAGE": "停气", "STREET_LIGHT": "路灯损坏", "TREE_HAZARD": "树木倒伏",
    "MANHOLE_COVER": "井盖缺失", "GREEN_SPACE": "绿化管护", "CONSTRUCTION_SAFETY": "建筑施工安全",
    "OLD_COMMUNITY_RENOVATION": "老旧小区改造", "FOOD_SAFETY": "食品安全", "PRICE_GOUGING": "价格欺诈",
    "CONSUMER_DISPUTE": "消费纠纷", "ELEVATOR_FAULT": "电梯故障", "WAGE_ARREARS": "拖欠工资",
    "SOCIAL_INSURANCE": "社保业务", "LABOR_DISPUTE": "劳动争议", "POWER_OUTAGE": "停电",
    "POWER_LINE_HAZARD": "电力线路隐患", "WATER_OUTAGE": "停水", "PIPE_BURST": "供水管道爆裂",
    "WATER_QUALITY": "自来水水质", "SEWER_BLOCKAGE": "下水道堵塞", "AIR_POLLUTION": "大气污染",
    "WATER_POLLUTION": "水体污染", "INDUSTRIAL_NOISE": "工业噪声", "MEDICAL_DISPUTE": "医疗纠纷",
    "ILLEGAL_CLINIC": "非法行医", "SCHOOL_FEES": "教育乱收费", "SCHOOL_ENROLLMENT": "入学政策",
    "OFF_CAMPUS_TRAINING": "校外培训", "ELDERLY_ASSISTANCE": "老人救助", "HOMELESS_ASSISTANCE": "流浪乞讨救助",
    "MARRIAGE_REGISTRATION": "婚姻登记", "HOUSING_RENTAL": "房屋租赁纠纷", "PROPERTY_MANAGEMENT": "物业服务纠纷",
    "REAL_ESTATE_REGISTRATION": "不动产登记", "TOURISM_COMPLAINT": "旅游投诉", "ENTERTAINMENT_VENUE": "娱乐场所管理",
    "SAFETY_HAZARD": "安全生产隐患", "HAZARDOUS_CHEMICALS": "危险化学品", "FIRE_HAZARD": "消防安全隐患",
    "BLOCKED_FIRE_EXIT": "消防通道堵塞", "ID_CARD": "身份证办理", "HOUSEHOLD_REGISTRATION": "户口登记迁移",
    "PASSPORT": "出入境证件办理", "ILLEGAL_LAND_USE": "违法用地", "WATERLOGGING": "道路渍水",
    "LAKE_PROTECTION": "湖泊保护", "TAX_SERVICE": "税务咨询", "MEDICAL_INSURANCE": "医保报销",
    "EXPRESS_DELIVERY": "快递服务投诉", "TELECOM_SERVICE": "通信服务投诉", "DISABILITY_ASSISTANCE": "残疾人帮扶",
    "WOMEN_CHILDREN_RIGHTS": "妇女儿童权益", "AGRI_INPUTS": "农资质量", "STRAY_ANIMALS": "流浪动物",
    "NEIGHBOR_DISPUTE": "邻里纠纷",
}


@dataclass(frozen=True)
class IncidentType:
    code: str
    category: str
    group: str
    label: str


def _taxonomy() -> dict[str, IncidentType]:
    out: dict[str, IncidentType] = {}
    for group, types in _POLICE_TYPES.items():
        out.update({c: IncidentType(c, POLICE, group, label) for c, label in types.items()})
    out.update({c: IncidentType(c, NON_POLICE, "NON_POLICE", label) for c, label in _NON_POLICE_TYPES.items()})
    out.update({c: IncidentType(c, CONSULTATION, "CONSULTATION", label) for c, label in _CONSULTATION_TYPES.items()})
    out.update({c: IncidentType(c, INVALID, "INVALID", label) for c, label in _INVALID_TYPES.items()})
    return out


INCIDENT_TYPES: dict[str, IncidentType] = _taxonomy()

# -- keyword rules (first match wins) ----------------------------------------


@dataclass(frozen=True)
class KeywordRule:
    rule_id: str
    incident_type: str
    priority: int
    keywords: tuple[str, ...]
    unless: tuple[str, ...] = ()

    @property
    def category(self) -> str:
        return INCIDENT_TYPES[self.incident_type].category


R = KeywordRule
KEYWORD_RULES: tuple[KeywordRule, ...] = (
    # Invalid calls first: a prank that mentions a fire is still a prank.
    R("kw-prank", "PRANK", 4, ("骗你的", "开玩笑的", "恶作剧", "逗你玩", "嬉笑", "怪兽", "试试110", "测试一下110")),
    R("kw-misdial", "MISDIAL", 4, ("打错了", "拨错了", "按错了", "不小心拨")),
    R("kw-harassing", "HARASSING_CALL", 4, ("辱骂接警员", "骚扰接警", "无具体警情")),
    # Life first (1级).
    R("kw-homicide", "HOMICIDE", 1, ("杀人", "捅死", "砍死", "打死人", "命案", "尸体")),
    R("kw-kidnap", "KIDNAPPING", 1, ("绑架", "绑走", "被绑", "勒索赎金", "抱走", "拐走", "拐卖", "强行拉上车")),
    R("kw-robbery", "ROBBERY", 1, ("抢劫", "抢包", "抢了", "持刀抢", "抢手机", "飞车抢")),
    R("kw-fire", "FIRE", 1, ("着火", "火灾", "失火", "起火", "冒烟", "烧起来", "放火", "纵火", "烧车")),
    R("kw-gas", "GAS_LEAK", 1, ("燃气泄漏", "煤气泄漏", "燃气味", "煤气味", "天然气味", "漏气", "燃气管道+断",
                                "挖断燃气")),
    R("kw-suicide", "SUICIDE_RISK", 1, ("不想活", "轻生", "自杀", "跳楼", "寻短见", "割腕")),
    R("kw-drowning", "DROWNING_RISK", 1, ("落水", "溺水", "掉进河", "掉进湖", "掉进江", "跳河", "跳江")),
    R("kw-trapped-elevator", "TRAPPED", 2, ("电梯+被困", "电梯+困在", "电梯+出不来", "困在电梯", "电梯困人")),
    R("kw-trapped", "TRAPPED", 1, ("被困", "困在", "出不来")),
    R("kw-sexual", "SEXUAL_ASSAULT", 1, ("强奸", "猥亵", "性侵")),
    R("kw-domestic", "DOMESTIC_VIOLENCE", 2, ("家暴", "家庭暴力", "丈夫打", "老公打", "在家打人", "被丈夫",
                                            "被老公", "老公+打我", "丈夫+打我", "老婆+打我")),
    R("kw-assault", "ASSAULT", 2, ("砍人", "捅人", "持刀伤人", "砍伤", "捅伤", "被人打伤", "故意伤害", "打成重伤")),
    R("kw-fight", "FIGHT", 2, ("打架", "打群架", "斗殴", "打人", "互殴", "打起来", "推倒", "群殴")),
    R("kw-fraud", "TELECOM_FRAUD", 2, ("诈骗", "被骗", "骗了", "安全账户", "刷单", "冒充", "电话+转", "对方+转账",
                                      "网贷+转", "返利")),
    R("kw-accident", "TRAFFIC_ACCIDENT", 2, ("车祸", "交通事故", "撞车", "追尾", "撞了", "被撞", "撞倒", "翻车")),
    R("kw-drunk-driving", "DRUNK_DRIVING", 2, ("酒驾", "醉驾", "喝了酒", "酒后驾驶", "喝酒开车")),
    R("kw-missing", "MISSING_PERSON", 2, ("走失", "走丢", "失踪", "没回来", "没回家", "联系不上", "孩子丢了",
                                          "人不见了")),
    R("kw-theft", "THEFT", 3, ("被偷", "偷了", "盗窃", "小偷", "扒窃", "被人偷", "撬门", "入室")),
    R("kw-drugs", "DRUGS", 3, ("吸毒", "贩毒", "毒品", "冰毒", "大麻")),
    R("kw-gambling", "GAMBLING", 3, ("赌博", "赌场", "聚赌", "打牌赌钱")),
    R("kw-suspicious", "SUSPICIOUS_PERSON", 3, ("形迹可疑", "可疑人员", "可疑男子", "可疑女子", "鬼鬼祟祟")),
    R("kw-congestion", "CONGESTION", 3, ("交通堵塞", "堵车严重", "车辆堵死", "交通瘫痪"), ("每天", "经常", "长期")),
    # Noise: building works go to the city (施工噪音, 12345); noise from
    # neighbours and venues is a public-order matter (治安管理处罚法 第58条).
    R("kw-construction-noise", "CONSTRUCTION_NOISE", 4, ("施工+噪音", "打桩", "工地+吵", "施工+吵")),
    R("kw-industrial-noise", "INDUSTRIAL_NOISE", 4, ("工厂+噪音", "厂里+噪音", "机器轰鸣")),
    R("kw-noise", "NOISE", 4, ("噪音", "扰民", "太吵", "吵闹", "吵得")),
    # Specific non-police phrases before the generic police dispute rule.
    R("kw-property", "PROPERTY_MANAGEMENT", 4, ("物业纠纷", "物业不作为", "物业费")),
    R("kw-labor", "LABOR_DISPUTE", 4, ("劳动纠纷", "劳动合同", "劳动争议")),
    R("kw-consumer", "CONSUMER_DISPUTE", 4, ("消费纠纷", "退款不给", "不给退")),
    R("kw-medical", "MEDICAL_DISPUTE", 4, ("医疗纠纷", "医患纠纷")),
    R("kw-rental", "HOUSING_RENTAL", 4, ("押金不退", "租房纠纷", "房东不退")),
    R("kw-dispute", "DISPUTE", 3, ("纠纷", "吵架", "争吵", "不让我下车", "扣着不放")),
    # Non-police service requests (12345).
    R("kw-parking", "ILLEGAL_PARKING", 4, ("违停", "违章停车", "乱停车", "乱停", "堵住车库", "车库门口+堵住",
                                          "挡住出口", "停满了车")),
    R("kw-signal", "TRAFFIC_SIGNAL", 4, ("红绿灯坏", "信号灯坏", "信号灯故障", "红绿灯+不亮", "红绿灯+故障")),
    R("kw-elevator", "ELEVATOR_FAULT", 3, ("电梯故障", "电梯坏", "电梯+停运", "电梯+异响")),
    R("kw-water-outage", "WATER_OUTAGE", 4, ("停水", "没有水", "没来水")),
    R("kw-pipe", "PIPE_BURST", 3, ("水管爆", "爆管", "水管破裂", "自来水管+爆")),
    R("kw-power", "POWER_OUTAGE", 4, ("停电", "没电了", "没来电")),
    R("kw-gas-outage", "GAS_OUTAGE", 4, ("停气", "没有燃气")),
    R("kw-street-light", "STREET_LIGHT", 4, ("路灯",)),
    R("kw-manhole", "MANHOLE_COVER", 3, ("井盖",)),
    R("kw-sewer", "SEWER_BLOCKAGE", 4, ("下水道", "化粪池", "污水漫")),
    R("kw-waterlogging", "WATERLOGGING", 4, ("渍水", "积水")),
    R("kw-wages", "WAGE_ARREARS", 4, ("欠薪", "拖欠工资", "拖欠+工资", "讨薪")),
    R("kw-vendor", "STREET_VENDOR", 4, ("占道经营", "摊贩", "乱摆摊")),
    R("kw-food", "FOOD_SAFETY", 4, ("吃出", "变质", "过期食品", "地沟油")),
    R("kw-garbage", "GARBAGE", 4, ("垃圾",)),
    R("kw-stray", "STRAY_ANIMALS", 4, ("流浪狗", "流浪猫")),
    R("kw-tree", "TREE_HAZARD", 4, ("树倒", "树木倒伏", "大树+倒")),
    R("kw-taxi", "TAXI_COMPLAINT", 4, ("出租车+绕路", "拒载")),
    # Consultation topics (即问即复).
    R("kw-consult-certificate", "CONSULTATION_CERTIFICATE", 4, ("无犯罪记录", "开证明", "开具证明")),
    R("kw-consult-exit-entry", "CONSULTATION_EXIT_ENTRY", 4, ("护照", "港澳通行证", "台湾通行证", "签证", "签注")),
    R("kw-consult-traffic", "CONSULTATION_TRAFFIC", 4, ("驾驶证", "驾照", "行驶证", "年审", "违章查询", "换证")),
    R("kw-consult-household", "CONSULTATION_HOUSEHOLD", 4, ("身份证", "户口", "居住证", "落户", "迁户")),
    R("kw-consult-fire", "CONSULTATION_FIRE", 4, ("灭火器", "消防检查")),
    R("kw-consult-anti-fraud", "CONSULTATION_ANTI_FRAUD", 4, ("是不是诈骗", "是骗子吗", "反诈")),
    R("kw-consult", "CONSULTATION_OTHER", 4, ("请问", "咨询", "怎么办理", "如何办理", "需要什么材料")),
)
del R

# -- priority rules ---------------------------------------------------------


@dataclass(frozen=True)
class PriorityRule:
    """Raises a matched report to `priority` when a keyword occurs."""

    rule_id: str
    priority: int
    keywords: tuple[str, ...]
    reason: str
    incident_types: tuple[str, ...] = ()  # empty: every police type
    unless: tuple[str, ...] = ()


PRIORITY_RULES: tuple[PriorityRule, ...] = (
    PriorityRule("pri-injury", 1, ("流血", "流了好多血", "很多血", "出血", "受伤", "重伤", "昏迷", "救护车",
                                   "倒在地上", "躺在地上"),
                 "有人员受伤", unless=("没人受伤", "无人受伤", "没有受伤", "没有人受伤")),
    PriorityRule("pri-weapon", 1, ("持刀", "拿刀", "砍刀", "菜刀", "刀子", "匕首", "砍人", "捅人", "枪", "拿着棍子",
                                   "啤酒瓶砸"), "涉及凶器"),
    PriorityRule("pri-vulnerable", 1, ("老年痴呆", "老人", "岁的孩子", "孩子", "女儿", "儿子", "小孩", "父亲", "母亲"),
                 "走失者为老人或儿童", incident_types=("MISSING_PERSON",)),
    PriorityRule("pri-dv-vulnerable", 1, ("孩子", "小孩", "儿子", "女儿", "闺女", "娃", "婴儿", "怀孕", "孕妇", "肚子里",
                                          "老人", "老母亲", "老父亲"),
                 "家庭暴力涉及儿童、孕妇或老人", incident_types=("DOMESTIC_VIOLENCE",)),
    PriorityRule("pri-fresh-fraud", 1, ("刚接到", "刚才", "刚刚", "正在转"), "刚发生的诈骗，紧急止付黄金时间",
                 incident_types=("TELECOM_FRAUD",)),
)

# -- channel rules ------------------------------------------------------------


@dataclass(frozen=True)
class ChannelRule:
    rule_id: str
    channel: str
    note: str
    # With no keyword match: treat as this police type and priority.
    unmatched_type: str = ""
    unmatched_priority: int = 0
    # A police matter from this channel is at least this urgent (1 = most).
    urgent_priority: int = 0
    # ...and at most this urgent: letters and tip-offs are not live emergencies.
    calm_priority: int = 0


CHANNEL_RULES: dict[str, ChannelRule] = {r.channel: r for r in (
    ChannelRule("channel-silent-alarm", "SILENT_ALARM",
                "无声报警：报警人无法通话，仅限文字联系，禁止语音回拨，请接警员重点关注",
                unmatched_type="SILENT_ALARM", unmatched_priority=1, urgent_priority=1),
    ChannelRule("channel-kiosk", "KIOSK", "一键报警柱报警，现场可能无人值守",
                unmatched_type="OTHER", unmatched_priority=2),
    ChannelRule("channel-mailbox", "MAILBOX", "局长信箱来信，非现场警情", calm_priority=3),
    ChannelRule("channel-tip-off", "TIP_OFF", "群众举报线索，非现场警情", calm_priority=3),
)}

# -- time-of-day rules ----------------------------------------------------------


@dataclass(frozen=True)
class TimeRule:
    rule_id: str
    incident_types: tuple[str, ...]
    start_hour: int  # local time (Asia/Shanghai), inclusive
    end_hour: int  # exclusive; a window may wrap past midnight
    priority: int
    reason: str
    # Words in the description that put the matter in the window whatever the clock says.
    keywords: tuple[str, ...] = ()


TIME_RULES: tuple[TimeRule, ...] = (
    TimeRule("time-night-noise", ("NOISE",), 22, 6, 3, "夜间（22时至次日6时）噪音扰民，影响休息",
             keywords=("半夜", "深夜", "凌晨", "晚上十一点", "晚上十二点", "夜里")),
    TimeRule("time-night-suspicious", ("SUSPICIOUS_PERSON",), 0, 5, 2, "凌晨可疑人员，防范入室盗窃"),
)
LOCAL_UTC_OFFSET_HOURS = 8

# -- repeated invalid calls ---------------------------------------------------


@dataclass(frozen=True)
class RepeatInvalidRule:
    rule_id: str
    window_minutes: int
    threshold: int  # earlier invalid calls from the same number within the window


REPEAT_INVALID = RepeatInvalidRule("repeat-invalid-caller", window_minutes=60, threshold=3)

# The fallback when nothing matches: a police matter for the call-taker to confirm.
FALLBACK_TYPE, FALLBACK_PRIORITY = "OTHER", 3
