"""What fairslot says to people, in their language: one catalogue of message kinds, each
with a Chinese (the default) and an English text. Channels (SMS, WeChat, e-mail, the
development outbox) carry what ``render`` returns; none of them writes text of its own."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from fairslot.domain.accounts import LANGUAGES
from fairslot.domain.errors import InvalidInput

__all__ = ["CATALOGUE", "Message", "language_of", "render"]


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    kind: str
    language: str
    subject: str
    text: str
    fields: Mapping[str, str]
    """The values filled in (a WeChat template message sends them as its data)."""


# kind -> language -> (subject, text). Placeholders are str.format names.
CATALOGUE: Mapping[str, Mapping[str, tuple[str, str]]] = {
    "phone.code": {
        "zh-CN": ("手机验证码", "您的验证码是 {code}，{minutes} 分钟内有效。请勿告诉他人。"),
        "en": ("Phone verification code",
               "Your verification code is {code}, valid for {minutes} minutes. "
               "Do not share it."),
    },
    "link.consent": {
        "zh-CN": ("就诊人绑定确认",
                  "账户 {requester} 请求将就诊人 {patient} 绑定到其账户。如您同意，请把验证码 "
                  "{code} 告诉对方（{minutes} 分钟内有效）；如不认识对方，请忽略本短信。"),
        "en": ("Confirm adding a patient",
               "Account {requester} asks to add patient {patient} to its account. If you "
               "agree, give them the code {code} (valid {minutes} minutes); if you do not "
               "know them, ignore this message."),
    },
    "claim.consent": {
        "zh-CN": ("本人认领确认",
                  "账户 {requester} 请求认领身份 {patient} 为本人。如确为本人操作，请输入验证码 "
                  "{code}（{minutes} 分钟内有效）；否则请忽略，并可携身份证到挂号窗口处理。"),
        "en": ("Confirm claiming an identity",
               "Account {requester} asks to claim identity {patient} as its own. If that is "
               "you, enter the code {code} (valid {minutes} minutes); otherwise ignore this "
               "and bring your ID card to the registration desk."),
    },
    "identity.claimed": {
        "zh-CN": ("身份已被本人认领",
                  "就诊人 {patient} 已由本人认领。本人可查看并取消以该身份进行的所有预约和抽签。"),
        "en": ("Identity claimed by its holder",
               "Patient {patient} has been claimed by the person themselves, who can now see "
               "and cancel every booking and draw entry made under it."),
    },
    "identity.claim_requested": {
        "zh-CN": ("有人在挂号窗口认领您的身份",
                  "挂号窗口于 {at} 提出将身份 {patient} 交给账户 {requester}，须另一名工作人员"
                  "批准后生效（{expires} 前有效）。如不是您本人所为，请尽快携身份证到挂号窗口或"
                  "联系医院。"),
        "en": ("Someone claimed your identity at the registration desk",
               "At {at} the registration desk asked to give identity {patient} to account "
               "{requester}; it takes effect only when a second member of staff approves it "
               "(until {expires}). If this was not you, bring your ID card to the desk or "
               "call the hospital at once."),
    },
    "identity.claim_approved": {
        "zh-CN": ("您的身份已被转交",
                  "挂号窗口对身份 {patient} 的认领已于 {at} 经第二名工作人员批准，"
                  "该身份现由账户 {requester} 持有。如不是您本人所为，请携身份证到挂号窗口。"),
        "en": ("Your identity was handed over",
               "The registration desk's claim on identity {patient} was approved by a second "
               "member of staff at {at}: account {requester} holds it now. If this was not "
               "you, bring your ID card to the registration desk."),
    },
    "draw.won": {
        "zh-CN": ("抽签结果：中签", "{patient} 中签：{session}。请在 {pay_by} 前完成支付。"),
        "en": ("Draw result: you won",
               "{patient} won a slot: {session}. Please pay by {pay_by}."),
    },
    "draw.waitlist": {
        "zh-CN": ("抽签结果：候补", "{patient} 未中签，候补第 {rank} 位；有号源时会通知您。"),
        "en": ("Draw result: waitlist",
               "{patient} did not win; waitlist position {rank}. We will tell you if a slot "
               "frees up."),
    },
    "draw.excluded": {
        "zh-CN": ("抽签：未参加",
                  "{patient} 的抽签登记未参加本次抽签：截止时该就诊人因爽约等信用记录处于暂停期。"),
        "en": ("Draw: entry left out",
               "The entry for {patient} is not in the draw: the patient was suspended "
               "(missed visits or unpaid holds) when the window closed."),
    },
    "draw.already_booked": {
        "zh-CN": ("抽签：未参加",
                  "{patient} 的抽签登记未参加本次抽签：截止时已有该场次的预约。"),
        "en": ("Draw: entry left out",
               "The entry for {patient} is not in the draw: the patient already had a "
               "booking in this session when the window closed."),
    },
    "waitlist.offer": {
        "zh-CN": ("候补号源",
                  "有号源给 {patient}：{session}。请在 {pay_by} 前支付，否则顺延给下一位。"),
        "en": ("A waitlist slot for you",
               "A slot is offered to {patient}: {session}. Pay by {pay_by} or it passes to "
               "the next person."),
    },
    "payment.reminder": {
        "zh-CN": ("支付提醒", "{patient} 的预约 {session} 尚未支付，请在 {pay_by} 前支付。"),
        "en": ("Payment reminder",
               "The booking for {patient}, {session}, is not paid yet; please pay by "
               "{pay_by}."),
    },
    "visit.reminder": {
        "zh-CN": ("就诊提醒", "{patient} 明天就诊：{session}。请携带身份证按时到院签到。"),
        "en": ("Visit reminder",
               "{patient} has a visit tomorrow: {session}. Bring the ID card and check in "
               "on time."),
    },
}


def language_of(raw: str | None) -> str:
    """A supported language for ``raw`` (``zh``, ``zh-CN``, ``en``, ``en-GB``...); the
    default (Chinese) for anything else."""
    if raw:
        tag = raw.strip().lower()
        for language in LANGUAGES:
            if tag == language.lower() or tag.split("-")[0] == language.split("-")[0].lower():
                return language
    return LANGUAGES[0]


def render(kind: str, language: str, **fields: object) -> Message:
    """The message ``kind`` in ``language`` (the default language if it has none)."""
    texts = CATALOGUE.get(kind)
    if texts is None:
        raise InvalidInput(f"no message of kind {kind!r}", code="unknown_message")
    language = language if language in texts else LANGUAGES[0]
    subject, text = texts[language]
    values = {k: str(v) for k, v in fields.items()}
    return Message(kind, language, subject, text.format(**values), values)
