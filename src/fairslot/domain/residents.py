"""Made-up but well-formed residents, for the demo hospital, tests and the simulator.

Every ID number passes the checksum, birth-date and region checks; the names are common
family and given names. None of them is a real person's identity."""

from __future__ import annotations

import datetime as dt
import random

from stdnum.cn import ric

from fairslot.domain.identity import Identity

__all__ = ["make_id_number", "make_phone", "make_residents"]

REGIONS = ("110105", "110108", "320102", "320106", "210102", "510104", "310101", "440106",
           "330106", "420106", "500103")
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国建华玉兰晨阳浩然子轩欣"
    "怡梓涵一诺宇轩雨桐思远佳怡俊杰志强海燕春梅"
)


def make_id_number(rng: random.Random, *, born_after: int = 1935, born_before: int = 2020) -> str:
    region = rng.choice(REGIONS)
    birth = dt.date(rng.randint(born_after, born_before), 1, 1) + dt.timedelta(
        days=rng.randint(0, 364))
    body = f"{region}{birth:%Y%m%d}{rng.randint(0, 999):03d}"
    return body + ric.calc_check_digit(body + "0")


def make_name(rng: random.Random) -> str:
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(SURNAMES) + given


def make_phone(rng: random.Random) -> str:
    prefix = rng.choice(("138", "139", "150", "151", "186", "187", "135", "136", "158", "177"))
    return f"+86{prefix}{rng.randint(0, 99_999_999):08d}"


def make_residents(rng: random.Random, count: int) -> list[Identity]:
    seen: set[str] = set()
    out: list[Identity] = []
    while len(out) < count:
        identity = Identity.parse(make_id_number(rng), make_name(rng))
        if identity.id_number not in seen:
            seen.add(identity.id_number)
            out.append(identity)
    return out
