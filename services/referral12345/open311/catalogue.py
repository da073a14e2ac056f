"""What the Open311 face says about each 12345 matter (GeoReport `description`, `keywords`, `group`)
and which matters ask for more than the standard fields (GeoReport's service definition, `ATTRIBUTES`).

`group` is the 12345 catalogue category (分类) in Chinese, as GeoReport means it ("a category to group
this service type within"); the departments that handle a matter are named in its description.
`keywords` are the words a citizen uses for it: the routing keywords of `rules.MATTER_KEYWORDS` first,
then those below. A matter not listed here (a catalogue grown since) still gets a description and the
category of `rules.CATEGORY_BY_MATTER`, else "综合".
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime

from services.runtime.validation import Violations

from .. import rules

# code -> (category, what a citizen reports under it, extra keywords)
CATALOGUE: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "ILLEGAL_PARKING": ("交通出行", "机动车违章停放，占用消防通道、人行道、车库出入口等", ("占道停车",)),
    "TRAFFIC_SIGNAL": ("交通出行", "红绿灯不亮、常亮、配时不合理或信号灯损坏", ("红绿灯", "信号灯")),
    "TRAFFIC_CONGESTION": ("交通出行", "路口或路段经常拥堵，需调整交通组织", ("堵车", "拥堵")),
    "DRIVING_LICENSE": ("交通出行", "驾驶证申领、换证、补证、记分等业务咨询", ("驾照", "换证")),
    "VEHICLE_REGISTRATION": ("交通出行", "机动车注册、转移、抵押登记等业务咨询", ("上牌", "过户")),
    "ILLEGAL_CONSTRUCTION": ("城市管理", "私搭乱建、违法加建、擅自改变房屋结构", ("违建", "私搭乱建")),
    "STREET_VENDOR": ("城市管理", "流动摊贩、店外经营占用道路", ("摆摊", "占道")),
    "CONSTRUCTION_NOISE": ("生态环境", "建筑工地夜间或超时施工产生噪音", ("夜间施工",)),
    "GARBAGE": ("城市管理", "生活垃圾未及时清运、垃圾桶满溢", ("垃圾", "清运")),
    "SANITATION": ("城市管理", "道路、公共区域保洁不到位，污物堆积", ("保洁", "卫生")),
    "TAXI_COMPLAINT": ("交通出行", "出租车、网约车拒载、绕路、多收费", ("拒载", "绕路", "网约车")),
    "BUS_SERVICE": ("交通出行", "公交线路、站点、班次及司乘服务问题", ("公交", "班次")),
    "ROAD_DAMAGE": ("交通出行", "路面坑洼、塌陷、破损，人行道板松动", ("坑洼", "塌陷")),
    "GAS_LEAK": ("公用事业", "闻到燃气味、燃气管道泄漏，请同时远离并拨打燃气抢修电话", ("燃气味", "煤气")),
    "GAS_OUTAGE": ("公用事业", "管道燃气停气、气压不足", ("停气", "天然气")),
    "STREET_LIGHT": ("城市管理", "路灯不亮、白天常亮、灯杆损坏", ("路灯", "照明")),
    "TREE_HAZARD": ("城市管理", "树木倒伏、倾斜、枯枝可能坠落", ("树倒", "断枝")),
    "MANHOLE_COVER": ("城市管理", "井盖缺失、破损、松动或下沉", ("井盖",)),
    "GREEN_SPACE": ("城市管理", "公共绿地、行道树养护不到位，绿化带被毁", ("绿化", "草坪")),
    "CONSTRUCTION_SAFETY": ("住房建设", "建筑工地围挡、脚手架、塔吊等安全隐患", ("工地", "塔吊")),
    "OLD_COMMUNITY_RENOVATION": ("住房建设", "老旧小区改造的进度、质量及施工问题", ("老旧小区", "改造")),
    "FOOD_SAFETY": ("市场监管", "食品变质、过期、无证经营餐饮、食物中毒", ("过期食品", "餐馆卫生")),
    "PRICE_GOUGING": ("市场监管", "价格欺诈、不明码标价、哄抬价格", ("乱收费", "标价")),
    "CONSUMER_DISPUTE": ("市场监管", "购物、服务消费纠纷及退换货", ("退货", "消费者权益")),
    "ELEVATOR_FAULT": ("市场监管", "电梯故障、困人、维保不到位", ("电梯",)),
    "WAGE_ARREARS": ("劳动社保", "用人单位拖欠、克扣工资", ("欠薪", "讨薪")),
    "SOCIAL_INSURANCE": ("劳动社保", "社保缴费、转移、待遇领取等业务", ("社保", "养老保险")),
    "LABOR_DISPUTE": ("劳动社保", "劳动合同、加班、解除劳动关系等争议", ("劳动合同", "仲裁")),
    "POWER_OUTAGE": ("公用事业", "突然停电、频繁停电、电压不稳", ("停电", "断电")),
    "POWER_LINE_HAZARD": ("公用事业", "电线下垂、电杆倾斜、变压器异响等电力隐患", ("电线", "电杆")),
    "WATER_OUTAGE": ("公用事业", "停水、水压低", ("停水", "水压")),
    "PIPE_BURST": ("公用事业", "供水管道爆裂、路面冒水", ("爆管", "漏水")),
    "WATER_QUALITY": ("公用事业", "自来水浑浊、有异味", ("水质", "黄水")),
    "SEWER_BLOCKAGE": ("公用事业", "下水道堵塞、污水外溢", ("下水道", "污水")),
    "AIR_POLLUTION": ("生态环境", "工厂废气、露天焚烧、餐饮油烟、扬尘", ("废气", "油烟", "扬尘")),
    "WATER_POLLUTION": ("生态环境", "向河湖偷排污水，水体发黑发臭", ("排污", "黑臭水体")),
    "INDUSTRIAL_NOISE": ("生态环境", "工厂、商铺设备噪声扰民", ("噪声", "设备噪音")),
    "MEDICAL_DISPUTE": ("医疗卫生", "医疗服务、收费及医患纠纷", ("医院", "医患")),
    "ILLEGAL_CLINIC": ("医疗卫生", "无证行医、非法诊所", ("黑诊所", "无证行医")),
    "SCHOOL_FEES": ("教育", "学校违规收费、乱收费", ("学校收费",)),
    "SCHOOL_ENROLLMENT": ("教育", "入学、转学、学区划分政策咨询", ("入学", "学区")),
    "OFF_CAMPUS_TRAINING": ("教育", "校外培训机构违规办学、退费纠纷", ("培训机构", "退费")),
    "ELDERLY_ASSISTANCE": ("民政救助", "独居、困难老人需要帮扶救助", ("老人", "养老")),
    "HOMELESS_ASSISTANCE": ("民政救助", "发现流浪乞讨人员需要救助", ("流浪人员", "乞讨")),
    "MARRIAGE_REGISTRATION": ("民政救助", "结婚、离婚登记业务咨询", ("结婚登记", "离婚登记")),
    "HOUSING_RENTAL": ("住房建设", "租房押金、合同及中介纠纷", ("租房", "押金", "中介")),
    "PROPERTY_MANAGEMENT": ("社区事务", "物业服务不到位、物业收费纠纷", ("物业", "物业费")),
    "REAL_ESTATE_REGISTRATION": ("住房建设", "不动产登记、房产证办理", ("房产证", "不动产")),
    "TOURISM_COMPLAINT": ("文化旅游", "旅行社、景区服务投诉，强制购物", ("旅行社", "景区")),
    "ENTERTAINMENT_VENUE": ("文化旅游", "歌舞厅、网吧等娱乐场所违规经营、扰民", ("网吧", "KTV")),
    "SAFETY_HAZARD": ("安全生产", "生产经营单位安全生产隐患", ("安全隐患",)),
    "HAZARDOUS_CHEMICALS": ("安全生产", "危险化学品违规储存、运输、销售", ("危化品",)),
    "FIRE_HAZARD": ("安全生产", "电动车楼道充电、违规住人等消防安全隐患", ("飞线充电", "消防隐患")),
    "BLOCKED_FIRE_EXIT": ("安全生产", "消防通道、安全出口被占用或封堵", ("消防通道",)),
    "ID_CARD": ("证照办理", "居民身份证申领、换领、补领", ("身份证",)),
    "HOUSEHOLD_REGISTRATION": ("证照办理", "户口登记、迁入迁出", ("户口", "落户")),
    "PASSPORT": ("证照办理", "护照、港澳台通行证办理", ("护照", "通行证")),
    "ILLEGAL_LAND_USE": ("自然资源", "违法占用土地、耕地", ("占地", "耕地")),
    "WATERLOGGING": ("城市管理", "下雨后道路、小区积水", ("积水", "渍水")),
    "LAKE_PROTECTION": ("生态环境", "填湖、侵占湖泊岸线、湖泊污染", ("填湖", "湖泊")),
    "TAX_SERVICE": ("政务服务", "纳税申报、发票、税收政策咨询", ("纳税", "发票")),
    "MEDICAL_INSURANCE": ("劳动社保", "医保报销、参保缴费、异地就医", ("医保", "报销")),
    "EXPRESS_DELIVERY": ("市场监管", "快递丢件、延误、服务态度问题", ("快递", "丢件")),
    "TELECOM_SERVICE": ("市场监管", "电话、宽带、手机信号等通信服务问题", ("宽带", "信号")),
    "DISABILITY_ASSISTANCE": ("民政救助", "残疾人证办理、帮扶政策咨询", ("残疾人",)),
    "WOMEN_CHILDREN_RIGHTS": ("民政救助", "妇女儿童权益受到侵害", ("家暴", "儿童权益")),
    "AGRI_INPUTS": ("市场监管", "种子、化肥、农药等农资质量问题", ("化肥", "农药", "种子")),
    "STRAY_ANIMALS": ("社区事务", "流浪猫狗伤人、扰民", ("流浪狗", "流浪猫")),
    "NOISE": ("社区事务", "广场舞、商铺音响、装修等生活噪音扰民", ("噪音", "扰民")),
    "NEIGHBOR_DISPUTE": ("社区事务", "邻里之间的纠纷调解", ("邻居", "调解")),
}

_ROUTING_KEYWORDS = dict(rules.MATTER_KEYWORDS)


def describe(code: str, label: str, handlers: str) -> dict[str, str]:
    """GeoReport's description, keywords (comma-separated) and group of one matter."""
    category, what, extra = CATALOGUE.get(code, (rules.CATEGORY_BY_MATTER.get(code, "综合"), label, ()))
    description = f"{what}。由{handlers}办理。" if handlers else f"{what}。"
    words: list[str] = []
    for w in (label, *_ROUTING_KEYWORDS.get(code, ()), *extra):
        if w and w not in words:
            words.append(w)
    return {"description": description, "keywords": ",".join(words), "group": category}


# -- service definitions (GeoReport "Service Definition": a service's extra attributes) --------------

DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
LISTS = ("singlevaluelist", "multivaluelist")
# The longest value a string or text attribute takes.
MAX_TEXT = {"string": 200, "text": 2000}
# An attribute code: what goes between the brackets of `attribute[code]`.
ATTRIBUTE_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class Attribute:
    """One attribute of a service definition: `description` is the question a citizen answers
    (Chinese), `values` the (key, name) choices of a list. `minimum`/`maximum` bound a number."""

    code: str
    datatype: str
    description: str
    required: bool = False
    datatype_description: str = ""
    values: tuple[tuple[str, str], ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self) -> None:
        assert ATTRIBUTE_CODE.match(self.code) and self.datatype in DATATYPES, self
        assert bool(self.values) == (self.datatype in LISTS), self


# Service code -> its attributes, in the order a client asks them.
ATTRIBUTES: dict[str, tuple[Attribute, ...]] = {
    "MANHOLE_COVER": (
        Attribute("cover_state", "singlevaluelist", "井盖现状", required=True,
                  datatype_description="选择井盖的现状",
                  values=(("missing", "缺失"), ("broken", "破损"), ("displaced", "移位"), ("loose", "松动、有响声"),
                          ("sunken", "下沉或凸起"))),
        Attribute("on_carriageway", "singlevaluelist", "井盖位于", datatype_description="井盖所在位置",
                  values=(("carriageway", "机动车道"), ("sidewalk", "人行道"), ("non_motor", "非机动车道"),
                          ("other", "其他"))),
    ),
    "ROAD_DAMAGE": (
        Attribute("damage_size", "singlevaluelist", "破损面积", required=True,
                  datatype_description="估计破损处的大小",
                  values=(("small", "小于1平方米"), ("medium", "1至5平方米"), ("large", "大于5平方米"))),
        Attribute("depth_cm", "number", "破损深度（厘米）", datatype_description="估计的坑深，单位厘米，0至200",
                  minimum=0, maximum=200),
    ),
    "STREET_LIGHT": (
        Attribute("light_fault", "singlevaluelist", "路灯故障", datatype_description="路灯是什么问题",
                  values=(("off", "不亮"), ("day_on", "白天常亮"), ("flicker", "闪烁"), ("pole_damaged", "灯杆损坏"))),
        Attribute("lamp_count", "number", "故障路灯数量（盏）", datatype_description="1至50之间的整数",
                  minimum=1, maximum=50),
    ),
}


def attributes_of(code: str) -> tuple[Attribute, ...]:
    return ATTRIBUTES.get(code, ())


def definition(code: str) -> list[dict]:
    """A service's attributes as GeoReport's service definition lists them (`order` from 1)."""
    out = []
    for order, a in enumerate(attributes_of(code), start=1):
        item = {"variable": True, "code": a.code, "datatype": a.datatype, "required": a.required,
                "datatype_description": a.datatype_description, "order": order, "description": a.description}
        if a.values:
            item["values"] = [{"key": k, "name": n} for k, n in a.values]
        out.append(item)
    return out


def _number(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def check_attributes(code: str, given: dict[str, list[str]], v: Violations) -> list[dict]:
    """The attribute values of a POST (`attribute[code]` -> the values sent), checked against the
    service's definition; problems go into `v` under `attribute[code]`. An attribute the service does
    not define is ignored, as GeoReport clients add their own (FixMyStreet's `attribute[easting]`...).
    Returns what the work order
    keeps: [{"code", "description", "value", "value_text"}] in definition order, `value` as sent (list
    keys comma-separated), `value_text` in words (the Chinese names of list keys)."""
    known = {a.code: a for a in attributes_of(code)}
    out = []
    for a in known.values():
        field = f"attribute[{a.code}]"
        values = [x.strip() for x in given.get(a.code, []) if x.strip()]
        if a.datatype == "multivaluelist":
            # Its keys also come comma-separated in one value (the gRPC face's attributes map).
            values = [k.strip() for x in values for k in x.split(",") if k.strip()]
        if not values:
            v.check(not a.required, field, f"is required: {a.description}")
            continue
        if any("\x00" in x for x in values):
            v.add(field, "must not contain a NUL character")
            continue
        if a.datatype != "multivaluelist" and len(values) > 1:
            v.add(field, "takes one value")
            continue
        names = dict(a.values)
        if a.datatype in LISTS:
            wrong = [x for x in values if x not in names]
            if wrong:
                v.add(field, f"{wrong[0]!r} is not one of its values: {', '.join(names)}")
                continue
            if len(set(values)) != len(values):
                v.add(field, "names a value twice")
                continue
            text = "、".join(names[x] for x in values)
        elif a.datatype == "number":
            number = _number(values[0])
            if number is None:
                v.add(field, "must be a number")
                continue
            if (a.minimum is not None and number < a.minimum) or (a.maximum is not None and number > a.maximum):
                v.add(field, f"must be from {a.minimum:g} to {a.maximum:g}")
                continue
            text = values[0]
        elif a.datatype == "datetime":
            try:
                when = datetime.fromisoformat(values[0].replace("Z", "+00:00"))
            except ValueError:
                v.add(field, "must be a W3C date-time, e.g. 2026-01-01T08:00:00+08:00")
                continue
            if when.tzinfo is None:
                v.add(field, "must carry its time zone, e.g. +08:00")
                continue
            text = values[0]
        else:
            if len(values[0]) > MAX_TEXT[a.datatype]:
                v.add(field, f"must be at most {MAX_TEXT[a.datatype]} characters")
                continue
            text = values[0]
        out.append({"code": a.code, "description": a.description, "value": ",".join(values), "value_text": text})
    return out

