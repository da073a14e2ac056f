"""Chinese labels of the codes the services share, for texts people read (timelines, explanations,
warnings): a text shows 刑事立案, never CRIMINAL_CASE.

The owning service keeps the code's meaning (intake the incident taxonomy in
`services/intake/rules.py`, dispatch the outcomes in `services/dispatch/domain/case.py`); these
tables repeat its labels so that the other services need not import its code. A test keeps the
tables equal to the owners'.
"""
from __future__ import annotations

# Incident types (警情类型) of intake's taxonomy, police and non-police (the non-police ones are the
# 12345 matter codes), consultations and invalid calls.
INCIDENT_TYPE_LABELS: dict[str, str] = {
    # CRIMINAL
    "HOMICIDE": "命案", "ROBBERY": "抢劫抢夺", "KIDNAPPING": "绑架", "THEFT": "盗窃", "TELECOM_FRAUD": "电信网络诈骗",
    "ASSAULT": "故意伤害", "DOMESTIC_VIOLENCE": "家庭暴力", "DRUGS": "涉毒", "SEXUAL_ASSAULT": "性侵害",
    # PUBLIC_ORDER
    "FIGHT": "打架斗殴", "DISPUTE": "纠纷", "NOISE": "噪音扰民", "GAMBLING": "赌博", "SUSPICIOUS_PERSON": "可疑人员",
    "OTHER": "其他警情", "SILENT_ALARM": "无声报警（待核实）",
    # TRAFFIC
    "TRAFFIC_ACCIDENT": "交通事故", "CONGESTION": "现场交通堵塞", "DRUNK_DRIVING": "酒后驾驶",
    # RESCUE
    "MISSING_PERSON": "人员走失", "TRAPPED": "人员被困", "DROWNING_RISK": "溺水危险", "FIRE": "火灾", "GAS_LEAK": "燃气泄漏",
    "SUICIDE_RISK": "轻生",
    # NON_POLICE
    "ILLEGAL_PARKING": "违章停车", "TRAFFIC_SIGNAL": "交通信号灯故障", "TRAFFIC_CONGESTION": "交通拥堵", "DRIVING_LICENSE": "驾驶证业务",
    "VEHICLE_REGISTRATION": "机动车登记", "ILLEGAL_CONSTRUCTION": "违法建设", "STREET_VENDOR": "占道经营",
    "CONSTRUCTION_NOISE": "施工噪音", "GARBAGE": "垃圾清运", "SANITATION": "环境卫生", "TAXI_COMPLAINT": "出租车服务投诉",
    "BUS_SERVICE": "公交服务", "ROAD_DAMAGE": "道路破损", "GAS_OUTAGE": "停气", "STREET_LIGHT": "路灯损坏", "TREE_HAZARD": "树木倒伏",
    "MANHOLE_COVER": "井盖缺失", "GREEN_SPACE": "绿化管护", "CONSTRUCTION_SAFETY": "建筑施工安全",
    "OLD_COMMUNITY_RENOVATION": "老旧小区改造", "FOOD_SAFETY": "食品安全", "PRICE_GOUGING": "价格欺诈", "CONSUMER_DISPUTE": "消费纠纷",
    "ELEVATOR_FAULT": "电梯故障", "WAGE_ARREARS": "拖欠工资", "SOCIAL_INSURANCE": "社保业务", "LABOR_DISPUTE": "劳动争议",
    "POWER_OUTAGE": "停电", "POWER_LINE_HAZARD": "电力线路隐患", "WATER_OUTAGE": "停水", "PIPE_BURST": "供水管道爆裂",
    "WATER_QUALITY": "自来水水质", "SEWER_BLOCKAGE": "下水道堵塞", "AIR_POLLUTION": "大气污染", "WATER_POLLUTION": "水体污染",
    "INDUSTRIAL_NOISE": "工业噪声", "MEDICAL_DISPUTE": "医疗纠纷", "ILLEGAL_CLINIC": "非法行医", "SCHOOL_FEES": "教育乱收费",
    "SCHOOL_ENROLLMENT": "入学政策", "OFF_CAMPUS_TRAINING": "校外培训", "ELDERLY_ASSISTANCE": "老人救助",
    "HOMELESS_ASSISTANCE": "流浪乞讨救助", "MARRIAGE_REGISTRATION": "婚姻登记", "HOUSING_RENTAL": "房屋租赁纠纷",
    "PROPERTY_MANAGEMENT": "物业服务纠纷", "REAL_ESTATE_REGISTRATION": "不动产登记", "TOURISM_COMPLAINT": "旅游投诉",
    "ENTERTAINMENT_VENUE": "娱乐场所管理", "SAFETY_HAZARD": "安全生产隐患", "HAZARDOUS_CHEMICALS": "危险化学品",
    "FIRE_HAZARD": "消防安全隐患", "BLOCKED_FIRE_EXIT": "消防通道堵塞", "ID_CARD": "身份证办理", "HOUSEHOLD_REGISTRATION": "户口登记迁移",
    "PASSPORT": "出入境证件办理", "ILLEGAL_LAND_USE": "违法用地", "WATERLOGGING": "道路渍水", "LAKE_PROTECTION": "湖泊保护",
    "TAX_SERVICE": "税务咨询", "MEDICAL_INSURANCE": "医保报销", "EXPRESS_DELIVERY": "快递服务投诉", "TELECOM_SERVICE": "通信服务投诉",
    "DISABILITY_ASSISTANCE": "残疾人帮扶", "WOMEN_CHILDREN_RIGHTS": "妇女儿童权益", "AGRI_INPUTS": "农资质量",
    "STRAY_ANIMALS": "流浪动物", "NEIGHBOR_DISPUTE": "邻里纠纷",
    # CONSULTATION
    "CONSULTATION_HOUSEHOLD": "户政业务咨询", "CONSULTATION_EXIT_ENTRY": "出入境业务咨询", "CONSULTATION_TRAFFIC": "交管业务咨询",
    "CONSULTATION_CERTIFICATE": "证明开具咨询", "CONSULTATION_PUBLIC_ORDER": "治安业务咨询", "CONSULTATION_ANTI_FRAUD": "反诈咨询",
    "CONSULTATION_FIRE": "消防咨询", "CONSULTATION_OTHER": "其他咨询",
    # INVALID
    "PRANK": "恶作剧", "MISDIAL": "误拨", "HARASSING_CALL": "骚扰辱骂",
}

# Report categories (警情类别), intake's classification.
CATEGORY_LABELS: dict[str, str] = {
    "POLICE": "警情", "NON_POLICE": "非警务求助", "CONSULTATION": "咨询", "INVALID": "无效报警",
}

# Intake's report statuses (接警单状态).
REPORT_STATUS_LABELS: dict[str, str] = {
    "RECEIVED": "已接报", "CLASSIFIED": "已分类", "ASSIGNING": "派警中", "DISPATCHED": "已派警",
    "REFERRED": "已转12345", "ANSWERED": "已答复", "MERGED": "已合并", "CLOSED": "已办结",
}

# Dispatch's outcomes of a job, as the officer reports back (回告结果).
OUTCOME_LABELS: dict[str, str] = {
    "CRIMINAL_CASE": "刑事立案", "ADMINISTRATIVE_CASE": "行政案件", "MEDIATED": "调解处理",
    "NO_ISSUE_FOUND": "现场无警情", "REFERRED": "移交处理", "ASSISTANCE_GIVEN": "求助已处置",
}

# Why dispatch cancelled a case rather than closing it (撤销警情).
CANCEL_REASON_LABELS: dict[str, str] = {
    "DUPLICATE": "重复报警", "FALSE_ALARM": "误报或虚假警情", "CALLER_WITHDREW": "报警人撤警",
    "HANDLED_BY_PHONE": "电话处置完毕",
}

# A citizen's satisfaction (回访评价).
SATISFACTION_LABELS: dict[str, str] = {
    "SATISFIED": "满意", "BASICALLY_SATISFIED": "基本满意", "UNSATISFIED": "不满意",
}


def label(table: dict[str, str], code: str, prefix: str = "") -> str:
    """The label of `code` ("CRIMINAL_CASE", or with the proto enum's `prefix`, "OUTCOME_CRIMINAL_CASE");
    a code the table does not know is shown as it is (a newer code than this table), "" as ""."""
    if not code:
        return ""
    return table.get(code) or table.get(code.removeprefix(prefix) if prefix else code) or code


def incident_type_label(code: str) -> str:
    return label(INCIDENT_TYPE_LABELS, code)


def incident_types_text(codes, *, empty: str = "各类") -> str:
    """Several incident types in words: 盗窃、抢劫抢夺 (`empty` when there are none)."""
    found = [incident_type_label(c) for c in codes if c]
    return "、".join(dict.fromkeys(found)) if found else empty


def outcome_label(code: str) -> str:
    return label(OUTCOME_LABELS, code, "OUTCOME_")


def cancel_reason_label(code: str) -> str:
    return label(CANCEL_REASON_LABELS, code, "CANCEL_REASON_")


def category_label(code: str) -> str:
    return label(CATEGORY_LABELS, code, "CATEGORY_")


def report_status_label(code: str) -> str:
    return label(REPORT_STATUS_LABELS, code, "REPORT_STATUS_")


def satisfaction_label(code: str) -> str:
    return label(SATISFACTION_LABELS, code, "SATISFACTION_")
