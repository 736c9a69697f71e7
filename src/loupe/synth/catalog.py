"""The planted parameters of the synthetic company and its small fixed lists.

Everything that ``truth/params.json`` reports is defined here, in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from loupe.synth.text import epoch

START = epoch(2024, 1, 1)  # first instant of the data, UTC
END = epoch(2026, 1, 1)  # the as-of date ("today")
AS_OF = "2026-01-01"
YEAR = 365.25 * 86400
MONTHS = [(y, m) for y in (2024, 2025) for m in range(1, 13)]

CATEGORIES = ("cosmetics", "apparel", "home", "baby", "snacks", "electronics_accessories")
PLATFORMS = ("web", "app", "store")


@dataclass(frozen=True)
class CustomerType:
    """Behaviour distribution of one planted customer type."""

    name: str
    share: float
    orders_per_year: float  # mean purchase rate while active (gamma heterogeneity, shape 4)
    price_preference: float  # 0 = cheapest SKUs of a category, 1 = most expensive
    lines_per_order: float  # mean order lines (1-5)
    coupon_rate: float  # mean probability that an order uses a coupon
    discount_rate: float  # mean discount share of the subtotal when a coupon is used
    channel_mix: tuple[float, float, float]  # web, app, store
    category_mix: tuple[float, ...]  # over CATEGORIES
    peak_hour: float  # local hour-of-day peak of purchases
    hour_sd: float
    account_rate: float  # probability of having an e-shop account
    member_rate: float  # probability of a POS member card (if they shop in stores)
    browse_per_month: float  # non-buying sessions per active month
    age_range: tuple[int, int]
    signup_range: tuple[str, str]
    base_churn_hazard: float  # churns per year at driver values of zero


CUSTOMER_TYPES: tuple[CustomerType, ...] = (
    CustomerType(
        "vip_loyal", 0.10, 18.0, 0.85, 3.0, 0.10, 0.05, (0.25, 0.50, 0.25),
        (0.45, 0.30, 0.10, 0.03, 0.05, 0.07), 21.0, 1.2, 0.95, 0.90, 2.0, (28, 50),
        ("2016-01-01", "2023-12-31"), 0.04,
    ),
    CustomerType(
        "bargain_hunter", 0.25, 8.0, 0.12, 2.5, 0.85, 0.28, (0.55, 0.35, 0.10),
        (0.15, 0.10, 0.20, 0.05, 0.40, 0.10), 0.5, 1.2, 0.95, 0.40, 2.5, (20, 45),
        ("2018-01-01", "2025-06-30"), 0.25,
    ),
    CustomerType(
        "occasional", 0.30, 1.5, 0.50, 1.5, 0.10, 0.08, (0.25, 0.10, 0.65),
        (0.15, 0.30, 0.15, 0.05, 0.10, 0.25), 15.0, 1.5, 0.55, 0.60, 0.6, (25, 65),
        ("2016-01-01", "2025-06-30"), 0.20,
    ),
    CustomerType(
        "new_explorer", 0.15, 7.0, 0.40, 2.0, 0.50, 0.15, (0.15, 0.75, 0.10),
        (0.35, 0.25, 0.10, 0.02, 0.15, 0.13), 22.5, 1.0, 0.98, 0.30, 3.0, (18, 28),
        ("2025-01-01", "2025-10-31"), 0.45,
    ),
    CustomerType(
        "family_shopper", 0.20, 9.0, 0.55, 4.0, 0.30, 0.10, (0.30, 0.20, 0.50),
        (0.05, 0.15, 0.30, 0.35, 0.12, 0.03), 10.0, 1.2, 0.80, 0.85, 1.2, (28, 45),
        ("2016-01-01", "2025-06-30"), 0.10,
    ),
)  # fmt: skip

# Churn hazard (per year) = base_churn_hazard(type) * exp(sum of coefficient * driver value),
# where a complaint and a late delivery count from the moment they happen (see people.py).
CHURN_DRIVERS = {
    "complaint": {
        "coefficient": 3.0,
        "description": "1 if the person complained while a customer: a 1-2 star review "
        "(reviews.csv) at the complaint's time, from which the hazard is exp(3.0) times higher",
        "prevalence": 0.15,
    },
    "discount_dependency": {
        "coefficient": 2.5,
        "description": "personal coupon propensity minus 0.3 (share of orders with a coupon)",
    },
    "late_delivery": {
        "coefficient": 2.0,
        "description": "1 if an e-shop order was delivered late while a customer "
        "(eshop_orders.status = delivered_late), from which the hazard is exp(2.0) times "
        "higher; account holders only",
        "prevalence": 0.20,
    },
    "app_engagement_trend": {
        "coefficient": -1.5,
        "description": "log-rate change per year of app sessions (negative = declining); "
        "app users only, N(0, 0.6)",
    },
}
CHURN_DRIVER_NAMES = tuple(CHURN_DRIVERS)
POST_CHURN_VISIT_FACTOR = 0.05  # browse sessions after churn keep 5% of the rate


@dataclass(frozen=True)
class Channel:
    """A marketing channel: UTM tags, session mix and planted conversion lift."""

    name: str
    utm_source: str
    utm_medium: str
    web_share: float
    app_share: float
    conversion_lift: float  # odds multiplier of a session converting vs direct traffic
    cost_per_click: float  # CNY, used for marketing_spend


CHANNELS: tuple[Channel, ...] = (
    Channel("direct", "", "", 0.30, 0.35, 1.0, 0.0),
    Channel("douyin", "douyin", "social", 0.14, 0.10, 1.3, 1.2),
    Channel("wechat", "wechat", "social", 0.12, 0.08, 1.6, 0.9),
    Channel("baidu", "baidu", "cpc", 0.14, 0.00, 1.1, 2.0),
    Channel("xiaohongshu", "xiaohongshu", "social", 0.10, 0.07, 1.8, 1.5),
    Channel("email", "email", "email", 0.08, 0.05, 2.2, 0.05),
    Channel("sms", "sms", "sms", 0.06, 0.05, 1.4, 0.08),
    Channel("app_push", "app_push", "push", 0.00, 0.20, 2.0, 0.0),
    Channel("store", "store", "qr", 0.06, 0.10, 2.5, 0.3),
)
REFERRERS = {
    "direct": "",
    "douyin": "https://www.douyin.com/",
    "wechat": "https://mp.weixin.qq.com/",
    "baidu": "https://www.baidu.com/s?wd=loupe",
    "xiaohongshu": "https://www.xiaohongshu.com/",
    "email": "",
    "sms": "",
    "app_push": "",
    "store": "",
}


@dataclass(frozen=True)
class Campaign:
    """A past randomised campaign with a planted treatment effect."""

    name: str
    channel: str
    send_date: str
    window_days: int
    treatment_share: float
    uplift: float  # probability that a treated person makes one extra order in the window
    coupon_code: str
    eligibility: str


CAMPAIGNS: tuple[Campaign, ...] = (
    Campaign("d11_sms_coupon_2024", "sms", "2024-10-25", 21, 0.5, 0.08, "D11SMS24",
             "e-shop account holders active (signed up, not churned) on the send date"),
    Campaign("app_push_618_2025", "app_push", "2025-06-01", 14, 0.5, 0.05, "APP618",
             "app users active on the send date"),
)  # fmt: skip

SHARE_DIRT = {
    "exact_duplicate_row": 0.003,
    "crm_duplicate_person": 0.04,
    "malformed_row": 0.001,
    "blank_email": 0.08,
    "blank_phone": 0.08,
    "blank_birth_date": 0.10,
    "name_typo": 0.03,
    "pinyin_name": 0.25,
    "family_phone_household": 0.25,
    "outlier_order": 0.0005,
    "foreign_currency_order": 0.003,
    "offset_timestamp_event": 0.02,
    "family_tablet_household": 0.10,
}

CITIES = (
    ("上海", "上海", "Shanghai", 0.14), ("北京", "北京", "Beijing", 0.12),
    ("广州", "广东", "Guangzhou", 0.09), ("深圳", "广东", "Shenzhen", 0.09),
    ("杭州", "浙江", "Hangzhou", 0.07), ("成都", "四川", "Chengdu", 0.07),
    ("重庆", "重庆", "Chongqing", 0.06), ("武汉", "湖北", "Wuhan", 0.06),
    ("南京", "江苏", "Nanjing", 0.05), ("西安", "陕西", "Xi'an", 0.05),
    ("苏州", "江苏", "Suzhou", 0.05), ("天津", "天津", "Tianjin", 0.04),
    ("长沙", "湖南", "Changsha", 0.04), ("郑州", "河南", "Zhengzhou", 0.03),
    ("青岛", "山东", "Qingdao", 0.02), ("厦门", "福建", "Xiamen", 0.02),
)  # fmt: skip
MALLS = ("万达广场", "万象城", "大悦城", "来福士", "银泰城", "龙湖天街")
STORES_PER_CITY = (4, 4, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1)
STORE_PHONE_STORES = 3  # stores whose own phone is typed in for walk-ins / new members

SURNAMES = (
    ("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"),
    ("杨", "Yang"), ("黄", "Huang"), ("赵", "Zhao"), ("吴", "Wu"), ("周", "Zhou"),
    ("徐", "Xu"), ("孙", "Sun"), ("马", "Ma"), ("朱", "Zhu"), ("胡", "Hu"),
    ("郭", "Guo"), ("何", "He"), ("高", "Gao"), ("林", "Lin"), ("罗", "Luo"),
    ("郑", "Zheng"), ("梁", "Liang"), ("谢", "Xie"), ("宋", "Song"), ("唐", "Tang"),
)  # fmt: skip
GIVEN = (
    ("伟", "Wei"), ("芳", "Fang"), ("娜", "Na"), ("敏", "Min"), ("静", "Jing"),
    ("丽", "Li"), ("强", "Qiang"), ("磊", "Lei"), ("军", "Jun"), ("洋", "Yang"),
    ("勇", "Yong"), ("艳", "Yan"), ("杰", "Jie"), ("娟", "Juan"), ("涛", "Tao"),
    ("明", "Ming"), ("超", "Chao"), ("秀", "Xiu"), ("霞", "Xia"), ("平", "Ping"),
    ("刚", "Gang"), ("桂", "Gui"), ("英", "Ying"), ("华", "Hua"), ("玉", "Yu"),
    ("兰", "Lan"), ("文", "Wen"), ("建", "Jian"), ("晓", "Xiao"), ("婷", "Ting"),
    ("浩", "Hao"), ("宇", "Yu"), ("欣", "Xin"), ("怡", "Yi"), ("子", "Zi"),
    ("梓", "Zi"), ("涵", "Han"), ("轩", "Xuan"), ("佳", "Jia"), ("琪", "Qi"),
)  # fmt: skip
EMAIL_DOMAINS = ("qq.com", "163.com", "126.com", "sina.com", "gmail.com", "outlook.com")
NICK_WORDS = ("爱购物", "小可爱", "shopper", "喵喵", "buyer", "阳光", "fan", "宝妈", "达人")
CRM_LEVELS = ("普通会员", "银卡会员", "金卡会员", "钻石会员")
PAYMENTS = ("微信支付", "支付宝", "银联卡", "现金")
ORDER_STATUS = ("delivered", "delivered_late", "cancelled", "refunded")
FX_CENTS_PER_CNY = {"USD": 1 / 7.2, "HKD": 1 / 0.92}

BRANDS = {
    "cosmetics": (("花西子", "Florasis"), ("完美日记", "Perfect Diary"), ("珀莱雅", "Proya")),
    "apparel": (("优衣库", "Uniqlo"), ("李宁", "Li-Ning"), ("太平鸟", "Peacebird")),
    "home": (("网易严选", "Yanxuan"), ("宜家", "IKEA"), ("苏泊尔", "Supor")),
    "baby": (("好孩子", "Goodbaby"), ("贝亲", "Pigeon"), ("飞鹤", "Feihe")),
    "snacks": (("三只松鼠", "Three Squirrels"), ("良品铺子", "Bestore"), ("百草味", "Baicaowei")),
    "electronics_accessories": (("小米", "Xiaomi"), ("绿联", "Ugreen"), ("倍思", "Baseus")),
}
PRODUCT_NOUNS = {
    "cosmetics": (("口红", "Lipstick"), ("面霜", "Face Cream"), ("精华液", "Serum"),
                  ("粉底液", "Foundation"), ("面膜", "Sheet Mask")),
    "apparel": (("T恤", "T-shirt"), ("连衣裙", "Dress"), ("羽绒服", "Down Jacket"),
                ("运动鞋", "Sneakers"), ("卫衣", "Hoodie")),
    "home": (("收纳盒", "Storage Box"), ("床单", "Bed Sheet"), ("电饭煲", "Rice Cooker"),
             ("毛巾", "Towel"), ("台灯", "Desk Lamp")),
    "baby": (("纸尿裤", "Diapers"), ("奶瓶", "Baby Bottle"), ("婴儿推车", "Stroller"),
             ("奶粉", "Infant Formula"), ("湿巾", "Baby Wipes")),
    "snacks": (("坚果礼盒", "Nut Gift Box"), ("牛肉干", "Beef Jerky"), ("薯片", "Potato Chips"),
               ("果干", "Dried Fruit"), ("饼干", "Cookies")),
    "electronics_accessories": (("充电宝", "Power Bank"), ("数据线", "USB Cable"),
                                ("蓝牙耳机", "Bluetooth Earbuds"), ("手机壳", "Phone Case"),
                                ("充电器", "Charger")),
}  # fmt: skip
CATEGORY_PRICE = {  # (median CNY, log-sd) of list prices
    "cosmetics": (180.0, 0.6),
    "apparel": (220.0, 0.6),
    "home": (120.0, 0.7),
    "baby": (160.0, 0.6),
    "snacks": (45.0, 0.5),
    "electronics_accessories": (110.0, 0.6),
}
SKUS_PER_NOUN = 8  # variants (sizes/colours) per brand x noun

REVIEW_TEMPLATES = {  # sentiment -> (lang, text); rating ranges in REVIEW_RATINGS
    "positive": (
        ("zh", "质量很好，非常满意，会回购"), ("zh", "物流很快，包装精美，推荐"),
        ("zh", "性价比高，家人都喜欢"), ("en", "Great quality, will buy again"),
        ("en", "Fast delivery and lovely packaging"),
    ),
    "neutral": (
        ("zh", "还可以，和描述差不多"), ("zh", "一般般，价格有点贵"),
        ("en", "It is okay, nothing special"), ("en", "Average product for the price"),
    ),
    "negative": (
        ("zh", "质量太差了，非常失望"), ("zh", "物流太慢，客服也不回复"),
        ("zh", "收到的商品有破损，要求退货"), ("en", "Terrible quality, very disappointed"),
        ("en", "Delivery was late and support never answered"),
    ),
}  # fmt: skip
REVIEW_RATINGS = {"positive": (4, 5), "neutral": (3, 3), "negative": (1, 2)}
#: A follow-up review (追评), written on a line of its own under the first one: the review's
#: text holds a line break, so its quoted CSV value spans two lines.  Same sentiment.
REVIEW_FOLLOW_UPS = {  # sentiment -> {lang: text}
    "positive": {"zh": "追评：用了一个月，依然很好", "en": "Update: still great after a month"},
    "neutral": {"zh": "追评：用久了感觉一般", "en": "Update: fine after a month, no more"},
    "negative": {"zh": "追评：联系客服后仍未解决", "en": "Update: support still has not replied"},
}
REVIEW_FOLLOW_UP_SHARE = 0.05  # share of reviews with a follow-up


def type_names() -> list[str]:
    return [t.name for t in CUSTOMER_TYPES]


def params_dict() -> dict[str, object]:
    """All planted parameters, JSON-ready."""
    return {
        "customer_types": [asdict(t) for t in CUSTOMER_TYPES],
        "categories": list(CATEGORIES),
        "churn": {
            "model": "hazard per year = base_churn_hazard(type) * exp(sum coefficient*driver); "
            "churn time = activity start + Exponential(hazard); churned if before the as-of date",
            "drivers": CHURN_DRIVERS,
            "post_churn_visit_factor": POST_CHURN_VISIT_FACTOR,
        },
        "channels": [asdict(c) for c in CHANNELS],
        "channel_model": "within a platform, a purchase session takes channel c with weight "
        "share_c*lift_c and a browse session with weight share_c, so the odds that a session of "
        "channel c converts are proportional to conversion_lift (direct = 1)",
        "campaigns": [asdict(c) for c in CAMPAIGNS],
        "dirt_shares": SHARE_DIRT,
    }
