"""The reasons' explanations in the report's language.

Findings carry their explanation in English (``suspects.csv`` keeps it, so that scripts
reading it see one stable text). The Chinese report shows each reason in Chinese: the
English explanations are made from a fixed set of templates (``rules``, ``scoring``,
``anomaly``), and each is matched back to its template and rewritten with the same
figures. The reason codes stay as they are (they are the stable names, listed in the
docs); an explanation no template matches is shown as written.
"""

from __future__ import annotations

import re

__all__ = ["ZH_TEMPLATES", "translate_reasons"]

ZH_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("{}% of its bookings through a staff channel", "{0}% 的挂号经由人工渠道"),
    ("{} patients booked at ordinary hours, never at a release",
     "为 {0} 名就诊人挂号，都在平常时段，从不在放号时"),
    ("an institutional channel ({})", "机构渠道（{0}）"),
    ("its {} patients are judged one by one", "其 {0} 名就诊人逐一单独判断"),
    ("ID number fails the checksum, birth date or region check",
     "身份证号未通过校验位、出生日期或地区码检查"),
    ("only ever typed by staff, for a patient who came to the visit",
     "只由工作人员录入过，且就诊人到场就诊"),
    ("every one of its {} bookings within {} s of release, {} of them paid by a fan-out "
     "payer that pays for other accounts",
     "全部 {0} 次挂号都在放号后 {1} 秒内完成，其中 {2} 次由也为其他账户付款的付款账户支付"),
    ("booked for {} invalid ID number(s) in {} booking(s)",
     "为 {0} 个无效身份证号挂号 {1} 次"),
    ("booked for {} invalid ID number(s) in {} booking(s), besides {} slip(s) for patients "
     "it also booked correctly",
     "为 {0} 个无效身份证号挂号 {1} 次（另有 {2} 次是其也正确挂过的就诊人的笔误）"),
    ("booked {} patient(s) through a staff channel within {} s of release, paid by {} "
     "fan-out payer(s) that pay for other accounts too",
     "放号后 {1} 秒内经人工渠道为 {0} 名就诊人挂号，由 {2} 个也为其他账户付款的付款账户支付"),
    ("{} slot(s) it booked through a staff channel within {} s of release were cancelled "
     "and rebooked within {} s by {} account(s) paid by {} wallet(s)",
     "其经人工渠道在放号后 {1} 秒内挂的 {0} 个号被退掉，并在 {2} 秒内被 {3} 个账户重挂，"
     "由 {4} 个钱包支付"),
    ("rebooked {} slot(s) within {} s of a staff channel cancelling its release-time "
     "booking, paid by the wallet that paid the others",
     "在人工渠道退掉其放号时所挂的号后 {1} 秒内重挂 {0} 个号，由支付其余这些号的同一钱包支付"),
    ("paid for {} slot(s) a staff channel freed and {} account(s) rebooked within seconds",
     "为人工渠道退出、又被 {1} 个账户在数秒内重挂的 {0} 个号付款"),
    ("booked up to {} different patients through a staff channel within {} s of release "
     "whom one wallet paid for ({} such wallet(s))",
     "放号后 {1} 秒内经人工渠道为多达 {0} 名不同就诊人挂号，均由同一钱包付款（此类钱包 {2} 个）"),
    ("paid for {} different patients booked by one staff channel within {} s of release",
     "为同一人工渠道在放号后 {1} 秒内挂号的 {0} 名不同就诊人付款"),
    ("booked under the name \"{}\", which is no person's name",
     "以姓名“{0}”挂号，这不是人名"),
    ("booked for {} patient(s) with nonsense names", "为 {0} 名姓名无意义的就诊人挂号"),
    ("booked with {} departments and {} doctors within {} days",
     "{2} 天内挂了 {0} 个科室、{1} 位医生"),
    ("booked {} identity(ies) seen across {}+ departments or {}+ doctors in a week, "
     "{} of them attending none of that week's",
     "挂号的 {0} 个身份在一周内出现在 {1} 个以上科室或 {2} 位以上医生处，"
     "其中 {3} 个那一周一次也没有就诊"),
    ("paid {} time(s) for {} distinct patients booked by {} account(s) in {} days",
     "{3} 天内付款 {0} 次，为 {2} 个账户挂号的 {1} 名不同就诊人付款"),
    ("{} of its bookings paid by {} fan-out payer(s)",
     "{0} 次挂号由 {1} 个为多人付款的付款账户支付"),
    ("booked up to {} ID numbers from {} account(s) in one hour, in {} hour(s)",
     "一小时内从 {1} 个账户为多达 {0} 个身份证号挂号，共 {2} 个小时"),
    ("used by {} accounts for {} patients", "被 {0} 个账户用于 {1} 名就诊人"),
    ("grabbed {} slot(s) within {} s of release for {} different accounts",
     "放号后 {1} 秒内为 {2} 个不同账户抢到 {0} 个号"),
    ("{} release-time booking(s) made on a device that grabbed for {} accounts",
     "{0} 次放号时的挂号来自一台为 {1} 个账户抢号的设备"),
    ("its own phone or payer is on bookings that software in {} other account(s) made "
     "within {} s of release for {} patients it never booked",
     "它自己的手机号或付款账户出现在另外 {0} 个账户的软件于放号后 {1} 秒内"
     "为 {2} 名它从未挂过号的就诊人挂的号上"),
    ("raced {} release(s) by hand within {} s, each for a different person it booked only "
     "that once",
     "放号后 {1} 秒内手动抢了 {0} 次号，每次为一位它只挂过这一次号的不同的人"),
    ("given as the phone of {} patients by {} account(s)",
     "被 {1} 个账户填作 {0} 名就诊人的手机号"),
    ("{} booking(s) within {} s of release (median {} s)",
     "{0} 次挂号在放号后 {1} 秒内完成（中位数 {2} 秒）"),
    ("in {} cancel-then-rebook pair(s) within {} s ({} with a shared account, device or IP)",
     "有 {0} 对 {1} 秒内退号后重挂（占坑洗号），其中 {2} 对共用账户、设备或 IP"),
    ("{} no-shows in {} bookings", "{1} 次挂号中爽约 {0} 次"),
    ("{} of its {} bookings were grabbed within {} s of release and cancelled unpaid",
     "{1} 次挂号中有 {0} 次在放号后 {2} 秒内抢到，未付款即退号"),
    ("booked for {} distinct patients (a household is at most {})",
     "为 {0} 名不同就诊人挂号（一户至多 {1} 人）"),
    ("booked for {} distinct patients (a household is at most {}), and {} of its bookings "
     "paid by {} fan-out payer(s): strangers booked with a shared wallet's money",
     "为 {0} 名不同就诊人挂号（一户至多 {1} 人），且 {2} 次挂号由 {3} 个为多人付款的付款账户支付："
     "用共用钱包的钱为陌生人挂号"),
    ("up to {} requests in one minute, in {} minute(s)", "一分钟内多达 {0} 次请求，共 {1} 分钟"),
    ("booked the same sessions within seconds of {} other account(s), on up to {} releases "
     "(similarity up to {})",
     "与另外 {0} 个账户在数秒内挂同一号段，多达 {1} 次放号（相似度最高 {2}）"),
    ("in a dense block of {} accounts x {} release moments, density {} ({}x the whole "
     "graph's)",
     "处于 {0} 个账户 × {1} 个放号时刻的密集块中，密度 {2}（全图的 {3} 倍）"),
    ("tied to {} flagged ring members (link weight {})",
     "与 {0} 名被标记的团伙成员相关联（关联权重 {1}）"),
    ("in a dense block with {} flagged ring members and sharing an identifier with {} of "
     "them",
     "与 {0} 名被标记的团伙成员处于同一密集块，并与其中 {1} 名共用标识"),
    ("{} of {} uses by {} flagged account(s)", "{1} 次使用中有 {0} 次来自 {2} 个被标记账户"),
    ("unusual behaviour: {}", "行为异常：{0}"),
)

_FEATURES_ZH = {
    "bookings": "挂号数", "patients": "就诊人数", "departments": "科室数",
    "doctors": "医生数", "cancel_rate": "退号率", "no_show_rate": "爽约率",
    "fast_share": "秒抢比例", "ips": "IP 数", "devices": "设备数", "payers": "付款账户数",
    "release_share": "放号时挂号比例",
}
_FEATURE = re.compile(r"(\w+) ([^ ]+) \(top ([^)]+)%\)")


def _compile(template: str) -> re.Pattern[str]:
    parts = [re.escape(piece) for piece in template.split("{}")]
    return re.compile("^" + "(.+?)".join(parts) + "$", re.DOTALL)


_ZH = [(_compile(english), chinese) for english, chinese in ZH_TEMPLATES]


def _anomaly(text: str) -> str:
    """``bookings 56 (top 0.0%), ...`` -> ``挂号数 56（前 0.0%）、...``."""
    def one(match: re.Match[str]) -> str:
        name = _FEATURES_ZH.get(match.group(1), match.group(1))
        return f"{name} {match.group(2)}（前 {match.group(3)}%）"
    return _FEATURE.sub(one, text).replace(", ", "、")


def _explain(text: str) -> str:
    for pattern, chinese in _ZH:
        match = pattern.match(text)
        if match:
            if chinese.startswith("行为异常"):
                values = [_anomaly(match.group(1))]
            else:
                values = [_explain(value) for value in match.groups()]
            return chinese.format(*values)
    return text


def translate_reasons(reasons: str, lang: str) -> str:
    """``reasons`` (``code: explanation; ...``) with the explanations in ``lang``; English
    is returned as it is."""
    if lang != "zh-CN" or not reasons:
        return reasons
    out = []
    for part in reasons.split("; "):
        code, sep, text = part.partition(": ")
        if sep and code == "linked":
            out.append(f"关联：{_explain(text)}")
        elif sep and re.fullmatch(r"[a-z_]+", code):
            out.append(f"{code}: {_explain(text)}")
        else:
            out.append(_explain(part))
    return "；".join(out)
