"""The third generator: a year of a city's hospital booking records, written from outside.

It writes the records a hospital's information centre would hand to investigators
(`bookings.csv`, `payments.csv`, `access.csv`, in the records exchange format) together with
the truth (`labels.csv`, and `rings.csv`, one row per planted ring). `fairslot investigate`
is scored on these files and never tuned on them. The generator was written from the attack
catalogue, the records contract and the police reports alone, without reading the project's
own generators or its detector, so that it carries a different picture of the world.

The world (scale 1.0; people, slots and activity scale linearly, ring sizes with sqrt(scale))
---------------------------------------------------------------------------------------------
- One city, four hospitals, 2025-01-01 to 2025-12-31 (local time, UTC+8). Bookings made from
  mid-December 2024 on; sessions up to mid-January 2026 (their bookings are still `booked` or
  `paid` at the export's end). The Spring Festival and National Day weeks run few clinics.
  - H01 provincial general hospital: releases at 07:30, 14 days ahead, pay when booking.
  - H02 children's hospital: 08:00, 7 days ahead, pay online or at the visit.
  - H03 cancer hospital: 15:00, 15 days ahead, pay when booking, a slider check before booking;
    its pancreas expert (398 yuan) releases at 20:00 instead.
  - H04 traditional-medicine hospital: 09:00, 10 days ahead, pay online or at the visit.
  92 doctors: 10 hot experts (every online slot gone within seconds of release; some sessions
  get one to three extra slots released at an irregular hour the day before), 11 warm experts
  (sold out within hours), the rest ordinary doctors who never run out. The phone, window,
  kiosk and referral channels book from their own quota. Slots are half-hour periods;
  `session_start` is the period's start. First come, first served; one booking per patient
  per session; at most five patients on an account at a time; a cancelled slot goes back on
  sale at once, and people who keep refreshing (and some rings' bots) take it.
- About 6,500 genuine accounts and 18,000 patients. People are born in years fitting their
  role; names follow the generation and sex (建国/秀英, 伟/静, 子轩/梓涵); ID numbers carry region,
  birth date and a valid checksum; phones carry real carrier prefixes. Households use a home
  broadband address that changes every few weeks, or their carrier's shared mobile exits.
  Genuine no-shows about 6 %, cancellations about 9 %, some forget to pay and are cancelled by
  the platform after 15 minutes, a few sessions are suspended by the hospital (all bookings
  `refunded`, most patients rebook). People who lose the race for a hot expert retry at later
  releases, then give up: some take an ordinary doctor, some buy from a scalper.
- Access records (about ten per booking): logins with SMS codes, department and schedule views,
  refreshing before a release, binding a patient to the account, the slider check at H03,
  booking, paying, cancelling, checking the queue at the clinic, idle looking around, refused
  attempts (409) and rate-limited polling (429), and internet scanners probing the site.
- The look-alikes sit at the centre of the genuine population; `LOOKALIKE_KINDS` lists them,
  and each labelled entity names its kind in `role` (`hard_case:<kind>`):
  call_centre, kiosk, window, referral_desk (institutional accounts booking for hundreds of
  distinct patients from fixed addresses and workstations, on the phone/window/other channel),
  family (one phone and one payer for three generations; an elderly parent booked from several
  children's accounts), family_swap (cancel and rebook the same slot for another relative),
  multi_account_device (one phone logged into a parent's account too), carer (community
  helpers booking and often paying for a dozen elderly neighbours), escort_service (licensed
  accompanying services booking at ordinary hours for their clients), chronic (follow-ups every
  four to eight weeks), comorbid (one elderly identity across three or four related departments),
  fast_typist (practised people booking hot slots one to five seconds after release),
  slot_pickup (people who refresh all day and take returned slots within seconds),
  friends_grab (a patient's relatives and friends all trying for the same slot at release),
  self_rebook (people who cancel and rebook for themselves), id_typo (an honest mistyped ID
  number), foreign_document (passports, home-return permits, foreigners' permanent residence
  numbers), minority_name (long names, names with a middle dot written several ways),
  virtual_operator_phone (170/171/162/165/167 numbers of ordinary people), cgnat (carrier exits,
  each shared by hundreds of accounts), hospital_wifi (the hall's Wi-Fi, where people book
  today's clinic and check their queue), campus_nat, cloud_desktop (a company's cloud desktops
  leaving from a data-centre address), scalper_customer (real patients who paid a scalper:
  their identities, accounts and payers; never ring members).
- Rings (`RING_KINDS`, T1-T9 of the attack catalogue; 24 at scale 1.0, 11 at scale 0.2, at
  least one of each kind at any scale): api_bot (T1, software calling the booking API a few
  hundredths of a second after release), auto_clicker (T2, emulators driving the app at about
  0.3 s a step), virtual_number_farm (T3, dozens to a hundred accounts on virtual numbers
  holding slots under invented patients), hold_launder (T4, holds under members' own
  identities, cancelled and at once retaken for a buyer), identity_spread (T5, a few identities
  holding slots across unrelated departments and hospitals), payment_hub (T6, one payment
  account, or a stack of bank cards, paying for hundreds of patients), ip_fanout (T7, one line
  or one small block of addresses booking many ID numbers within seconds), family_crowd (T8, a
  dozen to two dozen relatives grabbing by hand at the release instants they have learned,
  the irregular extra releases included), broker_tiers (T9, a developer, a first-level scalper
  and second-level touts posing as 陪诊; one such ring books inside the buyers' own accounts).
  Each ring targets a few hot or warm doctors, is active for some months, takes buyers' orders
  (real patients who failed to book, or out-of-town patients met in corridors and online), and
  serves them either directly at the next release or by laundering a held slot (cancel the
  hold, rebook the same slot for the buyer). Unsold holds are cancelled a day or two ahead
  (fee refunded) or left as no-shows.
  Hiding is drawn per ring: sleeper accounts registered months before use and kept alive,
  residential proxies (a different ordinary-looking address for each booking; these addresses
  are not labelled, they belong to strangers), checksum-valid fabricated identities with
  plausible names, many payers instead of one hub, slow bots pausing like people, bookings made
  inside the buyers' own accounts with the buyers' own money, and ordinary camouflage visits.
  `rings.csv` lists each ring's kind, tactics and hiding.
- Labels: ring members are only what the ring controls (its accounts, the identities it
  fabricated or used to hold slots, its payers, its devices, its own fixed addresses, its
  phones), with a role: developer, hub (first-level scalper and his payment account), holder
  (accounts and members' own identities that hold slots), reseller (second-level touts posing
  as 陪诊), broker and buyer_facing (a commander with software and the touts who find buyers),
  member, fake_identity (fabricated identities), bot_host (the ring's machines and fixed
  addresses), virtual_number (its virtual phone numbers). Shared infrastructure, strangers'
  proxy addresses and buyers are never ring members. Entities absent from `labels.csv` are
  genuine; only entities that occur in a well-formed record are labelled.
- Records are dirty: duplicated rows, malformed timestamps, empty required fields, a few rows
  with extra columns, one hospital's early-year rows without an offset, some card payments in
  UTC (`Z`), landline and short phone numbers, a name's middle dot typed several ways.

Run: `python tests/investigation/thirdgen.py OUT --seed 1 --scale 1.0`. Same seed, same scale:
byte-identical files.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import datetime as dt
import heapq
import math
import pathlib
import random
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

__all__ = ["LOOKALIKE_KINDS", "RING_KINDS", "generate"]

RING_KINDS = (
    "api_bot",
    "auto_clicker",
    "virtual_number_farm",
    "hold_launder",
    "identity_spread",
    "payment_hub",
    "ip_fanout",
    "family_crowd",
    "broker_tiers",
)

LOOKALIKE_KINDS = (
    "call_centre",
    "kiosk",
    "window",
    "referral_desk",
    "family",
    "family_swap",
    "multi_account_device",
    "carer",
    "escort_service",
    "chronic",
    "comorbid",
    "fast_typist",
    "slot_pickup",
    "friends_grab",
    "self_rebook",
    "id_typo",
    "foreign_document",
    "minority_name",
    "virtual_operator_phone",
    "cgnat",
    "hospital_wifi",
    "campus_nat",
    "cloud_desktop",
    "scalper_customer",
)

BOOKING_COLUMNS = (
    "booking_id", "created_at", "account_id", "patient_id_number", "patient_name",
    "patient_phone", "hospital_id", "department", "doctor_id", "session_start", "released_at",
    "channel", "ip", "device_id", "status", "cancelled_at", "fee",
)
PAYMENT_COLUMNS = ("payment_id", "booking_id", "paid_at", "payer_account", "amount", "refunded_at")
ACCESS_COLUMNS = ("ts", "ip", "account_id", "device_id", "method", "path", "status", "user_agent")
LABEL_COLUMNS = ("entity_type", "entity_id", "ring_id", "role")
RING_COLUMNS = ("ring_id", "kind", "tactics", "hiding", "accounts", "targets", "active_from",
                "active_to")

# ------------------------------------------------------------------------------ time
DAY = 86400.0
HOUR = 3600.0
MINUTE = 60.0
_EPOCH = dt.datetime(2025, 1, 1)          # local wall clock, UTC+8, no daylight saving
_EPOCH_WEEKDAY = _EPOCH.weekday()
FIRST_DAY = -16                           # first release day simulated
LAST_SESSION_DAY = 380                    # sessions run into January 2026
END = 365 * DAY                           # the export is taken at 2026-01-01 00:00
HOLIDAYS = (range(27, 35), range(273, 280))   # Spring Festival, National Day


_DATES: dict[int, str] = {}


def _stamp(t: float, style: str = "+08", *, ms: bool = True) -> str:
    """ISO 8601 local time with the +08:00 offset, in UTC with `Z`, or with no offset."""
    if style == "Z":
        t -= 8 * HOUR
    day = math.floor(t / DAY)
    date = _DATES.get(day)
    if date is None:
        date = _DATES[day] = (_EPOCH + dt.timedelta(days=day)).date().isoformat()
    millis = int((t - day * DAY) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    text = f"{date}T{hours:02d}:{minutes:02d}:{seconds:02d}"
    if ms:
        text += f".{millis:03d}"
    if style == "+08":
        return text + "+08:00"
    if style == "Z":
        return text + "Z"
    return text


def _weekday(day: int) -> int:
    return (_EPOCH_WEEKDAY + day) % 7


def _day_of(t: float) -> int:
    return math.floor(t / DAY)


# ------------------------------------------------------------------------------ people
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏"
    "吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱"
    "严覃武戴莫孔向汤"
)
_COMPOUND_SURNAMES = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "慕容")
# Given names by generation, (women's, men's).
_GIVEN_OLD = (
    ("秀英", "桂英", "秀兰", "玉兰", "桂兰", "淑珍", "凤英", "海燕", "红梅", "丽华", "玉珍", "淑英",
     "春梅", "秀珍", "金凤", "桂芳", "玉梅", "翠花", "素芬", "兰英", "爱华"),
    ("建国", "建华", "国强", "志强", "德明", "文华", "国华", "振华", "明华", "卫东", "建军", "福生",
     "长林", "宝山", "永红", "爱国", "国平"),
)
_GIVEN_MID_ONE = ("芳娜敏静丽艳娟霞燕玲婷晶颖丹倩琳雪慧",
                  "伟强磊军洋勇杰涛明超平刚辉鹏华飞斌宇浩凯峰亮")
_GIVEN_MID_TWO = (
    ("丽娟", "春燕", "晓燕", "文静", "雪梅", "小红", "丽萍", "红霞", "晓丽", "玉洁", "慧敏",
     "海英"),
    ("晓东", "海涛", "建平", "志刚", "俊杰", "晓明", "国庆", "海峰", "伟东", "建新", "永刚", "立新",
     "思远"),
)
_GIVEN_YOUNG = (
    ("梓涵", "一诺", "欣怡", "雨桐", "子涵", "诗涵", "梓萱", "语桐", "若汐", "依诺", "佳怡", "可馨",
     "芷若", "安琪"),
    ("子轩", "浩宇", "宇轩", "俊熙", "沐宸", "浩然", "子墨", "奕辰", "锦程", "梓睿", "一诺",
     "思远"),
)
_MINORITY = {
    "uyghur": (("阿依古丽", "古丽娜尔", "热依拉", "帕提古丽", "迪丽努尔", "阿娜尔古丽"),
               ("买买提", "艾力", "阿不都热合曼", "吐尔逊", "艾克拜尔", "努尔麦麦提", "阿布力孜")),
    "kazakh": (("阿依努尔", "古丽巴哈尔"), ("努尔兰", "叶尔兰", "别克", "哈斯木汗")),
    "tibetan": (("次仁卓玛", "格桑德吉", "央金拉姆", "索朗旺姆", "白玛央宗"),
                ("扎西次仁", "洛桑丹增", "尼玛扎西", "达瓦次仁", "旦增尼玛")),
    "mongol": (("乌兰图雅", "其木格", "斯琴高娃", "萨仁高娃"),
               ("巴特尔", "额尔敦巴雅尔", "呼和巴日", "敖日格勒", "孟和吉日嘎拉")),
    "yi": (("阿果", "曲比阿依"), ("吉克曲布", "沙马阿果", "阿牛木呷", "阿苏拉则")),
}
_MINORITY_REGIONS = {
    "uyghur": ("650102", "650103", "652801", "653101", "652901"),
    "kazakh": ("654002", "654301"),
    "tibetan": ("540102", "542621", "513321"),
    "mongol": ("150102", "150203", "152502", "150602"),
    "yi": ("513401", "513431", "532301"),
}
_DOTS = ("·", "·", "·", "•", "・", ".", "．")   # how people actually type the middle dot
_FOREIGN_NAMES = (
    "JOHN SMITH", "MARIA GARCIA", "KIM MINJUN", "NGUYEN VAN AN", "TANAKA YUKI", "PARK JIHOON",
    "DAVID MILLER", "约翰·史密斯", "玛丽亚·加西亚", "陈家明", "林志豪", "黄嘉欣", "OLGA IVANOVA",
    "ALI HASSAN", "SITI AMINAH", "李世贤",
)
_LOCAL_REGIONS = ("320102", "320104", "320105", "320106", "320111", "320113", "320114", "320115",
                  "320116", "320117", "320118")
_PROVINCE_REGIONS = ("320205", "320311", "320402", "320506", "320602", "320703", "320812",
                     "320902", "321002", "321102", "321202", "321302", "321081", "320921")
_OUT_REGIONS = ("340102", "340104", "341602", "341203", "410102", "410105", "411302", "370602",
                "370102", "330106", "330302", "360102", "420106", "430104", "510107", "210102",
                "210302", "211402", "440106", "350102", "130102", "140105", "610113", "500103",
                "230103", "220104", "620102", "520102")
_COUNTY_REGIONS = ("320124", "320125", "321183", "320481", "341181", "341124")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_char(body17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of a resident ID number's first 17 digits."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(body17, _ID_WEIGHTS, strict=True)) % 11]


# Carrier prefixes. Virtual operators resell one of the three networks' capacity.
_PREFIXES = (
    ("134 135 136 137 138 139 147 150 151 152 157 158 159 178 182 183 184 187 188 195 198", 0),
    ("130 131 132 145 155 156 166 175 176 185 186 196", 1),
    ("133 149 153 173 177 180 181 189 191 193 199", 2),
)
_CARRIER_PREFIXES = [p.split() for p, _ in _PREFIXES]
_VIRTUAL_PREFIXES = ("170", "171", "162", "165", "167")

# Home broadband and carrier mobile exits (first two octets).
_HOME_NETS = ("180.110", "114.222", "58.212", "121.229", "49.77", "112.2", "221.6", "36.149",
              "120.244", "111.113", "117.89", "222.94", "61.155", "218.94", "183.206", "39.171")
_CGNAT_NETS = (("39.144", "223.104", "117.136", "112.17"), ("112.97", "112.96", "42.88"),
               ("223.160", "106.38", "27.19"))
_CLOUD_NETS = ("47.96", "47.100", "120.55", "101.132", "49.232", "81.68", "106.55", "139.9",
               "8.134", "123.57")
_SCANNER_NETS = ("45.148", "185.220", "193.32", "104.248", "167.94", "89.248")

_APP = "HospitalApp"
_ANDROID_MODELS = ("PGT-AN10", "V2227A", "PHB110", "2211133C", "ELZ-AN00", "SM-S9180",
                   "ALN-AL00", "V2324A", "PJZ110", "23116PN5BC", "NOH-AN01", "M2102K1C")


def _android_ua(rng: random.Random, model: str | None = None, *, wechat: bool = False,
                android: int | None = None) -> str:
    version = android if android is not None else rng.choice((10, 11, 12, 13, 13, 14, 14, 15))
    chrome = rng.choice(("109.0.5414.86", "116.0.0.0", "120.0.6099.144", "126.0.6478.71"))
    base = (f"Mozilla/5.0 (Linux; Android {version}; {model or rng.choice(_ANDROID_MODELS)} "
            f"Build/{rng.choice(('HUAWEIPGT-AN10', 'TP1A.220624.014', 'UKQ1.230804.001'))}; wv) "
            f"AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/{chrome} "
            f"Mobile Safari/537.36")
    if wechat:
        return base + f" XWEB/1300{rng.randint(10, 99)} MMWEBSDK/20240301 MicroMessenger/8.0." \
                      f"{rng.randint(40, 50)} miniProgram"
    return base + f" {_APP}/4.{rng.randint(1, 3)}.{rng.randint(0, 9)}"


def _ios_ua(rng: random.Random, *, wechat: bool = False) -> str:
    version = rng.choice(("16_7", "17_1", "17_5", "17_6", "18_0", "18_1", "18_3"))
    base = (f"Mozilla/5.0 (iPhone; CPU iPhone OS {version} like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Mobile/15E148")
    if wechat:
        return base + f" MicroMessenger/8.0.{rng.randint(40, 50)}(0x18003{rng.randint(100, 999)})" \
                      " NetType/WIFI Language/zh_CN miniProgram"
    return base + f" {_APP}/4.{rng.randint(1, 3)}.{rng.randint(0, 9)}"


def _desktop_ua(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.55:
        return ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                f"Chrome/{rng.choice(('118', '122', '126', '130'))}.0.0.0 Safari/537.36")
    if pick < 0.75:
        return ("Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/108.0.5359.95 Safari/537.36 QIHU 360SE")
    if pick < 0.9:
        return ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                "(KHTML, like Gecko) Version/17.4 Safari/605.1.15")
    return ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0")


# ------------------------------------------------------------------------------ hospitals
@dataclass(frozen=True)
class _HospitalSpec:
    hospital_id: str
    release_clock: float      # seconds after midnight
    horizon: int              # days ahead
    prepay: bool              # must pay within 15 minutes of booking
    captcha: bool
    weekend: bool
    departments: tuple[tuple[str, str, int, tuple[str, ...]], ...]  # name, audience, n, tiers


_HOSPITALS = (
    _HospitalSpec("H01", 7.5 * HOUR, 14, True, False, False, (
        ("心血管内科", "elder", 4, ("hot", "warm")), ("内分泌科", "adult", 3, ("warm",)),
        ("消化内科", "adult", 3, ("warm",)), ("神经内科", "elder", 3, ("hot",)),
        ("风湿免疫科", "adult", 2, ("hot",)), ("肾内科", "elder", 2, ()),
        ("呼吸与危重症医学科", "adult", 3, ()), ("骨科", "adult", 3, ("warm",)),
        ("眼科", "elder", 3, ("warm",)), ("皮肤科", "any", 2, ()), ("妇科", "female", 3, ()),
        ("泌尿外科", "male", 2, ()), ("精神心理科", "adult", 2, ()))),
    _HospitalSpec("H02", 8.0 * HOUR, 7, False, False, True, (
        ("小儿呼吸科", "child", 4, ("hot", "warm")), ("小儿消化科", "child", 2, ()),
        ("发育行为科", "child", 2, ("hot",)), ("小儿神经科", "child", 2, ("warm",)),
        ("儿童保健科", "child", 3, ()), ("小儿内分泌科", "child", 2, ()),
        ("儿童眼科", "child", 2, ()), ("小儿皮肤科", "child", 2, ()))),
    _HospitalSpec("H03", 15.0 * HOUR, 15, True, True, False, (
        ("肝胆胰外科", "cancer", 3, ("hot",)), ("乳腺外科", "cancer_f", 3, ("hot",)),
        ("胸外科", "cancer", 3, ("hot",)), ("肿瘤内科", "cancer", 4, ("warm",)),
        ("放疗科", "cancer", 2, ()), ("头颈外科", "cancer", 2, ()),
        ("妇科肿瘤科", "cancer_f", 2, ("warm",)), ("中西医结合科", "cancer", 2, ()))),
    _HospitalSpec("H04", 9.0 * HOUR, 10, False, False, True, (
        ("中医内科", "adult", 3, ("hot",)), ("脾胃病科", "adult", 3, ("hot",)),
        ("针灸科", "any", 3, ()), ("推拿科", "adult", 2, ()), ("中医妇科", "female", 2, ("warm",)),
        ("中医皮肤科", "any", 2, ()), ("肺病科", "elder", 2, ("warm",)))),
)
_HOT_FEES = {"H01": (100.0, 80.0, 60.0), "H02": (50.0, 80.0), "H03": (398.0, 300.0, 100.0),
             "H04": (300.0, 70.0)}
_AM = tuple(8 * HOUR + 30 * MINUTE * k for k in range(7))
_PM = tuple(13.5 * HOUR + 30 * MINUTE * k for k in range(6))


# ------------------------------------------------------------------------------ model
@dataclass(eq=False)
class _Person:
    id_number: str
    name: str
    phone: str
    birth_year: int
    female: bool
    carrier: int
    local: bool = True
    cancer: bool = False
    payer: str = ""
    typo_id: str = ""
    minority: bool = False
    foreign: bool = False
    landline: str = ""


@dataclass(eq=False)
class _Device:
    device_id: str
    channel: str
    ua: str


@dataclass(eq=False)
class _Account:
    account_id: str
    owner: _Person
    patients: list[_Person]
    devices: list[_Device]
    payers: list[str]
    household: int
    kind: str
    registered_at: float
    overlay: str = ""              # campus or cloud-desktop address used on weekdays
    bound: list[str] = field(default_factory=list)
    last_login: float = -1e12
    ring: _Ring | None = None
    fixed_ips: tuple[str, ...] = ()
    activity: float = 1.0


@dataclass(eq=False)
class _Doctor:
    doctor_id: str
    hospital: _HospitalSpec
    department: str
    dept_code: str
    audience: str
    tier: str
    fee: float
    release_clock: float
    sessions: list[_Session] = field(default_factory=list)
    days: list[int] = field(default_factory=list)


@dataclass(eq=False)
class _Session:
    doctor: _Doctor
    day: int
    start: float
    periods: tuple[float, ...]
    released_at: float
    capacity: int
    free: list[float] = field(default_factory=list)
    patients: set[str] = field(default_factory=set)
    extra_at: float = 0.0
    extra_n: int = 0
    suspended_at: float = 0.0
    bookings: list[_Booking] = field(default_factory=list)


@dataclass(eq=False)
class _Payment:
    payment_id: str
    paid_at: float
    payer: str
    amount: float
    refunded_at: float | None = None


@dataclass(eq=False)
class _Booking:
    booking_id: str
    created: float
    account: _Account
    patient_id: str
    name: str
    phone: str
    doctor: _Doctor
    slot: float
    released_at: float | None
    channel: str
    ip: str
    device: str
    session: _Session | None
    cancelled: float | None = None
    payment: _Payment | None = None
    visit_payer: str = ""
    no_show: bool = False
    refunded_by_hospital: bool = False
    ring: _Ring | None = None
    sold: bool = False


@dataclass(eq=False)
class _Order:
    buyer: _Person
    account: _Account | None
    reseller: _Account | None
    doctor: _Doctor
    arrived: float
    done: bool = False


@dataclass(eq=False)
class _PoolEntry:
    accounts: list[_Account]
    patient: _Person
    doctor: _Doctor
    start: float
    speed: str                    # fast, prepared, casual, picker
    max_fails: int
    fails: int = 0
    done: bool = False


@dataclass(eq=False)
class _Ring:
    rid: str
    kind: str
    tactics: tuple[str, ...]
    hiding: tuple[str, ...]
    targets: list[_Doctor]
    start: float
    end: float
    speed: str                    # api, clicker, slow, hand
    direct: bool
    hold: bool
    max_grab: int
    hold_cap: int
    p_active: float
    pay: str                      # hub, many, buyer, reseller, member
    phone_policy: str             # buyer, ring
    orders_per_week: float
    accounts: list[_Account] = field(default_factory=list)
    hold_ids: list[_Person] = field(default_factory=list)
    payers: list[str] = field(default_factory=list)
    hub_payer: str = ""
    ips: list[str] = field(default_factory=list)
    devices: list[_Device] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    resellers: list[_Account] = field(default_factory=list)
    proxy: bool = False
    cgnat: bool = False
    in_buyer_account: bool = False
    rebook_other_account: bool = False
    launder_gap: tuple[float, float] = (0.05, 0.6)
    polls: bool = False
    bot_ua: str = ""
    buyer_pool: list[tuple[_Person, _Account | None]] = field(default_factory=list)
    pending: dict[str, deque[_Order]] = field(default_factory=dict)
    waiting: dict[str, deque[_Order]] = field(default_factory=dict)
    holds: dict[str, list[_Booking]] = field(default_factory=dict)
    use: dict[tuple[str, int], int] = field(default_factory=dict)
    cursor: int = 0
    home_of: dict[str, int] = field(default_factory=dict)


_Access = tuple[float, str, str, str, str, str, int, str]


# ------------------------------------------------------------------------------ the world
class _World:
    """Everything one run builds: catalogue, people, rings, and the records they leave."""

    def __init__(self, seed: int, scale: float) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.seed = seed
        self.scale = scale
        self.rscale = max(0.3, math.sqrt(scale))
        self.rng = random.Random(f"thirdgen:{seed}:{scale}")
        self.used: set[str] = set()
        self.bookings: list[_Booking] = []
        self.access: list[_Access] = []
        self.labels: dict[tuple[str, str], tuple[str, str]] = {}
        self.households = 0
        self.home_ips: dict[tuple[int, int], str] = {}
        self.events: list[tuple[float, int, Callable[[float], None]]] = []
        self.event_seq = 0
        self.rings: list[_Ring] = []
        self.accounts: list[_Account] = []
        self.audience: dict[str, list[tuple[_Account, _Person]]] = {}
        self.pool: dict[str, list[_PoolEntry]] = {}
        self.rings_for: dict[str, list[_Ring]] = {}
        self.cgnat = [[f"{net}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"
                       for net in nets for _ in range(max(3, round(6 * scale)))]
                      for nets in _CGNAT_NETS]
        for pool in self.cgnat:
            for ip in pool:
                self.label("ip", ip, "", "hard_case:cgnat")
        self.wifi: dict[str, list[str]] = {}
        self.hospital_fixed: dict[str, str] = {}
        for spec in _HOSPITALS:
            self.wifi[spec.hospital_id] = [self.new_ip(("58.213", "218.2")) for _ in range(3)]
            for ip in self.wifi[spec.hospital_id]:
                self.label("ip", ip, "", "hard_case:hospital_wifi")
            self.hospital_fixed[spec.hospital_id] = self.new_ip(("58.213", "218.2"))
        self.campus = [self.new_ip(("202.119", "210.28")) for _ in range(2)]
        for ip in self.campus:
            self.label("ip", ip, "", "hard_case:campus_nat")
        self.cloud_desktop = [self.new_ip(_CLOUD_NETS) for _ in range(2)]
        for ip in self.cloud_desktop:
            self.label("ip", ip, "", "hard_case:cloud_desktop")
        self.doctors: list[_Doctor] = []
        self.doctor_cache: dict[tuple[object, ...], list[_Doctor]] = {}
        self.by_dept: dict[tuple[str, str], list[_Doctor]] = {}
        self._build_catalogue()

    # ------------------------------------------------------------------ identifiers
    def unique(self, make: Callable[[], str]) -> str:
        for _ in range(1000):
            value = make()
            if value not in self.used:
                self.used.add(value)
                return value
        raise RuntimeError("identifier space exhausted")

    def new_ip(self, nets: Sequence[str]) -> str:
        rng = self.rng
        return self.unique(lambda: f"{rng.choice(nets)}.{rng.randint(0, 255)}."
                                   f"{rng.randint(1, 254)}")

    def new_device(self, channel: str, ua: str) -> _Device:
        rng = self.rng
        return _Device(self.unique(lambda: f"{rng.getrandbits(64):016x}"), channel, ua)

    def new_account_id(self) -> str:
        rng = self.rng
        return self.unique(lambda: f"u{rng.randint(100_000_000, 999_999_999)}")

    def new_payer(self, method: str | None = None) -> str:
        rng = self.rng
        method = method or rng.choice(("wechat", "wechat", "wechat", "alipay", "alipay", "card"))
        if method == "wechat":
            alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
            return self.unique(lambda: "wechat:o" + "".join(rng.choice(alphabet)
                                                             for _ in range(27)))
        if method == "alipay":
            return self.unique(lambda: f"alipay:2088{rng.randint(10**11, 10**12 - 1)}")
        return self.unique(lambda: f"card:62{rng.choice(('17', '22', '25', '84', '28'))}"
                                   f"{rng.randint(10**11, 10**12 - 1)}")

    def new_phone(self, carrier: int | None = None, *, virtual: bool = False) -> tuple[str, int]:
        rng = self.rng
        network = carrier if carrier is not None else rng.choices((0, 1, 2), (56, 24, 20))[0]
        prefixes = _VIRTUAL_PREFIXES if virtual else _CARRIER_PREFIXES[network]
        phone = self.unique(lambda: rng.choice(prefixes) + f"{rng.randint(0, 99_999_999):08d}")
        return phone, network

    def id_number(self, region: str, birth_year: int, female: bool) -> str:
        rng = self.rng

        def make() -> str:
            birth = dt.date(birth_year, 1, 1) + dt.timedelta(days=rng.randint(0, 364))
            order = rng.randint(0, 499) * 2 + (0 if female else 1)
            body = f"{region}{birth:%Y%m%d}{order:03d}"
            return body + id_check_char(body)

        return self.unique(make)

    def typo_of(self, id_number: str) -> str:
        """An honest slip: one digit mistyped or two neighbours swapped; the checksum fails."""
        rng = self.rng
        for _ in range(50):
            digits = list(id_number)
            if rng.random() < 0.5:
                k = rng.randint(6, 15)
                digits[k], digits[k + 1] = digits[k + 1], digits[k]
            else:
                k = rng.choice((3, 4, 5, 9, 12, 13, 14, 15))
                digits[k] = str((int(digits[k]) + rng.randint(1, 9)) % 10)
            typo = "".join(digits)
            if typo != id_number and id_check_char(typo[:17]) != typo[17] and typo not in self.used:
                self.used.add(typo)
                return typo
        return id_number

    def foreign_document(self, birth_year: int, female: bool) -> str:
        rng = self.rng
        pick = rng.random()
        if pick < 0.3:
            return self.unique(lambda: f"E{rng.randint(0, 99_999_999):08d}")
        if pick < 0.42:
            return self.unique(lambda: f"E{rng.choice('ABCDEFGH')}{rng.randint(0, 9_999_999):07d}")
        if pick < 0.57:
            return self.unique(lambda: f"{rng.choice('HM')}{rng.randint(0, 99_999_999):08d}")
        if pick < 0.68:
            return self.unique(lambda: f"{rng.randint(0, 99_999_999):08d}")
        if pick < 0.85:
            return self.unique(lambda: rng.choice(("M", "X", "TR", "PA", "G", "5"))
                               + f"{rng.randint(0, 9_999_999):07d}")
        # Foreigners' permanent residence card (2023 format): 18 digits starting with 9.
        return self.id_number(f"9{rng.randint(11, 65)}{rng.randint(100, 899)}", birth_year,
                              female)

    # ------------------------------------------------------------------ people
    def given_name(self, birth_year: int, female: bool) -> str:
        rng = self.rng
        k = 0 if female else 1
        if birth_year < 1962:
            return rng.choice(_GIVEN_OLD[k])
        if birth_year < 2005:
            roll = rng.random()
            if roll < 0.45:
                return rng.choice(_GIVEN_MID_ONE[k])
            if roll < 0.75:
                return rng.choice(_GIVEN_MID_TWO[k])
            return "".join(rng.sample(_GIVEN_MID_ONE[k], 2))
        return rng.choice(_GIVEN_YOUNG[k])

    def person(self, *, birth_year: int | None = None, female: bool | None = None,
               origin: str = "local", phone: bool = True, surname: str | None = None,
               cancer: bool = False, traits: bool = True) -> _Person:
        rng = self.rng
        year = birth_year if birth_year is not None else rng.randint(1945, 2004)
        is_female = female if female is not None else rng.random() < 0.5
        kind = "han"
        if traits:
            roll = rng.random()
            if roll < 0.03:
                kind = "minority"
            elif roll < 0.037 and year < 2010:
                kind = "foreign"
        if kind == "minority":
            group = rng.choice(tuple(_MINORITY))
            women, men = _MINORITY[group]
            name = rng.choice(women if is_female else men)
            if group in ("uyghur", "kazakh"):
                name = name + "·" + rng.choice(_MINORITY[group][1])
            id_number = self.id_number(rng.choice(_MINORITY_REGIONS[group]), year, is_female)
        elif kind == "foreign":
            name = rng.choice(_FOREIGN_NAMES)
            id_number = self.foreign_document(year, is_female)
        else:
            family = surname or (rng.choice(_COMPOUND_SURNAMES) if rng.random() < 0.004
                                 else rng.choice(_SURNAMES))
            name = family + self.given_name(year, is_female)
            if origin == "local":
                region = rng.choice(_LOCAL_REGIONS if rng.random() < 0.7 else _PROVINCE_REGIONS)
            elif origin == "county":
                region = rng.choice(_COUNTY_REGIONS)
            else:
                region = rng.choice(_OUT_REGIONS + _PROVINCE_REGIONS)
            id_number = self.id_number(region, year, is_female)
        number, carrier = "", rng.choices((0, 1, 2), (56, 24, 20))[0]
        virtual = traits and rng.random() < 0.035
        if phone:
            number, carrier = self.new_phone(virtual=virtual)
            if virtual:
                self.label("phone", number, "", "hard_case:virtual_operator_phone")
        someone = _Person(id_number, name, number, year, is_female, carrier,
                          local=origin == "local", cancer=cancer,
                          minority=kind == "minority", foreign=kind == "foreign")
        if someone.minority:
            self.label("patient", id_number, "", "hard_case:minority_name")
        if someone.foreign:
            self.label("patient", id_number, "", "hard_case:foreign_document")
        if traits and kind == "han" and rng.random() < 0.012:
            someone.typo_id = self.typo_of(id_number)
            self.label("patient", someone.typo_id, "", "hard_case:id_typo")
        return someone

    def written_name(self, who: _Person) -> str:
        if who.minority and "·" in who.name and self.rng.random() < 0.3:
            return who.name.replace("·", self.rng.choice(_DOTS))
        return who.name

    def personal_payer(self, who: _Person) -> str:
        if not who.payer:
            who.payer = self.new_payer()
        return who.payer

    def home_ip(self, household: int, t: float) -> str:
        # A home line re-dials every few weeks and gets a new address from its carrier.
        epoch = (math.floor(t / DAY) + household * 7) // (14 + household % 23)
        key = (household, epoch)
        ip = self.home_ips.get(key)
        if ip is None:
            ip = self.new_ip(_HOME_NETS)
            self.home_ips[key] = ip
        return ip

    def mobile_ip(self, carrier: int) -> str:
        return self.rng.choice(self.cgnat[carrier])

    # ------------------------------------------------------------------ labels
    def label(self, entity_type: str, entity_id: str, ring_id: str, role: str) -> None:
        if not entity_id:
            return
        key = (entity_type, entity_id)
        old = self.labels.get(key)
        if old is None or (ring_id and not old[0]) or (
                not old[0] and role == "hard_case:scalper_customer"):
            self.labels[key] = (ring_id, role)

    # ------------------------------------------------------------------ catalogue
    def _build_catalogue(self) -> None:
        rng = self.rng
        for spec in _HOSPITALS:
            hot_fees = list(_HOT_FEES[spec.hospital_id])
            for k, (name, audience, count, tiers) in enumerate(spec.departments):
                code = f"{spec.hospital_id[1:]}{k + 1:02d}"
                for n in range(count):
                    tier = tiers[n] if n < len(tiers) else "ordinary"
                    if tier == "hot":
                        fee = hot_fees.pop(0)
                    elif tier == "warm":
                        fee = float(rng.choice((30, 40, 50, 60)))
                    else:
                        fee = float(rng.choice((10, 15, 20, 25)))
                    clock = spec.release_clock
                    if tier == "hot" and fee == 398.0:
                        clock = 20 * HOUR
                    doctor = _Doctor(self.unique(lambda: f"D{rng.randint(10000, 99999)}"),
                                     spec, name, code, audience, tier, fee, clock)
                    self.doctors.append(doctor)
                    self.by_dept.setdefault((spec.hospital_id, name), []).append(doctor)
                    self._build_sessions(doctor)

    def _build_sessions(self, doctor: _Doctor) -> None:
        rng = self.rng
        spec = doctor.hospital
        days = 7 if spec.weekend else 5
        halves = [(d, h) for d in range(days) for h in (0, 1)]
        count = {"hot": rng.choice((1, 2, 2)), "warm": rng.randint(1, 3)}.get(
            doctor.tier, rng.randint(3, 6))
        pattern = set(rng.sample(halves, count))
        for day in range(FIRST_DAY + spec.horizon, LAST_SESSION_DAY):
            for weekday, half in sorted(pattern):
                if _weekday(day) != weekday:
                    continue
                if any(day in span for span in HOLIDAYS) and rng.random() < 0.8:
                    continue
                periods = _AM if half == 0 else _PM
                start = day * DAY + periods[0]
                released = (day - spec.horizon) * DAY + doctor.release_clock
                # Online slots scale with the world; at small scales some sessions have none
                # left for the app and web (they all go to the phone and window quota).
                if doctor.tier == "hot":
                    capacity = self.scaled(rng.randint(10, 20))
                elif doctor.tier == "warm":
                    capacity = self.scaled(rng.randint(8, 14))
                else:
                    capacity = 0
                session = _Session(doctor, day, start, tuple(day * DAY + p for p in periods),
                                   released, capacity)
                if capacity:
                    session.free = [session.periods[i * len(periods) // capacity]
                                    for i in range(capacity)]
                if doctor.tier == "hot" and capacity and rng.random() < 0.2:
                    session.extra_at = (day - 1) * DAY + rng.uniform(11.5 * HOUR, 17 * HOUR)
                    session.extra_n = rng.randint(1, 3) if self.scale >= 0.5 else 1
                if rng.random() < 0.005:
                    session.suspended_at = start - rng.uniform(1, 3) * DAY
                doctor.sessions.append(session)
                doctor.days.append(day)

    def scaled(self, count: float) -> int:
        """`count` times the scale, rounded up or down at random so totals stay in proportion."""
        value = count * self.scale
        whole = math.floor(value)
        return whole + (self.rng.random() < value - whole)

    def next_session(self, doctor: _Doctor, day: int) -> _Session | None:
        k = bisect.bisect_left(doctor.days, day)
        return doctor.sessions[k] if k < len(doctor.sessions) else None

    def doctors_for(self, who: _Person, *, tiers: tuple[str, ...] = ("ordinary",),
                    hospital: str | None = None) -> list[_Doctor]:
        age = 2025 - who.birth_year
        key = (min(age, 70) // 5 if age >= 15 else -1, who.female, who.cancer, tiers, hospital)
        found = self.doctor_cache.get(key)
        if found is None:
            found = [d for d in self.doctors if d.tier in tiers
                     and (hospital is None or d.hospital.hospital_id == hospital)
                     and self.suits(d.audience, age, who)]
            self.doctor_cache[key] = found
        return found

    @staticmethod
    def suits(audience: str, age: int, who: _Person) -> bool:
        if audience == "child":
            return age < 15
        if age < 15:
            return False
        if audience == "elder":
            return age >= 45
        if audience == "female":
            return who.female
        if audience == "male":
            return not who.female and age >= 30
        if audience == "cancer":
            return who.cancer
        if audience == "cancer_f":
            return who.cancer and who.female
        return True

    # ------------------------------------------------------------------ events
    def at(self, t: float, action: Callable[[float], None]) -> None:
        self.event_seq += 1
        heapq.heappush(self.events, (t, self.event_seq, action))

    def run_events(self) -> None:
        while self.events:
            t, _, action = heapq.heappop(self.events)
            action(t)

    # ------------------------------------------------------------------ access rows
    def hit(self, t: float, ip: str, account: str, device: str, method: str, path: str,
            status: int, ua: str) -> None:
        self.access.append((t, ip, account, device, method, path, status, ua))

    def login_if_needed(self, acct: _Account, dev: _Device, ip: str, t: float) -> None:
        if t - acct.last_login > 30 * DAY:
            if self.rng.random() < 0.5:
                self.hit(t - self.rng.uniform(8, 40), ip, acct.account_id, dev.device_id, "POST",
                         "/api/v1/auth/sms-code", 200, dev.ua)
            self.hit(t, ip, acct.account_id, dev.device_id, "POST", "/api/v1/auth/login", 200,
                     dev.ua)
        acct.last_login = t

    def bind(self, acct: _Account, dev: _Device, ip: str, t: float, who_id: str) -> None:
        """A patient must be on the account's list (at most five) before booking for them."""
        if who_id in acct.bound or acct.kind in _INSTITUTIONS:
            return
        if len(acct.bound) >= 5:
            acct.bound.pop(0)
            self.hit(t - 0.6, ip, acct.account_id, dev.device_id, "DELETE",
                     f"/api/v1/patients/{self.rng.randint(1, 5)}", 204, dev.ua)
        acct.bound.append(who_id)
        self.hit(t, ip, acct.account_id, dev.device_id, "POST", "/api/v1/patients", 201, dev.ua)

    def human_flow(self, acct: _Account, dev: _Device, ip: str, t: float, doctor: _Doctor,
                   who_id: str, status: int, *, prepared: bool = False, pace: float = 1.0,
                   bind: bool = True) -> None:
        rng = self.rng
        a, d, ua = acct.account_id, dev.device_id, dev.ua
        if acct.kind in _INSTITUTIONS:
            self.hit(t - rng.uniform(2, 20), ip, a, d, "GET",
                     f"/api/v1/doctors/{doctor.doctor_id}/schedule", 200, ua)
            self.hit(t, ip, a, d, "POST", "/api/v1/desk/bookings", status, ua)
            return
        h = doctor.hospital.hospital_id
        lead = rng.uniform(25, 160) * pace
        self.login_if_needed(acct, dev, ip, t - lead - rng.uniform(5, 30))
        if prepared:
            for _ in range(rng.choice((1, 1, 2, 3))):
                self.hit(t - rng.uniform(1.0, 50.0), ip, a, d, "GET",
                         f"/api/v1/doctors/{doctor.doctor_id}/schedule", 200, ua)
        else:
            if rng.random() < 0.5:
                self.hit(t - lead, ip, a, d, "GET", f"/api/v1/hospitals/{h}/departments", 200,
                         ua)
            if dev.channel == "web":
                self.hit(t - lead * 0.8, ip, a, d, "GET", f"/web/doctors/{doctor.doctor_id}",
                         200, ua)
            self.hit(t - lead * 0.6, ip, a, d, "GET",
                     f"/api/v1/hospitals/{h}/departments/{doctor.dept_code}/doctors", 200, ua)
            self.hit(t - lead * 0.35, ip, a, d, "GET",
                     f"/api/v1/doctors/{doctor.doctor_id}/schedule", 200, ua)
        if bind:
            self.bind(acct, dev, ip, t - rng.uniform(3, 12) * pace, who_id)
        if doctor.hospital.captcha:
            self.hit(t - rng.uniform(2.5, 5) * pace, ip, a, d, "GET", "/api/v1/captcha", 200, ua)
            self.hit(t - rng.uniform(0.6, 2.4) * pace, ip, a, d, "POST", "/api/v1/captcha/verify",
                     200, ua)
        self.hit(t, ip, a, d, "POST", "/api/v1/bookings", status, ua)

    def pay_hit(self, acct: _Account, dev: _Device, ip: str, t: float, booking_id: str) -> None:
        self.hit(t, ip, acct.account_id, dev.device_id, "POST",
                 f"/api/v1/bookings/{booking_id}/pay", 200, dev.ua)

    def cancel_hit(self, acct: _Account, dev: _Device, ip: str, t: float, booking_id: str,
                   *, quick: bool = False) -> None:
        if not quick:
            self.hit(t - self.rng.uniform(4, 40), ip, acct.account_id, dev.device_id, "GET",
                     "/api/v1/bookings?status=active", 200, dev.ua)
        self.hit(t, ip, acct.account_id, dev.device_id, "POST",
                 f"/api/v1/bookings/{booking_id}/cancel", 200, dev.ua)

    def register(self, acct: _Account, dev: _Device, ip: str, t: float) -> None:
        acct.registered_at = t
        if t < FIRST_DAY * DAY:
            return
        self.hit(t - self.rng.uniform(20, 90), ip, "", dev.device_id, "POST",
                 "/api/v1/auth/sms-code", 200, dev.ua)
        self.hit(t, ip, acct.account_id, dev.device_id, "POST", "/api/v1/auth/register", 201,
                 dev.ua)
        acct.last_login = t

    def browse(self, acct: _Account, dev: _Device, ip: str, t: float, doctor: _Doctor) -> None:
        a, d, ua = acct.account_id, dev.device_id, dev.ua
        self.login_if_needed(acct, dev, ip, t - 20)
        self.hit(t, ip, a, d, "GET", f"/api/v1/hospitals/{doctor.hospital.hospital_id}/departments",
                 200, ua)
        self.hit(t + self.rng.uniform(5, 40), ip, a, d, "GET",
                 f"/api/v1/doctors/{doctor.doctor_id}/schedule", 200, ua)

    # ------------------------------------------------------------------ bookings
    def make_booking(self, *, t: float, acct: _Account, who: _Person, doctor: _Doctor,
                     session: _Session | None, slot: float, channel: str, ip: str,
                     device: _Device, id_written: str | None = None, phone: str | None = None,
                     released_at: float | None = None, ring: _Ring | None = None) -> _Booking:
        rng = self.rng
        booking = _Booking(
            booking_id=self.unique(lambda: f"B{rng.randint(10**11, 10**12 - 1)}"),
            created=t, account=acct, patient_id=id_written or who.id_number,
            name=self.written_name(who), phone=who.phone if phone is None else phone,
            doctor=doctor, slot=slot,
            released_at=released_at if released_at is not None else (
                session.released_at if session else None),
            channel=channel, ip=ip, device=device.device_id, session=session, ring=ring)
        self.bookings.append(booking)
        if session is not None:
            session.bookings.append(booking)
        return booking

    def pay(self, booking: _Booking, t: float, payer: str) -> None:
        rng = self.rng
        booking.payment = _Payment(self.unique(lambda: f"P{rng.randint(10**13, 10**14 - 1)}"),
                                   t, payer, booking.doctor.fee)

    def cancel(self, booking: _Booking, t: float) -> None:
        booking.cancelled = t
        if booking.payment is not None and booking.payment.paid_at <= t:
            booking.payment.refunded_at = t + self.rng.uniform(0.4, 40)
        session = booking.session
        if session is not None and session.capacity and not booking.refunded_by_hospital:
            session.patients.discard(booking.patient_id)
            if booking.channel in ("app", "wechat", "web"):
                session.free.append(booking.slot)

    def pick_device(self, acct: _Account) -> _Device:
        return self.rng.choice(acct.devices)

    def genuine_ip(self, acct: _Account, t: float, *, onsite: bool = False,
                   doctor: _Doctor | None = None) -> str:
        rng = self.rng
        if acct.ring is not None:
            return self.ring_ip(acct.ring, acct, t)
        if acct.fixed_ips:
            return rng.choice(acct.fixed_ips)
        if onsite and doctor is not None and rng.random() < 0.6:
            return rng.choice(self.wifi[doctor.hospital.hospital_id])
        clock = (t % DAY) / HOUR
        if acct.overlay and _weekday(_day_of(t)) < 5 and 8.5 <= clock <= 18 and rng.random() < 0.7:
            return acct.overlay
        if rng.random() < 0.45:
            return self.mobile_ip(acct.owner.carrier)
        return self.home_ip(acct.household, t)

    def settle_genuine(self, booking: _Booking, acct: _Account, dev: _Device, payer: str,
                       *, hot: bool = False) -> None:
        """Payment, cancellation, no-show, as ordinary people do them."""
        rng = self.rng
        spec = booking.doctor.hospital
        t = booking.created
        if spec.prepay or rng.random() < 0.45:
            if rng.random() < 0.012:
                self.at(t + 15 * MINUTE, partial(self.cancel, booking))
                return
            paid = t + rng.lognormvariate(math.log(70), 0.7)
            self.pay(booking, paid, payer)
            self.pay_hit(acct, dev, booking.ip, paid, booking.booking_id)
        else:
            booking.visit_payer = payer
        booking.no_show = rng.random() < (0.10 if booking.channel == "phone" else 0.055)
        room = booking.slot - t
        if room > 4 * HOUR and rng.random() < (0.06 if hot else 0.09):
            when = t + rng.uniform(0.2, 0.9) * (room - 3 * HOUR)
            ip = self.genuine_ip(acct, when)
            self.at(when, partial(self.genuine_cancel, booking, dev, ip))

    def genuine_cancel(self, booking: _Booking, dev: _Device, ip: str, t: float) -> None:
        if booking.cancelled is not None:
            return
        self.cancel(booking, t)
        self.cancel_hit(booking.account, dev, ip, t, booking.booking_id)
        session = booking.session
        if session is not None and session.capacity and booking.channel in ("app", "wechat",
                                                                             "web"):
            self.offer_freed(session, t)

    # ------------------------------------------------------------------ direct bookings
    def book_direct(self, acct: _Account, who: _Person, doctor: _Doctor, want_day: int, *,
                    lead: int | None = None, onsite: bool = False, phone: str | None = None,
                    payer: str | None = None, channel: str | None = None,
                    hour: float | None = None, settle: bool = True,
                    after: float | None = None) -> _Booking | None:
        """A booking with a doctor who does not run out: no race, just the person's habits."""
        rng = self.rng
        session = self.next_session(doctor, want_day)
        if session is not None and session.suspended_at:
            session = self.next_session(doctor, session.day + 1)
        if session is None:
            return None
        spec = doctor.hospital
        if lead is None:
            lead = min(spec.horizon, int(rng.expovariate(1 / 3.0)))
        day = max(session.day - lead, _day_of(session.released_at))
        clock = hour if hour is not None else _habit_hour(rng)
        t = day * DAY + clock * HOUR + rng.uniform(0, 59)
        if t < session.released_at:
            t = session.released_at + rng.uniform(5 * MINUTE, 10 * HOUR)
        if after is not None and t < after:
            t = after + rng.uniform(2 * MINUTE, 3 * HOUR)
        if t > session.start - 20 * MINUTE:
            t = session.start - rng.uniform(25 * MINUTE, 90 * MINUTE)
            if t < session.released_at:
                return None
        dev = self.pick_device(acct)
        chan = channel or dev.channel
        if not onsite and _day_of(t) == session.day:
            onsite = rng.random() < 0.4        # booking today's clinic from the hall
        ip = self.genuine_ip(acct, t, onsite=onsite, doctor=doctor)
        written = who.id_number
        if who.typo_id and rng.random() < 0.35:
            written = who.typo_id
        self.human_flow(acct, dev, ip, t, doctor, written, 201)
        booking = self.make_booking(t=t, acct=acct, who=who, doctor=doctor, session=session,
                                    slot=rng.choice(session.periods), channel=chan, ip=ip,
                                    device=dev, id_written=written, phone=phone)
        if settle:
            self.settle_genuine(booking, acct, dev, payer or self.account_payer(acct, who))
        return booking

    def account_payer(self, acct: _Account, who: _Person) -> str:
        if who is acct.owner or not who.payer or self.rng.random() < 0.8:
            return acct.payers[0] if self.rng.random() < 0.85 else acct.payers[-1]
        return who.payer

    # ------------------------------------------------------------------ genuine people
    def new_account(self, owner: _Person, kind: str, *, patients: list[_Person] | None = None,
                    devices: int = 1, channel: str | None = None,
                    registered: float | None = None) -> _Account:
        rng = self.rng
        self.households += 1
        acct = _Account(self.new_account_id(), owner, patients or [owner], [], [], self.households,
                        kind, 0.0)
        for k in range(devices):
            chan = channel or rng.choices(("app", "wechat", "web"), (45, 40, 15))[0]
            if k and rng.random() < 0.5:
                chan = "web"
            if chan == "web":
                ua = _desktop_ua(rng)
            elif rng.random() < 0.3:
                ua = _ios_ua(rng, wechat=chan == "wechat")
            else:
                ua = _android_ua(rng, wechat=chan == "wechat")
            acct.devices.append(self.new_device(chan, ua))
        acct.payers.append(self.personal_payer(owner))
        if rng.random() < 0.25:
            acct.payers.append(self.new_payer())
        when = registered if registered is not None else (
            -rng.uniform(20, 2000) * DAY if rng.random() < 0.75 else rng.uniform(-10, 330) * DAY)
        dev = acct.devices[0]
        self.register(acct, dev, self.genuine_ip(acct, when), when)
        if when < FIRST_DAY * DAY:
            # Their family was on the account long before this export begins.
            acct.bound = [p.id_number for p in acct.patients[:5]]
        self.accounts.append(acct)
        return acct

    def want_days(self, acct: _Account, count: int, *, winter: bool = False) -> list[int]:
        rng = self.rng
        first = max(0, _day_of(acct.registered_at) + 1)
        days = []
        for _ in range(count):
            day = rng.randint(first, 364) if first < 364 else 364
            if winter and rng.random() < 0.35:
                day = rng.choice((rng.randint(0, 75), rng.randint(300, 364)))
                day = max(day, first)
            days.append(day)
        return sorted(days)

    def ordinary_visits(self, acct: _Account, count: int, *, tiers: tuple[str, ...] = (
            "ordinary",), rebook: float = 0.0) -> list[_Booking]:
        rng = self.rng
        made: list[_Booking] = []
        for day in self.want_days(acct, count, winter=True):
            who = rng.choice(acct.patients)
            choices = self.doctors_for(who, tiers=tiers)
            if not choices:
                continue
            doctor = rng.choice(choices)
            phone = None
            if who is not acct.owner and (not who.phone or rng.random() < 0.6):
                phone = acct.owner.phone
            booking = self.book_direct(acct, who, doctor, day, phone=phone)
            if booking is None:
                continue
            made.append(booking)
            if rng.random() < rebook:
                self.self_rebook(booking)
        return made

    def self_rebook(self, booking: _Booking) -> None:
        """The person changes their mind: another day or another period, for themselves."""
        rng = self.rng
        acct = booking.account
        room = booking.slot - booking.created
        if room < 3 * HOUR or booking.cancelled is not None:
            return
        t = booking.created + rng.uniform(0.05, 0.8) * (room - 2 * HOUR)
        dev = self.pick_device(acct)
        ip = self.genuine_ip(acct, t)
        if booking.payment is not None and booking.payment.paid_at > t:
            return
        self.cancel(booking, t)
        self.cancel_hit(acct, dev, ip, t, booking.booking_id)
        who = next((p for p in acct.patients if booking.patient_id in (p.id_number, p.typo_id)),
                   acct.owner)
        gap = rng.choice((rng.uniform(4, 40), rng.uniform(60, 900), rng.uniform(3600, 20000)))
        later = t + gap
        shift = rng.choice((0, 0, 1, 2, 3, 7))
        doctor = booking.doctor
        if rng.random() < 0.3:
            same = self.by_dept[(doctor.hospital.hospital_id, doctor.department)]
            ordinary = [d for d in same if d.tier == "ordinary"]
            doctor = rng.choice(ordinary) if ordinary else doctor
        session = self.next_session(doctor, _day_of(booking.slot) + shift)
        if session is None or session.start - later < HOUR or session.released_at > later:
            return
        self.human_flow(acct, dev, ip, later, doctor, booking.patient_id, 201, pace=0.4)
        again = self.make_booking(t=later, acct=acct, who=who, doctor=doctor, session=session,
                                  slot=rng.choice(session.periods), channel=dev.channel, ip=ip,
                                  device=dev, id_written=booking.patient_id, phone=booking.phone)
        self.settle_genuine(again, acct, dev, self.account_payer(acct, who))

    def build_population(self) -> None:
        s = self.scale
        total = round(6500 * s)
        shares = (("ordinary", 0.60), ("family", 0.18), ("chronic", 0.06), ("comorbid", 0.03),
                  ("fast_typist", 0.03), ("slot_pickup", 0.02), ("self_rebook", 0.05))
        for kind, share in shares:
            for _ in range(max(3, round(total * share))):
                getattr(self, f"_make_{kind}")()
        for _ in range(max(2, round(15 * s))):
            self._make_friends_group()
        for _ in range(max(3, round(25 * s))):
            self._make_carer()
        for _ in range(max(2, round(6 * s))):
            self._make_escort()
        self._make_institutions()

    def _make_ordinary(self) -> None:
        rng = self.rng
        owner = self.person(birth_year=rng.randint(1950, 2006), cancer=rng.random() < 0.03)
        patients = [owner]
        if rng.random() < 0.3:
            patients.append(self.person(birth_year=owner.birth_year + rng.randint(-4, 4),
                                        female=not owner.female, phone=rng.random() < 0.9))
        if rng.random() < 0.2 and owner.birth_year > 1975:
            patients.append(self.person(birth_year=rng.randint(2011, 2024), phone=False))
        acct = self.new_account(owner, "ordinary", patients=patients,
                                devices=1 + (rng.random() < 0.2))
        roll = rng.random()
        if roll < 0.06 and 1965 < owner.birth_year < 2006:
            acct.overlay = rng.choice(self.campus)
        elif roll < 0.08 and 1970 < owner.birth_year < 2000:
            acct.overlay = rng.choice(self.cloud_desktop)
        self.ordinary_visits(acct, self.poisson(1.1), rebook=0.03)

    def poisson(self, mean: float) -> int:
        # Knuth's method; means here are small.
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def _make_family(self) -> None:
        rng = self.rng
        owner = self.person(birth_year=rng.randint(1970, 1996))
        surname = _surname_of(owner)
        patients = [owner]
        father = owner
        if rng.random() < 0.7:
            spouse = self.person(birth_year=owner.birth_year + rng.randint(-4, 4),
                                 female=not owner.female)
            patients.append(spouse)
            father = spouse if owner.female else owner
        for _ in range(rng.choice((0, 1, 1, 2))):
            patients.append(self.person(birth_year=rng.randint(max(2008, owner.birth_year + 22),
                                                               2024),
                                        surname=_surname_of(father),
                                        phone=False, traits=False))
        for k in range(rng.choice((1, 1, 2, 2))):
            mother = k == 1 or rng.random() < 0.5
            patients.append(self.person(birth_year=rng.randint(1935, owner.birth_year - 20),
                                        female=mother, surname=None if mother else surname,
                                        phone=rng.random() < 0.5,
                                        cancer=rng.random() < 0.12))
        kind = "family_swap" if rng.random() < 0.12 else "family"
        acct = self.new_account(owner, kind, patients=patients, devices=1 + (rng.random() < 0.3))
        self.label("account", acct.account_id, "", f"hard_case:{kind}")
        self.label("phone", owner.phone, "", "hard_case:family")
        self.label("payer", acct.payers[0], "", "hard_case:family")
        elders = [p for p in patients if p.birth_year < owner.birth_year - 15]
        if elders and rng.random() < 0.25:
            # A sibling's household books the same parent too.
            sibling = self.person(birth_year=owner.birth_year + rng.randint(-6, 6),
                                  surname=_surname_of(elders[0]))
            other = self.new_account(sibling, "family", patients=[sibling, elders[0]])
            self.label("account", other.account_id, "", "hard_case:family")
            self.label("patient", elders[0].id_number, "", "hard_case:family")
            self.ordinary_visits(other, 2 + self.poisson(2))
        if elders and rng.random() < 0.12:
            # The parent's own account, opened and used on the child's phone.
            parent = elders[0]
            own = self.new_account(parent, "multi_account_device", patients=[parent])
            own.devices = [acct.devices[0]]
            own.household = acct.household
            self.label("account", own.account_id, "", "hard_case:multi_account_device")
            self.label("device", acct.devices[0].device_id, "", "hard_case:multi_account_device")
            self.ordinary_visits(own, 2 + self.poisson(2))
        made = self.ordinary_visits(acct, 1 + self.poisson(1.6), rebook=0.03)
        if kind == "family_swap":
            for booking in made:
                if rng.random() < 0.45:
                    self.family_swap(booking)

    def family_swap(self, booking: _Booking) -> None:
        """Mother cannot go after all, so the slot is cancelled and rebooked for father."""
        rng = self.rng
        acct = booking.account
        others = [p for p in acct.patients if p.id_number != booking.patient_id
                  and self.suits(booking.doctor.audience, 2025 - p.birth_year, p)]
        room = booking.slot - booking.created
        if not others or room < 3 * HOUR or booking.cancelled is not None:
            return
        t = booking.created + rng.uniform(0.1, 0.9) * (room - 2 * HOUR)
        if booking.payment is not None and booking.payment.paid_at > t:
            return
        dev = self.pick_device(acct)
        ip = self.genuine_ip(acct, t)
        self.cancel(booking, t)
        self.cancel_hit(acct, dev, ip, t, booking.booking_id)
        who = rng.choice(others)
        later = t + rng.uniform(12, 120)
        self.human_flow(acct, dev, ip, later, booking.doctor, who.id_number, 201, pace=0.3)
        again = self.make_booking(t=later, acct=acct, who=who, doctor=booking.doctor,
                                  session=booking.session, slot=booking.slot,
                                  channel=booking.channel, ip=ip, device=dev,
                                  phone=acct.owner.phone)
        self.settle_genuine(again, acct, dev, acct.payers[0])

    def _make_chronic(self) -> None:
        rng = self.rng
        owner = self.person(birth_year=rng.randint(1938, 1985), cancer=rng.random() < 0.15)
        acct = self.new_account(owner, "chronic", devices=1 + (rng.random() < 0.2))
        self.label("account", acct.account_id, "", "hard_case:chronic")
        choices = self.doctors_for(owner, tiers=("ordinary", "warm"))
        doctor = rng.choice(choices)
        interval = rng.choice((28, 28, 35, 42, 56))
        day = max(0, _day_of(acct.registered_at) + 1) + rng.randint(0, interval)
        while day < 372:
            onsite = rng.random() < 0.3
            if onsite:
                # Booked at the clinic right after the previous visit.
                booking = self.book_direct(acct, owner, doctor, day,
                                           lead=min(interval - 1, doctor.hospital.horizon),
                                           onsite=True, hour=rng.uniform(9.5, 16.5))
            else:
                booking = self.book_direct(acct, owner, doctor, day)
            if booking is not None and rng.random() < 0.04:
                self.self_rebook(booking)
            day += interval + rng.randint(-3, 4)
            if rng.random() < 0.08:
                doctor = rng.choice(choices)

    def _make_comorbid(self) -> None:
        rng = self.rng
        owner = self.person(birth_year=rng.randint(1935, 1965))
        acct = self.new_account(owner, "comorbid")
        self.label("account", acct.account_id, "", "hard_case:comorbid")
        self.label("patient", owner.id_number, "", "hard_case:comorbid")
        related = ("内分泌科", "眼科", "肾内科", "心血管内科", "神经内科", "肺病科", "脾胃病科")
        depts = rng.sample(related, rng.randint(3, 4))
        for dept in depts:
            options = [d for hid in ("H01", "H04") for d in self.by_dept.get((hid, dept), [])
                       if d.tier == "ordinary"]
            if not options:
                continue
            doctor = rng.choice(options)
            day = max(0, _day_of(acct.registered_at) + 1) + rng.randint(0, 40)
            while day < 365:
                self.book_direct(acct, owner, doctor, day)
                day += rng.randint(60, 150)

    def _make_fast_typist(self) -> None:
        rng = self.rng
        owner = self.person(birth_year=rng.randint(1975, 2002))
        patients = [owner, self.person(birth_year=rng.randint(1945, 1970),
                                       cancer=rng.random() < 0.4, phone=rng.random() < 0.6)]
        if rng.random() < 0.4:
            patients.append(self.person(birth_year=rng.randint(2012, 2023), phone=False,
                                        surname=_surname_of(owner)))
        acct = self.new_account(owner, "fast_typist", patients=patients,
                                channel=rng.choice(("app", "app", "wechat")))
        self.label("account", acct.account_id, "", "hard_case:fast_typist")
        self.ordinary_visits(acct, self.poisson(1.0))
        self.hot_entries(acct, rng.randint(2, 5), "fast")

    def _make_slot_pickup(self) -> None:
        rng = self.rng
        owner = self.person(birth_year=rng.randint(1965, 2000))
        patients = [owner, self.person(birth_year=rng.randint(1940, 1968),
                                       cancer=rng.random() < 0.5, phone=False)]
        acct = self.new_account(owner, "slot_pickup", patients=patients)
        self.label("account", acct.account_id, "", "hard_case:slot_pickup")
        self.ordinary_visits(acct, 1 + self.poisson(1.0))
        self.hot_entries(acct, rng.randint(2, 4), "picker")

    def _make_self_rebook(self) -> None:
        rng = self.rng
        owner = self.person(birth_year=rng.randint(1955, 2003))
        patients = [owner] + ([self.person(birth_year=rng.randint(2010, 2023), phone=False)]
                              if rng.random() < 0.3 else [])
        acct = self.new_account(owner, "self_rebook", patients=patients)
        self.label("account", acct.account_id, "", "hard_case:self_rebook")
        self.ordinary_visits(acct, 2 + self.poisson(2.0), tiers=("ordinary",), rebook=0.55)

    def hot_entries(self, acct: _Account, count: int, speed: str,
                    accounts: list[_Account] | None = None, who: _Person | None = None) -> None:
        rng = self.rng
        for _ in range(count):
            patient = who or rng.choice(acct.patients)
            hot = self.doctors_for(patient, tiers=("hot",))
            if not hot:
                continue
            doctor = rng.choice(hot)
            entry = _PoolEntry(accounts or [acct], patient, doctor,
                               max(acct.registered_at, rng.uniform(-14, 345) * DAY), speed,
                               rng.randint(3, 12))
            self.pool.setdefault(doctor.doctor_id, []).append(entry)

    def _make_friends_group(self) -> None:
        rng = self.rng
        target = self.person(birth_year=rng.randint(1945, 1972), cancer=True)
        group: list[_Account] = []
        for k in range(rng.randint(3, 6)):
            owner = self.person(birth_year=rng.randint(1968, 2000),
                                surname=_surname_of(target) if k < 2 else None)
            acct = self.new_account(owner, "friends_grab", patients=[owner, target],
                                    channel=rng.choice(("app", "wechat")))
            self.label("account", acct.account_id, "", "hard_case:friends_grab")
            self.ordinary_visits(acct, self.poisson(1.2))
            group.append(acct)
        self.label("patient", target.id_number, "", "hard_case:friends_grab")
        self.hot_entries(group[0], rng.randint(1, 3), "prepared", accounts=group, who=target)

    def _make_carer(self) -> None:
        rng = self.rng
        owner = self.person(birth_year=rng.randint(1968, 1998), traits=False)
        elders = [self.person(birth_year=rng.randint(1930, 1958), phone=rng.random() < 0.4)
                  for _ in range(rng.randint(8, 25))]
        for elder in elders:
            if not elder.phone and rng.random() < 0.3:
                elder.landline = f"025-{rng.choice('5684')}{rng.randint(0, 9_999_999):07d}"
        acct = self.new_account(owner, "carer", patients=[owner], devices=1 + (rng.random() < 0.5))
        self.label("account", acct.account_id, "", "hard_case:carer")
        self.label("payer", acct.payers[0], "", "hard_case:carer")
        self.label("phone", owner.phone, "", "hard_case:carer")
        acct.overlay = self.new_ip(_HOME_NETS)      # the community centre's line
        first = max(0, _day_of(acct.registered_at) + 1)
        for _ in range(rng.randint(40, 90)):
            who = rng.choice(elders)
            doctors = [d for d in self.doctors_for(who, tiers=("ordinary", "warm"))
                       if d.hospital.hospital_id in ("H01", "H04")]
            if not doctors or first > 364:
                continue
            day = rng.randint(first, 364)
            phone = owner.phone if rng.random() < 0.6 else (who.phone or who.landline)
            payer = acct.payers[0] if rng.random() < 0.55 or not who.phone else \
                self.personal_payer(who)
            self.book_direct(acct, who, rng.choice(doctors), day, phone=phone, payer=payer,
                             hour=rng.uniform(8.5, 17.5))

    def _make_escort(self) -> None:
        rng = self.rng
        owner = self.person(birth_year=rng.randint(1975, 1998), traits=False)
        acct = self.new_account(owner, "escort_service", patients=[owner], devices=2,
                                channel="wechat")
        self.label("account", acct.account_id, "", "hard_case:escort_service")
        self.label("payer", acct.payers[0], "", "hard_case:escort_service")
        self.label("phone", owner.phone, "", "hard_case:escort_service")
        first = max(0, _day_of(acct.registered_at) + 1)
        for _ in range(rng.randint(35, 110)):
            client = self.person(birth_year=rng.randint(1940, 1990), origin=rng.choice(
                ("local", "out", "out")), cancer=rng.random() < 0.3)
            doctors = [d for d in self.doctors_for(client, tiers=("ordinary", "warm"))
                       if d.hospital.hospital_id != "H02"]
            if not doctors or first > 364:
                continue
            day0 = rng.randint(first, 364)
            for visit in range(rng.choice((1, 1, 1, 2, 3))):
                phone = client.phone if rng.random() < 0.7 else owner.phone
                payer = self.personal_payer(client) if rng.random() < 0.5 else acct.payers[0]
                self.book_direct(acct, client, rng.choice(doctors), day0 + 20 * visit,
                                 phone=phone, payer=payer, hour=rng.uniform(9, 18))

    # ------------------------------------------------------------------ institutions
    def _institution(self, kind: str, ua: str, devices: int, ip: str, channel: str) -> _Account:
        staff = self.person(birth_year=1985, traits=False, phone=False)
        acct = _Account(self.new_account_id(), staff, [], [], [], 0, kind, -900 * DAY)
        acct.devices = [self.new_device(channel, ua) for _ in range(devices)]
        acct.fixed_ips = (ip,)
        self.accounts.append(acct)
        self.label("account", acct.account_id, "", f"hard_case:{kind}")
        self.label("ip", ip, "", f"hard_case:{kind}")
        for dev in acct.devices:
            self.label("device", dev.device_id, "", f"hard_case:{kind}")
        return acct

    def walk_in(self, origin: str = "local") -> _Person:
        """A patient who has no account of their own; many are old, some come from afar."""
        rng = self.rng
        if self.accounts and rng.random() < 0.35:
            acct = rng.choice(self.accounts)
            if acct.kind not in _INSTITUTIONS and acct.ring is None:
                return rng.choice(acct.patients)
        return self.person(birth_year=rng.choice((rng.randint(1930, 1965), rng.randint(1930, 2020),
                                                  rng.randint(1960, 2005))),
                           origin=origin, phone=rng.random() < 0.75,
                           cancer=rng.random() < 0.15)

    def _make_institutions(self) -> None:
        rng = self.rng
        s = self.scale
        hotline = self._institution(
            "call_centre", "CallCenterDesk/3.2 (Windows NT 10.0; HIS-Gateway)", 8,
            self.new_ip(("58.213", "218.2")), "phone")
        desks: list[tuple[_Account, int, str | None]] = [(hotline, round(1500 * s), None)]
        h03 = self._institution("call_centre", "CallCenterDesk/2.7 (Windows NT 6.1)", 4,
                                self.hospital_fixed["H03"], "phone")
        desks.append((h03, round(500 * s), "H03"))
        for acct, volume, hospital in desks:
            patients: list[_Person] = []
            for _ in range(volume):
                if patients and rng.random() < 0.25:
                    who = rng.choice(patients)
                else:
                    who = self.walk_in(rng.choice(("local", "local", "out")))
                    if not who.phone and rng.random() < 0.6:
                        who.landline = who.landline or (
                            f"025-{rng.choice('5684')}{rng.randint(0, 9_999_999):07d}")
                    patients.append(who)
                self.desk_booking(acct, who, hospital)
        for spec in _HOSPITALS:
            hid = spec.hospital_id
            kiosk = self._institution(
                "kiosk", f"SelfServiceKiosk/2.4.{rng.randint(0, 9)} (Windows NT 6.1; {hid})",
                rng.randint(4, 10), self.hospital_fixed[hid], "other")
            for _ in range(round(500 * s)):
                self.desk_booking(kiosk, self.walk_in(), hid, same_day=rng.random() < 0.5)
            for w in range(rng.randint(2, 3)):
                window = self._institution("window", "HIS-Workstation/5.2 (Windows NT 10.0)", 1,
                                           self.hospital_fixed[hid], "window")
                cash = f"cash:{hid}-W{w + 1:02d}"
                self.label("payer", cash, "", "hard_case:window")
                for _ in range(round(200 * s)):
                    self.desk_booking(window, self.walk_in(rng.choice(("local", "out"))), hid,
                                      same_day=True, cash=cash)
        for _ in range(3):
            county_ip = self.new_ip(_HOME_NETS)
            desk = self._institution("referral_desk", "ReferralClient/1.9 (Windows NT 10.0)",
                                     rng.randint(1, 2), county_ip, "other")
            for _ in range(round(200 * s)):
                self.desk_booking(desk, self.walk_in("county"), rng.choice(("H01", "H03")),
                                  tiers=("warm", "ordinary"))

    def desk_booking(self, acct: _Account, who: _Person, hospital: str | None, *,
                     same_day: bool = False, cash: str = "",
                     tiers: tuple[str, ...] = ("ordinary", "ordinary", "warm")) -> None:
        rng = self.rng
        doctors = self.doctors_for(who, tiers=tiers, hospital=hospital)
        if not doctors:
            return
        doctor = rng.choice(doctors)
        spec = doctor.hospital
        day = rng.randint(0, 364)
        if same_day or acct.kind == "window":
            session = self.next_session(doctor, day)
            if session is None or session.suspended_at:
                return
            t = session.day * DAY + rng.uniform(7 * HOUR, session.start % DAY - 0.25 * HOUR)
            released: float | None = session.day * DAY + 7 * HOUR
        else:
            lead = rng.randint(1, spec.horizon)
            session = self.next_session(doctor, day + lead)
            if session is None or session.suspended_at:
                return
            office = rng.uniform(8, 17) if _weekday(day) < 5 else rng.uniform(8, 12)
            t = day * DAY + office * HOUR
            if acct.kind == "call_centre" and rng.random() < 0.3:
                # Callers queue before the release; agents book the reserved phone quota.
                t = session.released_at + rng.uniform(20, 1800)
            if t < session.released_at:
                t = session.released_at + rng.uniform(60, 4 * HOUR)
            released = session.released_at
        if t >= session.start - 10 * MINUTE:
            return
        dev = self.pick_device(acct)
        ip = acct.fixed_ips[0]
        self.human_flow(acct, dev, ip, t, doctor, who.id_number, 201)
        phone = who.phone or who.landline
        if phone and acct.kind == "call_centre" and rng.random() < 0.02:
            phone = phone[:-1]          # a digit lost on the phone line
        booking = self.make_booking(t=t, acct=acct, who=who, doctor=doctor, session=session,
                                    slot=rng.choice(session.periods), channel=dev.channel,
                                    ip=ip, device=dev, phone=phone, released_at=released)
        booking.no_show = rng.random() < (0.11 if acct.kind == "call_centre" else 0.03)
        if acct.kind in ("kiosk", "window"):
            payer = cash if cash and rng.random() < 0.45 else (
                self.new_payer("card") if rng.random() < 0.3 else self.personal_payer(who))
            self.pay(booking, t + rng.uniform(15, 90), payer)
        else:
            booking.visit_payer = self.personal_payer(who) if rng.random() < 0.7 else \
                f"cash:{spec.hospital_id}-W01"

    # ------------------------------------------------------------------ the release race
    def build_demand(self) -> None:
        """Who wants the hot experts, from when, and how fast their fingers are."""
        rng = self.rng
        for acct in self.accounts:
            if acct.kind in _INSTITUTIONS or acct.ring is not None:
                continue
            for who in acct.patients:
                age = 2025 - who.birth_year
                for tag in ("child", "elder", "female", "male", "cancer", "cancer_f", "adult",
                            "any"):
                    if self.suits(tag, age, who):
                        self.audience.setdefault(tag, []).append((acct, who))
        for doctor in self.doctors:
            if doctor.tier != "hot":
                continue
            supply = sum(s.capacity for s in doctor.sessions) + sum(
                s.extra_n for s in doctor.sessions)
            entries = self.pool.setdefault(doctor.doctor_id, [])
            wanted = round(supply * rng.uniform(0.8, 1.05)) - len(entries)
            crowd = self.audience.get(doctor.audience, [])
            for _ in range(max(0, wanted)):
                if not crowd:
                    break
                acct, who = rng.choice(crowd)
                speed = "prepared" if rng.random() < 0.55 else "casual"
                start = max(acct.registered_at, rng.uniform(-14, 350) * DAY)
                entries.append(_PoolEntry([acct], who, doctor, start, speed, rng.randint(2, 10)))

    def schedule_market(self) -> None:
        for doctor in self.doctors:
            for session in doctor.sessions:
                if session.suspended_at:
                    self.at(session.suspended_at, partial(self.suspend, session))
                if doctor.tier == "ordinary" or not session.capacity:
                    continue
                self.at(session.released_at, partial(self.release, session, extra=False))
                if session.extra_at:
                    self.at(session.extra_at, partial(self.release, session, extra=True))

    def release(self, session: _Session, t: float, extra: bool) -> None:
        rng = self.rng
        doctor = session.doctor
        if extra:
            session.free.extend(rng.choice(session.periods) for _ in range(session.extra_n))
        for ring in self.rings_for.get(doctor.doctor_id, ()):
            self.ring_release(ring, session, t, extra)
        if doctor.tier == "warm":
            if extra:
                return
            crowd = self.audience.get(doctor.audience, [])
            for _ in range(round(session.capacity * rng.uniform(0.75, 1.2))):
                if not crowd:
                    break
                acct, who = rng.choice(crowd)
                if rng.random() < 0.3:
                    when = t + rng.lognormvariate(math.log(30), 0.8)
                else:
                    when = t + min(rng.expovariate(1 / (5 * HOUR)), session.start - t - 2 * HOUR)
                entry = _PoolEntry([acct], who, doctor, t, "casual", 1)
                self.at(when, partial(self.genuine_attempt, session, entry, acct,
                                         prepared=when - t < 300))
            return
        for entry in self.pool.get(doctor.doctor_id, ()):
            if entry.done or entry.start > t:
                continue
            if extra:
                if entry.speed == "picker" and rng.random() < 0.5:
                    delay = rng.uniform(5, 240)
                elif rng.random() < 0.04:
                    delay = rng.uniform(30, 1800)
                else:
                    continue
                self.at(t + delay, partial(self.genuine_attempt, session, entry,
                                              entry.accounts[0], prepared=False))
                continue
            chance = {"fast": 0.9, "prepared": 0.75, "casual": 0.5, "picker": 0.6}[entry.speed]
            for acct in entry.accounts:
                if rng.random() > chance:
                    continue
                if entry.speed == "fast":
                    delay = rng.lognormvariate(math.log(2.6), 0.35)
                elif entry.speed in ("prepared", "picker"):
                    delay = rng.lognormvariate(math.log(14), 0.7)
                else:
                    delay = 60 + rng.expovariate(1 / 2400)
                keen = entry.speed != "casual"
                self.at(t + delay, partial(self.genuine_attempt, session, entry, acct,
                                                  prepared=keen))

    def available(self, session: _Session, who_id: str, t: float) -> bool:
        return bool(session.free) and who_id not in session.patients and not (
            session.suspended_at and t >= session.suspended_at) and t < session.start - HOUR

    def take_slot(self, session: _Session, who_id: str, slot: float | None = None) -> float:
        if slot is not None and slot in session.free:
            session.free.remove(slot)
        else:
            slot = session.free.pop(self.rng.randrange(len(session.free)))
        session.patients.add(who_id)
        return slot

    def genuine_attempt(self, session: _Session, entry: _PoolEntry, acct: _Account, t: float,
                        prepared: bool) -> None:
        rng = self.rng
        who = entry.patient
        if entry.done:
            if len(entry.accounts) > 1 and who.id_number in session.patients:
                # A relative got there first; the platform refuses a second booking.
                dev = self.pick_device(acct)
                self.human_flow(acct, dev, self.genuine_ip(acct, t), t, session.doctor,
                                who.id_number, 409, prepared=prepared)
            return
        dev = self.pick_device(acct)
        ip = self.genuine_ip(acct, t)
        ok = self.available(session, who.id_number, t)
        self.human_flow(acct, dev, ip, t, session.doctor, who.id_number, 201 if ok else 409,
                        prepared=prepared, pace=0.5 if entry.speed == "fast" else 1.0)
        if not ok:
            if t > session.start - HOUR:
                return
            entry.fails += 1
            if rng.random() < 0.4:
                self.hit(t + rng.uniform(1, 8), ip, acct.account_id, dev.device_id, "GET",
                         f"/api/v1/doctors/{session.doctor.doctor_id}/schedule", 200, dev.ua)
            if entry.fails >= entry.max_fails:
                entry.done = True
                self.give_up(entry, acct, t)
            return
        entry.done = True
        slot = self.take_slot(session, who.id_number)
        phone = None if who is acct.owner or (who.phone and rng.random() < 0.5) else \
            acct.owner.phone
        booking = self.make_booking(t=t, acct=acct, who=who, doctor=session.doctor,
                                    session=session, slot=slot, channel=dev.channel, ip=ip,
                                    device=dev, phone=phone)
        self.settle_genuine(booking, acct, dev, self.account_payer(acct, who), hot=True)
        if acct.kind == "family_swap" and rng.random() < 0.35:
            room = booking.slot - t
            if room > 5 * HOUR:
                when = t + rng.uniform(0.2, 0.8) * (room - 3 * HOUR)
                self.at(when, partial(self.swap_contended, booking))

    def swap_contended(self, booking: _Booking, t: float) -> None:
        rng = self.rng
        acct = booking.account
        session = booking.session
        others = [p for p in acct.patients if p.id_number != booking.patient_id
                  and self.suits(booking.doctor.audience, 2025 - p.birth_year, p)]
        if session is None or not others or booking.cancelled is not None:
            return
        dev = self.pick_device(acct)
        ip = self.genuine_ip(acct, t)
        self.cancel(booking, t)
        self.cancel_hit(acct, dev, ip, t, booking.booking_id)
        who = rng.choice(others)
        self.offer_freed(session, t)
        later = t + rng.uniform(12, 90)

        def rebook(now: float) -> None:
            ok = booking.slot in session.free and self.available(session, who.id_number, now)
            self.human_flow(acct, dev, ip, now, booking.doctor, who.id_number,
                            201 if ok else 409, pace=0.3)
            if ok:
                slot = self.take_slot(session, who.id_number, booking.slot)
                again = self.make_booking(t=now, acct=acct, who=who, doctor=booking.doctor,
                                          session=session, slot=slot, channel=booking.channel,
                                          ip=ip, device=dev, phone=acct.owner.phone)
                self.settle_genuine(again, acct, dev, acct.payers[0], hot=True)

        self.at(later, rebook)

    def give_up(self, entry: _PoolEntry, acct: _Account, t: float) -> None:
        rng = self.rng
        doctor = entry.doctor
        roll = rng.random()
        if roll < 0.3:
            rings = [r for r in self.rings_for.get(doctor.doctor_id, ())
                     if r.start <= t <= r.end - 3 * DAY]
            if rings:
                ring = rng.choice(rings)
                later = _day_of(t) * DAY + rng.randint(0, 3) * DAY + _habit_hour(rng) * HOUR
                order = _Order(entry.patient, acct, rng.choice(ring.resellers)
                               if ring.resellers else None, doctor, max(later, t + HOUR))
                self.at(order.arrived, partial(self.order_arrives, ring, order))
                return
        if roll < 0.6:
            same = [d for d in self.by_dept[(doctor.hospital.hospital_id, doctor.department)]
                    if d.tier == "ordinary"] or self.doctors_for(entry.patient)
            if same:
                self.book_direct(acct, entry.patient, rng.choice(same), _day_of(t) + 1,
                                 lead=rng.randint(0, 3), after=t)

    def offer_freed(self, session: _Session, t: float, exclude: _Ring | None = None) -> None:
        """A slot went back on sale; people who keep refreshing may see it."""
        rng = self.rng
        if session.start - t < 2 * HOUR:
            return
        responders: list[tuple[float, _PoolEntry]] = []
        for entry in self.pool.get(session.doctor.doctor_id, ()):
            if entry.done or entry.start > t:
                continue
            if entry.speed == "picker" and rng.random() < 0.8:
                responders.append((rng.uniform(3, 90), entry))
            elif rng.random() < 0.08:
                responders.append((rng.expovariate(1 / 1500), entry))
        if not responders and rng.random() < 0.6:
            crowd = self.audience.get(session.doctor.audience, [])
            if crowd:
                acct, who = rng.choice(crowd)
                responders.append((rng.expovariate(1 / 3600),
                                   _PoolEntry([acct], who, session.doctor, t, "casual", 1)))
        responders.sort(key=lambda r: r[0])
        for delay, entry in responders[:3]:
            self.at(t + delay, partial(self.genuine_attempt, session, entry,
                                            entry.accounts[0], prepared=False))
        for ring in self.rings_for.get(session.doctor.doctor_id, ()):
            if ring.polls and ring is not exclude and ring.start <= t <= ring.end:
                self.at(t + rng.uniform(2, 45), partial(self.ring_poll, ring, session))

    def suspend(self, session: _Session, t: float) -> None:
        """The doctor cannot come: the hospital cancels the session and refunds everyone."""
        rng = self.rng
        session.free.clear()
        for booking in session.bookings:
            if booking.cancelled is not None:
                continue
            booking.refunded_by_hospital = True
            self.cancel(booking, t + rng.uniform(0, 600))
            if booking.ring is None and booking.account.kind not in _INSTITUTIONS and \
                    rng.random() < 0.7:
                who = next((p for p in booking.account.patients
                            if booking.patient_id in (p.id_number, p.typo_id)), None)
                same = [d for d in self.by_dept[(booking.doctor.hospital.hospital_id,
                                                 booking.doctor.department)]
                        if d.tier == "ordinary"]
                if who is not None and same:
                    self.book_direct(booking.account, who, rng.choice(same), session.day + 1,
                                     lead=rng.randint(0, 2), after=t)

    # ------------------------------------------------------------------ rings
    def build_rings(self) -> None:
        plans = list(_RING_PLANS)
        wanted = len(plans) if self.scale >= 1 else max(
            len(RING_KINDS), round(len(plans) * math.sqrt(self.scale)))
        chosen: list[int] = []
        for kind in RING_KINDS:
            chosen.append(next(k for k, p in enumerate(plans) if p.kind == kind))
        for k in sorted(range(len(plans)), key=lambda k: plans[k].priority):
            if len(chosen) >= wanted:
                break
            if k not in chosen:
                chosen.append(k)
        for number, k in enumerate(sorted(chosen), start=1):
            self.rings.append(self.build_ring(f"R{number:02d}", plans[k]))

    def ring_ua(self, speed: str, hiding: tuple[str, ...]) -> str:
        rng = self.rng
        if speed == "api":
            if "app_disguise" in hiding:
                return _android_ua(rng)
            return rng.choice(("python-requests/2.31.0", "okhttp/3.12.13", "Go-http-client/1.1",
                               "Apache-HttpClient/4.5.13 (Java/1.8.0_292)"))
        if speed == "clicker":
            return _android_ua(rng, model=rng.choice(("V1938T", "SM-G977N", "ASUS_I005DA")),
                               android=rng.choice((7, 9)))
        return ""

    def ring_identity(self, style: str, rng: random.Random) -> _Person:
        """The identities a ring fills in for its holds."""
        if style == "nonsense":
            name = rng.choice(("561", "789", "123", "张三", "测试", "aaa", "1", "王", "李四", "11",
                               "刘一", "abc", "000"))
            roll = rng.random()
            if roll < 0.45:
                body = f"{rng.randint(10**16, 10**17 - 1)}"
                check = rng.choice([c for c in _ID_CHECK if c != id_check_char(body)])
                number = self.unique(lambda: body + check)
            elif roll < 0.65:
                number = self.unique(lambda: f"{rng.randint(10**16, 10**17 - 1)}")
            elif roll < 0.8:
                number = self.unique(lambda: f"{rng.randint(10**14, 10**15 - 1)}")
            else:
                number = self.unique(lambda: f"{rng.choice(_LOCAL_REGIONS)}19"
                                             f"{rng.randint(50, 99)}{rng.randint(13, 19)}"
                                             f"{rng.randint(10, 39)}{rng.randint(0, 9999):04d}")
            phone, carrier = self.new_phone(virtual=True)
            return _Person(number, name, phone, 1980, False, carrier)
        if style == "fabricated":
            year = rng.randint(1955, 2001)
            female = rng.random() < 0.5
            region = rng.choice(_OUT_REGIONS + _LOCAL_REGIONS)
            name = rng.choice(_SURNAMES) + self.given_name(year, female)
            phone, carrier = self.new_phone(virtual=rng.random() < 0.6)
            return _Person(self.id_number(region, year, female), name, phone, year, female,
                           carrier, cancer=True)
        return self.person(birth_year=rng.randint(1950, 1995), traits=False,
                           cancer=rng.random() < 0.5)

    def build_ring(self, rid: str, plan: _Plan) -> _Ring:
        rng = self.rng
        first = rng.randint(0, max(0, 364 - plan.months * 30))
        targets: list[_Doctor] = []
        for tier, hospital, count in plan.targets:
            options = [d for d in self.doctors if d.tier == tier and d not in targets
                       and (hospital is None or d.hospital.hospital_id == hospital)]
            targets.extend(rng.sample(options, min(count, len(options))))
        hiding = plan.hiding
        speed = plan.speed
        ring = _Ring(
            rid=rid, kind=plan.kind, tactics=plan.tactics, hiding=hiding, targets=targets,
            start=first * DAY, end=(first + plan.months * 30) * DAY, speed=speed,
            direct=plan.direct, hold=plan.hold,
            max_grab=max(1, round(plan.max_grab * max(0.4, self.scale))),
            hold_cap=max(2, round(plan.hold_cap * self.scale)), p_active=plan.p_active,
            pay=plan.pay, phone_policy=plan.phone, orders_per_week=plan.orders * self.scale,
            proxy=plan.net == "proxy", cgnat=plan.net == "cgnat",
            in_buyer_account=plan.in_buyer_account, rebook_other_account=plan.rebook_other,
            launder_gap=plan.gap, polls="slow_bot" in hiding or plan.polls)
        ring.bot_ua = self.ring_ua(speed, hiding)
        for doctor in targets:
            self.rings_for.setdefault(doctor.doctor_id, []).append(ring)
        net = plan.net
        if net == "vps":
            ring.ips = [self.new_ip(_CLOUD_NETS) for _ in range(rng.randint(1, 3))]
        elif net == "studio":
            ring.ips = [self.new_ip(_HOME_NETS) for _ in range(plan.n_ips)]
        elif net == "subnet":
            block = self.new_ip(_HOME_NETS).rsplit(".", 1)[0]

            def neighbour() -> str:
                return f"{block}.{rng.randint(2, 250)}"

            ring.ips = [self.unique(neighbour) for _ in range(3)]
        for ip in ring.ips:
            self.label("ip", ip, rid, "bot_host")
        shared = plan.devices
        for _ in range(shared):
            ua = ring.bot_ua or _android_ua(rng)
            dev = self.new_device("app", ua)
            ring.devices.append(dev)
            self.label("device", dev.device_id, rid, "bot_host")
        size = max(2, round(plan.size * self.rscale))
        style = plan.identities
        sleepers = "sleeper" in hiding
        structure = plan.structure
        hold_role = "broker" if plan.structure == "commander" else (
            "holder" if ring.hold else "member")
        if ring.pay == "hub" or structure == "tiers":
            ring.hub_payer = self.new_payer(rng.choice(("alipay", "wechat")))
            self.label("payer", ring.hub_payer, rid, "hub")
        if ring.pay == "many":
            for _ in range(max(3, round(plan.n_payers * self.rscale))):
                payer = self.new_payer("card" if "cards" in hiding else None)
                ring.payers.append(payer)
                self.label("payer", payer, rid, "member")
        households = [self.households + k + 1 for k in range(max(1, size // 5))]
        self.households += len(households)
        for k in range(size):
            if style in ("nonsense", "fabricated") and structure == "flat":
                owner = self.ring_identity(style, rng)
                self.label("patient", owner.id_number, rid, "fake_identity")
                self.label("phone", owner.phone, rid, "virtual_number"
                           if owner.phone[:3] in _VIRTUAL_PREFIXES else "member")
            else:
                owner = self.person(birth_year=rng.randint(1960, 1998), traits=False)
                self.label("phone", owner.phone, rid, "member")
            acct = _Account(self.new_account_id(), owner, [owner], [], [],
                            households[k % len(households)], "ring", 0.0)
            acct.ring = ring
            if shared:
                acct.devices = [ring.devices[k % shared]]
            else:
                ua = ring.bot_ua or (_ios_ua(rng) if rng.random() < 0.3 else _android_ua(rng))
                dev = self.new_device("app" if rng.random() < 0.7 else "wechat", ua)
                acct.devices = [dev]
                self.label("device", dev.device_id, rid, "member")
            if ring.ips and not ring.proxy:
                acct.fixed_ips = tuple(ring.ips)
            acct.payers = [self.personal_payer(owner)]
            if ring.pay == "member":
                self.label("payer", acct.payers[0], rid, "member")
            ring.accounts.append(acct)
            self.accounts.append(acct)
            self.label("account", acct.account_id, rid, hold_role)
            if sleepers:
                when = ring.start - rng.uniform(60, 180) * DAY
            else:
                when = ring.start - rng.uniform(0, 10) * DAY + rng.uniform(0, 2 * HOUR)
            self.register(acct, acct.devices[0], self.ring_ip(ring, acct, when), when)
            if sleepers:
                alive = when + rng.uniform(10, 30) * DAY
                while alive < ring.start:
                    self.browse(acct, acct.devices[0], self.ring_ip(ring, acct, alive), alive,
                                rng.choice(targets))
                    alive += rng.uniform(12, 40) * DAY
        n_ids = plan.n_ids
        if style in ("nonsense", "fabricated") and structure == "flat":
            ring.hold_ids = [a.owner for a in ring.accounts]
            for acct in ring.accounts:
                if rng.random() < 0.5:
                    extra = self.ring_identity(style, rng)
                    acct.patients.append(extra)
                    ring.hold_ids.append(extra)
                    self.label("patient", extra.id_number, rid, "fake_identity")
        elif ring.hold:
            ring.hold_ids = [a.owner for a in ring.accounts[: max(1, n_ids or size)]]
            while len(ring.hold_ids) < n_ids:
                ring.hold_ids.append(self.ring_identity(style, rng))
            for who in ring.hold_ids:
                self.label("patient", who.id_number, rid, "holder" if style == "own"
                           else "fake_identity")
        if structure == "tiers":
            dev_person = self.person(birth_year=rng.randint(1985, 1998), traits=False)
            developer = self.ring_member(ring, dev_person, "developer", fixed=ring.ips)
            developer.devices = [ring.devices[0]] if ring.devices else developer.devices
            self.label("device", developer.devices[0].device_id, rid, "developer")
            ring.accounts.insert(0, developer)
            # The first-level scalper runs a copy of the software on his own machine.
            hub = self.ring_member(ring, self.person(birth_year=rng.randint(1975, 1992),
                                                     traits=False), "hub", fixed=ring.ips)
            hub.payers = [ring.hub_payer]
            if ring.devices:
                hub.devices = [ring.devices[-1]]
            ring.accounts.append(hub)
            self.ring_resellers(ring, plan.resellers, "reseller", accounts=True)
        elif structure == "commander":
            self.ring_resellers(ring, plan.resellers, "buyer_facing", accounts=False)
        ring.phones = [a.owner.phone for a in ring.accounts if a.owner.phone]
        if "camouflage" in hiding:
            self.camouflage(ring, style)
        self.plan_orders(ring)
        return ring

    def ring_member(self, ring: _Ring, who: _Person, role: str,
                    fixed: list[str] | None = None) -> _Account:
        rng = self.rng
        self.households += 1
        dev = self.new_device("app", _android_ua(rng) if rng.random() < 0.7 else _ios_ua(rng))
        acct = _Account(self.new_account_id(), who, [who], [dev], [self.personal_payer(who)],
                        self.households, "ring", 0.0, ring=ring)
        if fixed:
            acct.fixed_ips = tuple(fixed)
        self.register(acct, dev, self.ring_ip(ring, acct, ring.start - 30 * DAY),
                      ring.start - rng.uniform(20, 200) * DAY)
        self.accounts.append(acct)
        self.label("account", acct.account_id, ring.rid, role)
        self.label("device", dev.device_id, ring.rid, role)
        self.label("phone", who.phone, ring.rid, role)
        self.label("payer", acct.payers[0], ring.rid, role)
        return acct

    def ring_resellers(self, ring: _Ring, count: int, role: str, *, accounts: bool) -> None:
        rng = self.rng
        for _ in range(max(2, round(count * self.rscale))):
            who = self.person(birth_year=rng.randint(1970, 1998), traits=False)
            if accounts:
                acct = self.ring_member(ring, who, role)
                # Posing as an accompanying service: some honest-looking bookings for clients.
                for _ in range(self.poisson(4)):
                    client = self.walk_in(rng.choice(("out", "local")))
                    doctors = self.doctors_for(client, tiers=("ordinary",))
                    day = rng.randint(max(0, _day_of(ring.start)), min(364, _day_of(ring.end)))
                    if doctors:
                        self.book_direct(acct, client, rng.choice(doctors), day,
                                         phone=who.phone, hour=rng.uniform(9, 18))
            else:
                self.households += 1
                acct = _Account("", who, [who], [], [self.personal_payer(who)], self.households,
                                "ring", 0.0, ring=ring)
                self.label("phone", who.phone, ring.rid, role)
                self.label("payer", acct.payers[0], ring.rid, role)
            ring.resellers.append(acct)

    def camouflage(self, ring: _Ring, style: str) -> None:
        rng = self.rng
        for acct in ring.accounts:
            if style in ("nonsense", "fabricated"):
                for _ in range(rng.choice((0, 1, 1, 2))):
                    doctors = self.doctors_for(acct.owner, tiers=("ordinary",))
                    day = rng.randint(max(0, _day_of(ring.start) - 30), 364)
                    if not doctors:
                        continue
                    booking = self.book_direct(acct, acct.owner, rng.choice(doctors), day,
                                               settle=False)
                    if booking is not None:
                        booking.ring = ring
                        booking.no_show = True
                        when = booking.created + rng.uniform(0.1, 0.9) * max(
                            60.0, booking.slot - booking.created - 2 * HOUR)
                        self.at(when, partial(self.ring_cancel, booking))
            else:
                family = [self.person(birth_year=rng.randint(1940, 2020), traits=False,
                                      phone=False) for _ in range(rng.randint(0, 2))]
                acct.patients.extend(family)
                self.ordinary_visits(acct, 1 + self.poisson(1.5))

    def plan_orders(self, ring: _Ring) -> None:
        rng = self.rng
        t = ring.start
        rate = ring.orders_per_week / (7 * DAY)
        while rate > 0:
            t += rng.expovariate(rate)
            if t > ring.end:
                break
            # Buyers get in touch during the day and the evening.
            when = _day_of(t) * DAY + _habit_hour(rng) * HOUR
            doctor = rng.choice(ring.targets)
            buyer, account = self.ring_buyer(ring, doctor)
            if buyer is None:
                continue
            order = _Order(buyer, account, rng.choice(ring.resellers) if ring.resellers else None,
                           doctor, when)
            self.at(when, partial(self.order_arrives, ring, order))

    def ring_buyer(self, ring: _Ring, doctor: _Doctor) -> tuple[_Person | None, _Account | None]:
        rng = self.rng
        crowd = self.audience.get(doctor.audience, [])
        if ring.in_buyer_account or (crowd and rng.random() < 0.35):
            if not crowd:
                return None, None
            acct, who = rng.choice(crowd)
            return who, acct if ring.in_buyer_account else None
        age_tag = doctor.audience
        if age_tag == "child":
            buyer = self.person(birth_year=rng.randint(2011, 2023), origin=rng.choice(
                ("local", "out")), traits=False)
        else:
            buyer = self.person(
                birth_year=rng.randint(1940, 1975) if age_tag in ("elder", "cancer", "cancer_f")
                else rng.randint(1950, 2000),
                female=True if age_tag in ("female", "cancer_f") else (
                    False if age_tag == "male" else None),
                origin=rng.choice(("out", "out", "local")),
                cancer=age_tag.startswith("cancer"))
        return buyer, None

    def ring_ip(self, ring: _Ring, acct: _Account, t: float) -> str:
        rng = self.rng
        if ring.proxy:
            return self.new_ip(_HOME_NETS)
        if ring.cgnat:
            return self.mobile_ip(acct.owner.carrier)
        if acct.fixed_ips:
            return rng.choice(acct.fixed_ips)
        if ring.ips:
            return rng.choice(ring.ips)
        if rng.random() < 0.3:
            return self.mobile_ip(acct.owner.carrier)
        ip = self.home_ip(acct.household, t)
        self.label("ip", ip, ring.rid, "member")
        return ip

    def ring_release(self, ring: _Ring, session: _Session, t: float, extra: bool) -> None:
        rng = self.rng
        if not ring.start <= t <= ring.end:
            return
        if extra and ring.kind != "family_crowd":
            return
        if rng.random() > ring.p_active:
            return
        doc = session.doctor.doctor_id
        plan: list[_Order | None] = []
        pending = ring.pending.get(doc)
        while ring.direct and pending and len(plan) < ring.max_grab:
            order = pending.popleft()
            if not order.done and t - order.arrived < 21 * DAY:
                plan.append(order)
        if ring.hold:
            held = sum(1 for b in ring.holds.get(doc, ()) if b.cancelled is None and not b.sold)
            room = min(ring.max_grab - len(plan), ring.hold_cap - held)
            if room > 0:
                plan.extend([None] * rng.randint((room + 1) // 2, room))
        if session.doctor.tier == "warm":
            plan = plan[: max(1, len(plan) // 2)]
        base = t + self.reaction(ring.speed)
        for k, wanted in enumerate(plan):
            if ring.speed == "api":
                when = base + k * rng.uniform(0.015, 0.05)
            elif ring.speed == "clicker":
                lanes = max(1, len(ring.devices))
                when = base + (k // lanes) * rng.uniform(1.6, 2.6) + rng.uniform(0, 0.3)
            elif ring.speed == "slow":
                when = base + k * rng.uniform(8, 40)
            else:
                when = t + self.reaction("hand")
            self.at(when, partial(self.ring_attempt, ring, session, wanted, first=k == 0))

    def reaction(self, speed: str) -> float:
        rng = self.rng
        if speed == "api":
            return rng.lognormvariate(math.log(0.05), 0.5)
        if speed == "clicker":
            return rng.uniform(1.0, 2.6)
        if speed == "slow":
            return rng.uniform(3.0, 22.0)
        return rng.lognormvariate(math.log(6.0), 0.45)

    def ring_actor(self, ring: _Ring, t: float, order: _Order | None
                   ) -> tuple[_Account, _Device, str]:
        rng = self.rng
        if order is not None and ring.in_buyer_account and order.account is not None and \
                rng.random() < 0.85:
            dev = rng.choice(ring.devices)
            return order.account, dev, self.ring_ip(ring, order.account, t)
        day = _day_of(t)
        cap = 2 if ring.speed == "hand" else 4
        workers = [a for a in ring.accounts if self.ring_role(ring, a) in (
            "holder", "member", "broker", "hub")] or ring.accounts
        for _ in range(len(workers)):
            ring.cursor = (ring.cursor + 1) % len(workers)
            acct = workers[ring.cursor]
            if ring.use.get((acct.account_id, day), 0) < cap:
                break
        ring.use[(acct.account_id, day)] = ring.use.get((acct.account_id, day), 0) + 1
        return acct, acct.devices[0], self.ring_ip(ring, acct, t)

    def ring_role(self, ring: _Ring, acct: _Account) -> str:
        found = self.labels.get(("account", acct.account_id))
        return found[1] if found else ""

    def ring_flow(self, ring: _Ring, acct: _Account, dev: _Device, ip: str, t: float,
                  doctor: _Doctor, who_id: str, status: int, first: bool) -> None:
        rng = self.rng
        a, d = acct.account_id, dev.device_id
        ua = dev.ua
        if ring.speed == "api":
            if first:
                for k in range(rng.randint(3, 25)):
                    self.hit(t - rng.uniform(0.05, 2.5), ip, a, d, "GET",
                             f"/api/v1/doctors/{doctor.doctor_id}/slots", 429 if k > 9 else 200,
                             ua)
            self.bind(acct, dev, ip, t - rng.uniform(0.2, 3.0), who_id)
            if doctor.hospital.captcha and "app_disguise" in ring.hiding:
                self.hit(t - 0.8, ip, a, d, "POST", "/api/v1/captcha/verify", 200, ua)
            self.hit(t, ip, a, d, "POST", "/api/v1/bookings", status, ua)
            return
        if ring.speed == "clicker":
            step = rng.uniform(0.28, 0.33)
            self.login_if_needed(acct, dev, ip, t - 30)
            self.bind(acct, dev, ip, t - rng.uniform(60, 900), who_id)
            paths = [f"/api/v1/doctors/{doctor.doctor_id}/schedule",
                     f"/api/v1/doctors/{doctor.doctor_id}/slots", "/api/v1/patients"]
            for k, path in enumerate(paths):
                self.hit(t - step * (len(paths) - k + 1), ip, a, d, "GET", path, 200, ua)
            if doctor.hospital.captcha:
                self.hit(t - step, ip, a, d, "POST", "/api/v1/captcha/verify", 200, ua)
            self.hit(t, ip, a, d, "POST", "/api/v1/bookings", status, ua)
            return
        self.human_flow(acct, dev, ip, t, doctor, who_id, status, prepared=True,
                        pace=rng.uniform(0.3, 1.0))

    def hold_identity(self, ring: _Ring, acct: _Account, session: _Session) -> _Person | None:
        rng = self.rng
        if not ring.hold_ids:
            return None
        own = [p for p in acct.patients if p in ring.hold_ids]
        options = own if own and rng.random() < 0.8 else ring.hold_ids
        for _ in range(4):
            who = rng.choice(options)
            if who.id_number not in session.patients:
                if who not in acct.patients:
                    acct.patients.append(who)
                return who
        return None

    def ring_attempt(self, ring: _Ring, session: _Session, order: _Order | None, t: float,
                     first: bool, actor: tuple[_Account, _Device, str] | None = None) -> None:
        rng = self.rng
        doc = session.doctor.doctor_id
        if order is not None and order.done:
            return
        acct, dev, ip = actor or self.ring_actor(ring, t, order)
        who = order.buyer if order is not None else self.hold_identity(ring, acct, session)
        if who is None:
            return
        ok = self.available(session, who.id_number, t)
        self.ring_flow(ring, acct, dev, ip, t, session.doctor, who.id_number, 201 if ok else 409,
                       first)
        if not ok:
            if order is not None and t < order.arrived + 20 * DAY:
                ring.pending.setdefault(doc, deque()).append(order)
            return
        slot = self.take_slot(session, who.id_number)
        if order is not None:
            self.fulfil(ring, order, acct, dev, ip, t, session, slot)
            return
        booking = self.make_booking(t=t, acct=acct, who=who, doctor=session.doctor,
                                    session=session, slot=slot, channel=dev.channel, ip=ip,
                                    device=dev, phone=who.phone or acct.owner.phone, ring=ring)
        booking.no_show = True
        if session.doctor.hospital.prepay or rng.random() < 0.3:
            self.ring_pay(ring, booking, acct, dev, ip, None)
        ring.holds.setdefault(doc, []).append(booking)
        check = session.start - rng.uniform(14 * HOUR, 40 * HOUR)
        self.at(max(check, t + 60), partial(self.unsold, ring, booking))
        waiting = ring.waiting.get(doc)
        while waiting:
            order = waiting.popleft()
            if order.done or t - order.arrived > 21 * DAY:
                continue
            booking.sold = True
            when = min(t + rng.uniform(20 * MINUTE, 8 * HOUR), session.start - 4 * HOUR)
            self.at(max(when, t + 30), partial(self.launder, ring, booking, order))
            break

    def ring_pay(self, ring: _Ring, booking: _Booking, acct: _Account, dev: _Device, ip: str,
                 order: _Order | None) -> None:
        rng = self.rng
        policy = ring.pay
        if policy == "buyer_mostly":
            policy = "buyer" if rng.random() < 0.9 else "reseller"
        elif policy == "hub_or_reseller":
            policy = "hub" if rng.random() < 0.4 else "reseller"
        if order is None and policy in ("buyer", "reseller"):
            policy = "member"
        if policy == "hub" or (ring.hub_payer and acct.payers[:1] == [ring.hub_payer]):
            payer = ring.hub_payer
        elif policy == "many":
            payer = rng.choice(ring.payers)
        elif policy == "reseller" and order is not None and order.reseller is not None:
            payer = order.reseller.payers[0]
        elif policy == "buyer" and order is not None:
            payer = self.personal_payer(order.buyer) if order.account is None else \
                order.account.payers[0]
            self.label("payer", payer, "", "hard_case:scalper_customer")
            if not booking.doctor.hospital.prepay and rng.random() < 0.6:
                booking.visit_payer = payer
                return
        else:
            payer = acct.payers[0]
            if order is None and ring.pay not in ("member",):
                payer = ring.hub_payer or (ring.payers[0] if ring.payers else payer)
            self.label("payer", payer, ring.rid, "member")
        lag = {"api": (0.15, 1.2), "clicker": (1.5, 6.0), "slow": (20.0, 120.0)}.get(
            ring.speed, (25.0, 240.0))
        if policy == "buyer":
            lag = (40.0, 900.0)     # the buyer is sent a payment link and pays it by hand
        when = booking.created + rng.uniform(*lag)
        self.pay(booking, when, payer)
        if order is not None and order.account is booking.account and policy == "buyer":
            # The buyer pays on their own phone, from wherever they are.
            own = order.account.devices[0]
            self.pay_hit(order.account, own, self.genuine_ip(order.account, when), when,
                         booking.booking_id)
            return
        self.pay_hit(acct, dev, ip, when, booking.booking_id)

    def fulfil(self, ring: _Ring, order: _Order, acct: _Account, dev: _Device, ip: str, t: float,
               session: _Session, slot: float) -> None:
        rng = self.rng
        order.done = True
        buyer = order.buyer
        if ring.phone_policy == "ring" or not buyer.phone:
            if order.reseller is not None:
                phone = order.reseller.owner.phone
            elif ring.phones:
                phone = rng.choice(ring.phones)
            else:
                phone = acct.owner.phone
        else:
            phone = buyer.phone
            self.label("phone", phone, "", "hard_case:scalper_customer")
        booking = self.make_booking(t=t, acct=acct, who=buyer, doctor=session.doctor,
                                    session=session, slot=slot, channel=dev.channel, ip=ip,
                                    device=dev, phone=phone, ring=ring)
        booking.sold = True
        booking.no_show = rng.random() < 0.04
        self.label("patient", buyer.id_number, "", "hard_case:scalper_customer")
        if order.account is not None and acct is order.account:
            self.label("account", acct.account_id, "", "hard_case:scalper_customer")
        self.ring_pay(ring, booking, acct, dev, ip, order)

    def order_arrives(self, ring: _Ring, order: _Order, t: float) -> None:
        rng = self.rng
        if t > ring.end:
            return
        doc = order.doctor.doctor_id
        if ring.hold:
            for hold in ring.holds.get(doc, ()):
                session = hold.session
                if hold.sold or hold.cancelled is not None or session is None:
                    continue
                if session.start - t < 8 * HOUR or order.buyer.id_number in session.patients:
                    continue
                hold.sold = True
                when = min(t + rng.uniform(10 * MINUTE, 5 * HOUR), session.start - 4 * HOUR)
                self.at(max(when, t + 5), partial(self.launder, ring, hold, order))
                return
        queue = ring.pending if ring.direct else ring.waiting
        queue.setdefault(doc, deque()).append(order)

    def launder(self, ring: _Ring, hold: _Booking, order: _Order, t: float) -> None:
        """一退一抢: cancel the held slot and take it again at once for the paying buyer."""
        rng = self.rng
        session = hold.session
        if session is None or hold.cancelled is not None or order.done:
            hold.sold = False
            return
        acct = hold.account
        dev = next((d for d in acct.devices if d.device_id == hold.device), acct.devices[0])
        ip = self.ring_ip(ring, acct, t)
        self.cancel(hold, t)
        self.cancel_hit(acct, dev, ip, t, hold.booking_id, quick=ring.speed != "hand")
        gap = rng.uniform(*ring.launder_gap)
        if ring.in_buyer_account and order.account is not None:
            actor = (order.account, rng.choice(ring.devices) if ring.devices else dev,
                     self.ring_ip(ring, order.account, t))
        elif ring.rebook_other_account and len(ring.accounts) > 1:
            other = rng.choice([a for a in ring.accounts if a is not acct])
            actor = (other, other.devices[0], self.ring_ip(ring, other, t))
        else:
            actor = (acct, dev, ip)
        if gap > 2.5:
            self.offer_freed(session, t)

        def rebook(now: float) -> None:
            if order.done:
                return
            who = order.buyer
            ok = hold.slot in session.free and self.available(session, who.id_number, now)
            self.ring_flow(ring, actor[0], actor[1], actor[2], now, session.doctor,
                           who.id_number, 201 if ok else 409, False)
            if ok:
                slot = self.take_slot(session, who.id_number, hold.slot)
                self.fulfil(ring, order, actor[0], actor[1], actor[2], now, session, slot)
            elif now < order.arrived + 20 * DAY:
                (ring.pending if ring.direct else ring.waiting).setdefault(
                    session.doctor.doctor_id, deque()).append(order)

        self.at(t + gap, rebook)

    def unsold(self, ring: _Ring, hold: _Booking, t: float) -> None:
        if hold.sold or hold.cancelled is not None:
            return
        if self.rng.random() < 0.75:
            self.ring_cancel(hold, t)
            if hold.session is not None:
                self.offer_freed(hold.session, t, exclude=ring)

    def ring_cancel(self, booking: _Booking, t: float) -> None:
        if booking.cancelled is not None:
            return
        acct = booking.account
        ring = booking.ring
        dev = next((d for d in acct.devices if d.device_id == booking.device), acct.devices[0])
        ip = self.ring_ip(ring, acct, t) if ring is not None else booking.ip
        self.cancel(booking, t)
        self.cancel_hit(acct, dev, ip, t, booking.booking_id,
                        quick=ring is not None and ring.speed != "hand")

    def ring_poll(self, ring: _Ring, session: _Session, t: float) -> None:
        """Slow bots watch for returned slots and take them for waiting buyers or as holds."""
        doc = session.doctor.doctor_id
        pending = ring.pending.get(doc)
        order = None
        while pending:
            candidate = pending.popleft()
            if not candidate.done:
                order = candidate
                break
        if order is None and not ring.hold:
            return
        self.ring_attempt(ring, session, order, t, False)

    def developer_tests(self) -> None:
        """Developers try their software on the target doctors and let go of what it takes."""
        rng = self.rng
        for ring in self.rings:
            developer = next((a for a in ring.accounts
                              if self.ring_role(ring, a) == "developer"), None)
            if developer is None:
                continue
            for _ in range(rng.randint(3, 7)):
                doctor = rng.choice(ring.targets)
                session = self.next_session(doctor, _day_of(ring.start) + doctor.hospital.horizon
                                            + rng.randint(0, 20))
                if session is None:
                    continue
                t = session.released_at + rng.lognormvariate(math.log(0.05), 0.5)
                actor = (developer, developer.devices[0], self.ring_ip(ring, developer, t))

                def attempt(now: float, s: _Session = session,
                            a: tuple[_Account, _Device, str] = actor, ring: _Ring = ring) -> None:
                    if not self.available(s, a[0].owner.id_number, now):
                        return
                    self.ring_flow(ring, a[0], a[1], a[2], now, s.doctor, a[0].owner.id_number,
                                   201, True)
                    slot = self.take_slot(s, a[0].owner.id_number)
                    booking = self.make_booking(t=now, acct=a[0], who=a[0].owner,
                                                doctor=s.doctor, session=s, slot=slot,
                                                channel="app", ip=a[2], device=a[1], ring=ring)
                    self.label("patient", a[0].owner.id_number, ring.rid, "developer")
                    self.at(now + rng.uniform(30, 300), partial(self.ring_cancel, booking))

                self.at(t, attempt)

    # ------------------------------------------------------------------ the records
    def run(self) -> None:
        self.build_population()
        self.build_demand()
        self.build_rings()
        self.developer_tests()
        self.schedule_market()
        self.scanner_noise()
        self.idle_browsing()
        self.run_events()

    def scanner_noise(self) -> None:
        rng = self.rng
        paths = ("/.env", "/wp-login.php", "/api/v1/admin/users", "/phpmyadmin/", "/.git/config",
                 "/actuator/health", "/api/v1/../../etc/passwd", "/robots.txt")
        for _ in range(round(1500 * self.scale)):
            t = rng.uniform(FIRST_DAY * DAY, END)
            ip = self.new_ip(_SCANNER_NETS)
            for _ in range(rng.randint(1, 6)):
                path = rng.choice(paths)
                self.hit(t, ip, "", "", "GET", path, 200 if path == "/robots.txt" else
                         rng.choice((401, 403, 404, 404)), rng.choice(
                             ("Mozilla/5.0 zgrab/0.x", "curl/7.68.0", "python-requests/2.25.1",
                              "Mozilla/5.0 (compatible; Nmap Scripting Engine)")))
                t += rng.uniform(0.05, 2)

    def idle_browsing(self) -> None:
        """People look at schedules far more often than they book."""
        rng = self.rng
        for acct in self.accounts:
            if acct.kind in _INSTITUTIONS or not acct.devices or not acct.account_id:
                continue
            for _ in range(self.poisson(1.5)):
                t = rng.uniform(max(acct.registered_at, FIRST_DAY * DAY), END)
                t = _day_of(t) * DAY + _habit_hour(rng) * HOUR
                who = rng.choice(acct.patients)
                doctors = self.doctors_for(who, tiers=("ordinary", "warm", "hot"))
                if doctors:
                    dev = self.pick_device(acct)
                    self.browse(acct, dev, self.genuine_ip(acct, t), t, rng.choice(doctors))

    def resolve(self) -> tuple[list[list[str]], list[list[str]]]:
        """Each booking's state at the moment of the export, and its payment."""
        rng = self.rng
        bookings: list[list[str]] = []
        payments: list[list[str]] = []
        for b in sorted(self.bookings, key=lambda b: b.created):
            if b.created >= END:
                continue
            cancelled = b.cancelled if b.cancelled is not None and b.cancelled < END else None
            pay = b.payment
            if cancelled is not None:
                status = "refunded" if b.refunded_by_hospital else "cancelled"
            elif b.slot >= END:
                status = "paid" if pay is not None and pay.paid_at < END else "booked"
            elif b.no_show:
                status = "no_show"
            else:
                status = "checked_in"
                self.waiting_room(b)
                if pay is None and b.visit_payer:
                    pay = _Payment(self.unique(lambda: f"P{rng.randint(10**13, 10**14 - 1)}"),
                                   b.slot - rng.uniform(5, 80) * MINUTE, b.visit_payer,
                                   b.doctor.fee)
            naive = b.doctor.hospital.hospital_id == "H04" and b.created < 90 * DAY
            style = "naive" if naive or rng.random() < 0.004 else "+08"
            bookings.append([
                b.booking_id, _stamp(b.created, style), b.account.account_id, b.patient_id,
                b.name, b.phone, b.doctor.hospital.hospital_id, b.doctor.department,
                b.doctor.doctor_id, _stamp(b.slot, style, ms=False),
                _stamp(b.released_at, style, ms=False) if b.released_at is not None else "",
                b.channel, b.ip, b.device, status,
                _stamp(cancelled, style) if cancelled is not None else "", f"{b.doctor.fee:.2f}"])
            if pay is not None and pay.paid_at < END:
                pstyle = "Z" if pay.payer.startswith("card:") and rng.random() < 0.6 else (
                    "naive" if naive else "+08")
                refunded = pay.refunded_at if pay.refunded_at is not None and \
                    pay.refunded_at < END else None
                payments.append([pay.payment_id, b.booking_id, _stamp(pay.paid_at, pstyle),
                                 pay.payer, f"{pay.amount:.2f}",
                                 _stamp(refunded, pstyle) if refunded is not None else ""])
        return bookings, payments

    def waiting_room(self, booking: _Booking) -> None:
        """At the clinic people check their place in the queue, often on the hospital Wi-Fi."""
        rng = self.rng
        acct = booking.account
        if booking.ring is not None or acct.kind in _INSTITUTIONS or acct.ring is not None or \
                rng.random() > 0.4:
            return
        t = booking.slot - rng.uniform(0, 40 * MINUTE)
        dev = self.pick_device(acct)
        if rng.random() < 0.55:
            ip = rng.choice(self.wifi[booking.doctor.hospital.hospital_id])
        else:
            ip = self.mobile_ip(acct.owner.carrier)
        for _ in range(rng.randint(1, 2)):
            self.hit(t, ip, acct.account_id, dev.device_id, "GET",
                     f"/api/v1/bookings/{booking.booking_id}/queue", 200, dev.ua)
            t += rng.uniform(120, 900)

    def access_rows(self) -> list[list[str]]:
        rows = []
        for t, ip, account, device, method, path, status, ua in sorted(self.access):
            if FIRST_DAY * DAY <= t < END:
                rows.append([_stamp(t), ip, account, device, method, path, str(status), ua])
        return rows


_INSTITUTIONS = ("call_centre", "kiosk", "window", "referral_desk")


def _surname_of(who: _Person) -> str | None:
    if who.minority or who.foreign:
        return None
    return who.name[:2] if who.name[:2] in _COMPOUND_SURNAMES else who.name[0]


def _habit_hour(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.4:
        return rng.uniform(7, 12)
    if roll < 0.5:
        return rng.uniform(12, 14)
    if roll < 0.72:
        return rng.uniform(14, 18.5)
    if roll < 0.96:
        return rng.uniform(18.5, 23.5)
    return rng.uniform(0, 7) if rng.random() < 0.5 else rng.uniform(23.5, 24)


@dataclass(frozen=True)
class _Plan:
    """One ring's recipe: its tactic, its size at scale 1.0, and how it hides."""

    kind: str
    tactics: tuple[str, ...]
    size: int
    speed: str
    targets: tuple[tuple[str, str | None, int], ...]
    hiding: tuple[str, ...] = ()
    direct: bool = False
    hold: bool = False
    identities: str = "own"
    n_ids: int = 0
    pay: str = "hub"
    phone: str = "buyer"
    net: str = "studio"
    n_ips: int = 1
    devices: int = 0
    months: int = 6
    orders: float = 5.0
    max_grab: int = 3
    hold_cap: int = 8
    p_active: float = 0.8
    in_buyer_account: bool = False
    rebook_other: bool = False
    gap: tuple[float, float] = (0.05, 0.6)
    polls: bool = False
    structure: str = "flat"
    resellers: int = 0
    n_payers: int = 12
    priority: int = 5


_RING_PLANS = (
    _Plan("api_bot", ("T1", "T3", "T6"), 8, "api", (("hot", "H03", 2), ("hot", "H01", 1)),
          direct=True, hold=True, identities="nonsense", pay="hub", phone="ring", net="vps",
          devices=2, months=7, orders=6, max_grab=4, hold_cap=8, priority=1),
    _Plan("api_bot", ("T1",), 20, "api", (("hot", "H01", 2), ("hot", "H03", 1)),
          hiding=("sleeper", "proxy", "valid_ids", "many_payers", "app_disguise", "camouflage"),
          direct=True, hold=True, identities="fabricated", pay="many", phone="buyer",
          net="proxy", months=9, orders=7, max_grab=3, hold_cap=8, n_payers=25, priority=2),
    _Plan("api_bot", ("T1", "T6"), 5, "api", (("hot", "H03", 3),), direct=True,
          identities="own", pay="hub", phone="buyer", net="vps", devices=3, months=8, orders=10,
          max_grab=4, priority=4),
    _Plan("auto_clicker", ("T2", "T4"), 12, "clicker", (("hot", "H01", 2), ("hot", "H04", 1)),
          hold=True, identities="own", n_ids=6, pay="member", phone="ring", net="studio",
          n_ips=2, devices=4, months=6, orders=6, max_grab=4, hold_cap=10, gap=(0.4, 1.5),
          priority=1),
    _Plan("auto_clicker", ("T2", "T4"), 10, "slow", (("hot", "H02", 2),),
          hiding=("slow_bot", "sleeper", "many_payers", "shared_nat", "valid_ids"),
          direct=True, hold=True, identities="fabricated", pay="many", phone="buyer",
          net="cgnat", months=8, orders=5, max_grab=3, hold_cap=6, n_payers=12,
          gap=(6.0, 30.0), priority=3),
    _Plan("auto_clicker", ("T2",), 3, "clicker", (("hot", "H02", 1),), hold=True,
          identities="own", n_ids=3, pay="member", phone="ring", net="studio", devices=1,
          months=4, orders=3, max_grab=2, hold_cap=3, gap=(0.4, 1.5), priority=8),
    _Plan("virtual_number_farm", ("T3", "T4", "T6"), 120, "clicker",
          (("hot", "H01", 2), ("hot", "H03", 1)), hold=True, identities="nonsense", pay="hub",
          phone="ring", net="studio", n_ips=2, devices=10, months=8, orders=12, max_grab=8,
          hold_cap=40, gap=(0.3, 2.0), priority=1),
    _Plan("virtual_number_farm", ("T3", "T4"), 60, "slow",
          (("hot", "H03", 2), ("warm", "H03", 1)),
          hiding=("sleeper", "proxy", "valid_ids", "many_payers", "slow_bot", "camouflage"),
          hold=True, identities="fabricated", pay="many", phone="ring", net="proxy", months=9,
          orders=8, max_grab=5, hold_cap=25, n_payers=20, gap=(0.8, 2.5), priority=2),
    _Plan("virtual_number_farm", ("T3", "T1"), 30, "api", (("hot", "H04", 2),), direct=True,
          hold=True, identities="nonsense", pay="hub", phone="ring", net="vps", devices=3,
          months=5, orders=5, max_grab=4, hold_cap=10, priority=6),
    _Plan("hold_launder", ("T4",), 4, "hand", (("hot", "H01", 1), ("hot", "H04", 1)),
          hiding=("camouflage",), hold=True, identities="own", n_ids=8, pay="member",
          phone="ring", net="home", months=10, orders=4, max_grab=3, hold_cap=8,
          gap=(3.0, 25.0), priority=1),
    _Plan("hold_launder", ("T4", "T6"), 8, "api", (("hot", "H03", 2), ("hot", "H01", 1)),
          hold=True, identities="own", n_ids=5, pay="hub", phone="buyer", net="studio",
          devices=2, months=7, orders=7, max_grab=4, hold_cap=12, rebook_other=True,
          gap=(0.05, 0.8), priority=3),
    _Plan("identity_spread", ("T5", "T4"), 5, "clicker",
          (("warm", "H01", 3), ("warm", "H03", 2), ("warm", "H04", 1), ("hot", "H01", 1)),
          hold=True, identities="own", n_ids=3, pay="member", phone="ring", net="studio",
          devices=2, months=6, orders=5, max_grab=2, hold_cap=20, gap=(0.4, 1.5), priority=1),
    _Plan("identity_spread", ("T5",), 9, "hand",
          (("warm", "H01", 2), ("warm", "H02", 1), ("warm", "H04", 2), ("hot", "H04", 1)),
          hiding=("camouflage",), hold=True, identities="own", n_ids=5, pay="member",
          phone="ring", net="home", months=7, orders=4, max_grab=2, hold_cap=12,
          gap=(4.0, 20.0), priority=4),
    _Plan("payment_hub", ("T6", "T1", "T4"), 8, "api", (("hot", "H03", 2), ("hot", "H01", 1)),
          direct=True, hold=True, identities="fabricated", pay="hub", phone="ring", net="vps",
          devices=2, months=10, orders=15, max_grab=5, hold_cap=10, priority=1),
    _Plan("payment_hub", ("T6", "T2"), 10, "clicker", (("hot", "H01", 2), ("hot", "H04", 1)),
          hiding=("many_payers", "cards"), direct=True, hold=True, identities="own", n_ids=4,
          pay="many", phone="buyer", net="studio", devices=3, months=8, orders=8, max_grab=4,
          hold_cap=8, n_payers=30, priority=3),
    _Plan("payment_hub", ("T6",), 4, "slow", (("hot", "H02", 2),), hiding=("slow_bot",),
          direct=True, identities="own", pay="hub", phone="buyer", net="home", months=6,
          orders=6, max_grab=3, priority=5),
    _Plan("ip_fanout", ("T7", "T2"), 25, "clicker", (("hot", "H01", 2), ("warm", "H01", 2)),
          direct=True, hold=True, identities="fabricated", pay="many", phone="ring",
          net="studio", devices=5, months=6, orders=8, max_grab=8, hold_cap=12, n_payers=5,
          priority=1),
    _Plan("ip_fanout", ("T7", "T1"), 15, "api", (("hot", "H03", 1), ("hot", "H04", 1)),
          direct=True, hold=True, identities="fabricated", pay="hub", phone="ring",
          net="subnet", devices=4, months=5, orders=6, max_grab=5, hold_cap=8, priority=4),
    _Plan("family_crowd", ("T8", "T4"), 24, "hand", (("hot", "H01", 2),),
          hiding=("camouflage",), direct=True, hold=True, identities="own", pay="member",
          phone="buyer", net="home", months=9, orders=10, max_grab=6, hold_cap=8,
          gap=(3.0, 20.0), priority=1),
    _Plan("family_crowd", ("T8", "T4"), 14, "hand", (("hot", "H02", 2),),
          hiding=("camouflage",), hold=True, identities="own", pay="member", phone="ring",
          net="home", months=7, orders=6, max_grab=4, hold_cap=6, gap=(4.0, 25.0), priority=3),
    _Plan("family_crowd", ("T8",), 20, "hand",
          (("hot", "H04", 1), ("hot", "H01", 1), ("hot", "H03", 1)),
          hiding=("shared_nat", "camouflage"), direct=True, identities="own", pay="member",
          phone="buyer", net="cgnat", months=8, orders=8, max_grab=5, priority=4),
    _Plan("broker_tiers", ("T9", "T1", "T6"), 6, "api", (("hot", "H03", 2), ("hot", "H01", 1)),
          direct=True, identities="own", pay="hub_or_reseller", phone="ring", net="vps",
          devices=2, months=9, orders=12, max_grab=5, structure="tiers", resellers=10,
          priority=1),
    _Plan("broker_tiers", ("T9", "T1"), 2, "api",
          (("hot", "H01", 1), ("hot", "H03", 1), ("hot", "H04", 1)),
          hiding=("buyer_accounts", "proxy", "buyer_paid", "app_disguise"), direct=True,
          identities="own", pay="buyer_mostly", phone="buyer", net="proxy", devices=3,
          months=8, orders=8, max_grab=4, in_buyer_account=True, structure="tiers",
          resellers=6, priority=2),
    _Plan("broker_tiers", ("T9", "T1"), 4, "api", (("hot", "H03", 3),), direct=True,
          identities="own", pay="reseller", phone="ring", net="studio", devices=2, months=6,
          orders=14, max_grab=5, structure="commander", resellers=8, priority=3),
)


# ------------------------------------------------------------------------------ dirt
_BAD_STAMPS = ("2025/07/03 07:30", "03-07-2025 07:30:00", "2025-07-32T07:30:00+08:00", "null",
               "N/A", "2025-13-01T08:00:00+08:00", "07:30:00.020", "#VALUE!", "2025-06-31 25:61")


def _dirty(rows: list[list[str]], rng: random.Random, *, stamp_cols: tuple[int, ...],
           required: tuple[int, ...], duplicates: float, broken: float, extra: int
           ) -> tuple[list[list[str]], set[int]]:
    """Spoil a copy the way real exports are spoilt; return it and the rows that are unreadable."""
    out: list[list[str]] = []
    spoilt: set[int] = set()
    for row in rows:
        roll = rng.random()
        if roll < broken:
            row[rng.choice(stamp_cols)] = rng.choice(_BAD_STAMPS)
            spoilt.add(len(out))
        elif roll < broken * 2:
            row[rng.choice(required)] = ""
            spoilt.add(len(out))
        out.append(row)
        if rng.random() < duplicates:
            if len(out) - 1 in spoilt:
                spoilt.add(len(out))
            out.append(list(row))
    for k in rng.sample(range(len(out)), min(extra, len(out))):
        out[k] = [*out[k], rng.choice(("备注:家属代挂", "x", "", "补录"))]
    return out, spoilt


def _write(path: pathlib.Path, header: Sequence[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def generate(out: pathlib.Path, *, seed: int = 1, scale: float = 1.0) -> dict[str, int]:
    """Write the third generator's records and truth into `out`; return the row counts."""
    world = _World(seed, scale)
    world.run()
    bookings, payments = world.resolve()
    access = world.access_rows()
    rng = random.Random(f"thirdgen-dirt:{seed}:{scale}")
    bookings, bad_b = _dirty(bookings, rng, stamp_cols=(1, 9), required=(2, 3, 7, 8, 14),
                             duplicates=0.004, broken=0.001, extra=5)
    payments, bad_p = _dirty(payments, rng, stamp_cols=(2,), required=(1, 3, 4),
                             duplicates=0.003, broken=0.001, extra=3)
    access, bad_a = _dirty(access, rng, stamp_cols=(0,), required=(1, 4, 5), duplicates=0.002,
                           broken=0.0004, extra=5)
    seen: set[tuple[str, str]] = set()
    for k, row in enumerate(bookings):
        if k not in bad_b:
            seen.update((("account", row[2]), ("patient", row[3]), ("phone", row[5]),
                         ("ip", row[12]), ("device", row[13])))
    for k, row in enumerate(payments):
        if k not in bad_p:
            seen.add(("payer", row[3]))
    for k, row in enumerate(access):
        if k not in bad_a:
            seen.update((("ip", row[1]), ("account", row[2]), ("device", row[3])))
    labels = [[etype, eid, ring, role] for (etype, eid), (ring, role)
              in sorted(world.labels.items()) if (etype, eid) in seen]
    ring_rows = []
    for ring in world.rings:
        members = sum(1 for etype, _, rid, _ in labels if etype == "account" and rid == ring.rid)
        ring_rows.append([ring.rid, ring.kind, ";".join(ring.tactics), ";".join(ring.hiding),
                          str(members), ";".join(d.doctor_id for d in ring.targets),
                          _stamp(ring.start, ms=False)[:10], _stamp(ring.end, ms=False)[:10]])
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "bookings.csv", BOOKING_COLUMNS, bookings)
    _write(out / "payments.csv", PAYMENT_COLUMNS, payments)
    _write(out / "access.csv", ACCESS_COLUMNS, access)
    _write(out / "labels.csv", LABEL_COLUMNS, labels)
    _write(out / "rings.csv", RING_COLUMNS, ring_rows)
    return {"bookings": len(bookings), "payments": len(payments), "access": len(access),
            "labels": len(labels), "rings": len(ring_rows)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the third generator's synthetic records.")
    parser.add_argument("out", type=pathlib.Path, help="folder to write the CSV files into")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    began = time.perf_counter()
    counts = generate(args.out, seed=args.seed, scale=args.scale)
    took = time.perf_counter() - began
    print(" ".join(f"{name}={count}" for name, count in counts.items()) + f" seconds={took:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
