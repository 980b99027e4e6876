"""Messages to people behind one interface: SMS, WeChat template messages, e-mail and the
development outbox are each a ``Channel``; what they carry is rendered from the one
catalogue (``fairslot.domain.messages``) in the person's language.

Every message is a row of ``messages`` (recipient and text encrypted), written in the
transaction that decided it. The development outbox delivers by that row alone: the demo and
the tests read codes and notifications there (``dev_outbox``), nothing leaves the machine.
Any other channel is called after the commit, through the outbox of external calls
(``services.outbox``), and retried until it answers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.message
import smtplib
import threading
from collections.abc import Mapping, Sequence
from typing import Protocol

import httpx

from fairslot.clock import Clock
from fairslot.config import Settings
from fairslot.domain.errors import FairslotError
from fairslot.domain.messages import Message, language_of, render
from fairslot.storage.repositories import SentMessage
from fairslot.storage.uow import UnitOfWork

__all__ = [
    "OUTBOX",
    "SEND",
    "Channel",
    "DeliveryFailed",
    "DevOutbox",
    "EmailChannel",
    "Messenger",
    "SentMessage",
    "SmsChannel",
    "WeChatTemplateChannel",
    "deliver",
    "dev_outbox",
    "messenger_from_settings",
    "send",
]

OUTBOX = "outbox"
SEND = "message.send"
"""The kind of an outbox item that sends one message through its channel."""


class DeliveryFailed(FairslotError):
    """The channel's provider refused the message or could not be reached."""

    code = "delivery_failed"
    status = 502
    title = "Message not delivered"


class Channel(Protocol):
    name: str

    def send(self, address: str, message: Message) -> str:
        """Deliver ``message`` to ``address`` (a phone, a WeChat openid, an e-mail
        address); return the provider's reference, or raise ``DeliveryFailed``."""
        ...


class DevOutbox:
    """The development outbox: the stored row is the delivery (see ``dev_outbox``)."""

    name = OUTBOX

    def send(self, address: str, message: Message) -> str:
        return "outbox"


@dataclasses.dataclass
class SmsChannel:
    """An HTTP SMS gateway (most Chinese SMS providers, or an operator's relay, take a JSON
    POST): ``{"to": "+86...", "sign": "fairslot", "text": "【fairslot】..."}`` with a bearer
    key; a 2xx answer with ``{"id": ...}`` is a message accepted."""

    url: str
    key: str
    sign: str = "fairslot"
    client: httpx.Client | None = None
    name: str = "sms"

    def send(self, address: str, message: Message) -> str:
        body = {"to": address, "sign": self.sign, "text": f"【{self.sign}】{message.text}"}
        client = self.client or httpx.Client(timeout=10.0)
        try:
            answer = client.post(self.url, json=body,
                                 headers={"Authorization": f"Bearer {self.key}"})
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"SMS gateway unreachable: {type(exc).__name__}") from exc
        if answer.status_code // 100 != 2:
            raise DeliveryFailed(f"SMS gateway answered {answer.status_code}")
        return str(answer.json().get("id", ""))


@dataclasses.dataclass
class WeChatTemplateChannel:
    """WeChat official-account template messages: an access token from the app id and
    secret (kept until shortly before it expires), then ``message/template/send`` with the
    template configured for the message's kind; the message's fields are the template data
    (plus ``first`` = subject and ``remark`` = text)."""

    app_id: str
    app_secret: str
    templates: Mapping[str, str]
    clock: Clock
    api: str = "https://api.weixin.qq.com"
    client: httpx.Client | None = None
    name: str = "wechat"
    _token: tuple[str, dt.datetime] | None = dataclasses.field(default=None, repr=False)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def _http(self) -> httpx.Client:
        return self.client or httpx.Client(timeout=10.0)

    def _access_token(self) -> str:
        with self._lock:
            now = self.clock.now()
            if self._token is not None and self._token[1] > now:
                return self._token[0]
            try:
                answer = self._http().get(f"{self.api}/cgi-bin/token", params={
                    "grant_type": "client_credential", "appid": self.app_id,
                    "secret": self.app_secret}).json()
            except (httpx.HTTPError, ValueError) as exc:
                raise DeliveryFailed("WeChat token service unreachable") from exc
            token = answer.get("access_token")
            if not token:
                raise DeliveryFailed(f"WeChat refused the token: errcode {answer.get('errcode')}")
            life = max(60, int(answer.get("expires_in", 7200)) - 300)
            self._token = (str(token), now + dt.timedelta(seconds=life))
            return str(token)

    def send(self, address: str, message: Message) -> str:
        template = self.templates.get(message.kind)
        if not template:
            raise DeliveryFailed(f"no WeChat template for {message.kind}")
        data = {"first": {"value": message.subject}, "remark": {"value": message.text},
                **{k: {"value": v} for k, v in message.fields.items() if k != "code"}}
        body = {"touser": address, "template_id": template, "data": data}
        try:
            answer = self._http().post(f"{self.api}/cgi-bin/message/template/send",
                                       params={"access_token": self._access_token()},
                                       json=body).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise DeliveryFailed("WeChat unreachable") from exc
        if answer.get("errcode", 0) != 0:
            if answer.get("errcode") in (40001, 42001):  # token expired or revoked
                self._token = None
            raise DeliveryFailed(f"WeChat refused the message: errcode {answer['errcode']}")
        return str(answer.get("msgid", ""))


@dataclasses.dataclass
class EmailChannel:
    host: str
    port: int = 587
    sender: str = "fairslot@localhost"
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    name: str = "email"

    def compose(self, address: str, message: Message) -> email.message.EmailMessage:
        mail = email.message.EmailMessage()
        mail["From"] = self.sender
        mail["To"] = address
        mail["Subject"] = message.subject
        mail.set_content(message.text)
        mail["Content-Language"] = message.language  # after set_content, which resets it
        return mail

    def send(self, address: str, message: Message) -> str:
        mail = self.compose(address, message)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"mail server refused or unreachable: {type(exc).__name__}") \
                from exc
        return str(mail.get("Message-ID", ""))


@dataclasses.dataclass
class Messenger:
    """The configured channels: ``text`` carries one-time codes (SMS or the outbox);
    ``notify`` the notifications, each to the address the account has for it."""

    channels: Mapping[str, Channel] = dataclasses.field(
        default_factory=lambda: {OUTBOX: DevOutbox()})
    text: str = OUTBOX
    notify: Sequence[str] = (OUTBOX,)

    def channel(self, name: str) -> Channel:
        try:
            return self.channels[name]
        except KeyError:
            raise DeliveryFailed(f"the channel {name!r} is not configured") from None


def messenger_from_settings(settings: Settings, clock: Clock) -> Messenger:
    """The channels the settings configure; a channel named but not configured is an
    error at start-up, not at the first message."""
    channels: dict[str, Channel] = {OUTBOX: DevOutbox()}
    wanted = {settings.text_channel, *settings.notification_channels}
    if "sms" in wanted:
        if not settings.sms_gateway_url or settings.sms_gateway_key is None:
            raise ValueError("the sms channel needs FAIRSLOT_SMS_GATEWAY_URL and _KEY")
        channels["sms"] = SmsChannel(settings.sms_gateway_url,
                                     settings.sms_gateway_key.get_secret_value(),
                                     settings.sms_sign_name)
    if "wechat" in wanted:
        if not settings.wechat_app_id or settings.wechat_app_secret is None:
            raise ValueError("the wechat channel needs FAIRSLOT_WECHAT_APP_ID and _SECRET")
        channels["wechat"] = WeChatTemplateChannel(
            settings.wechat_app_id, settings.wechat_app_secret.get_secret_value(),
            settings.wechat_templates, clock, settings.wechat_api_url)
    if "email" in wanted:
        if not settings.smtp_host:
            raise ValueError("the email channel needs FAIRSLOT_SMTP_HOST")
        password = settings.smtp_password
        channels["email"] = EmailChannel(
            settings.smtp_host, settings.smtp_port, settings.smtp_from, settings.smtp_starttls,
            settings.smtp_username, password.get_secret_value() if password else None)
    return Messenger(channels, settings.text_channel, tuple(settings.notification_channels))


def send(uow: UnitOfWork, messenger: Messenger, now: dt.datetime, *, channel: str,
         address: str, kind: str, language: str | None, account_id: int | None,
         **fields: object) -> int:
    """Record the message ``kind`` for ``address`` in the caller's transaction; the
    development outbox has it at once, any other channel gets it after the commit (an
    outbox item, retried until delivered). Returns the message's id."""
    message = render(kind, language_of(language), **fields)
    messenger.channel(channel)  # refuse an unconfigured channel before anything is written
    message_id = uow.messages.add(
        account_id=account_id, channel=channel, recipient=address, kind=kind,
        language=message.language, subject=message.subject, body=message.text, now=now,
        sent=channel == OUTBOX)
    if channel != OUTBOX:
        uow.outbox.add(SEND, {"message": message_id}, now)
    return message_id


def deliver(uow: UnitOfWork, messenger: Messenger, message_id: int, now: dt.datetime) -> None:
    """Hand a recorded message to its channel (called from the outbox, after the commit
    that recorded it). Raises ``DeliveryFailed`` for the outbox to retry later."""
    sent = uow.messages.get(message_id)
    if sent is None or sent.sent_at is not None:
        return
    message = Message(sent.kind, sent.language, sent.subject, sent.body, {})
    ref = messenger.channel(sent.channel).send(sent.recipient, message)
    uow.messages.sent(message_id, now, ref)


def dev_outbox(uow: UnitOfWork, *, account_id: int | None = None,
               limit: int = 50) -> list[SentMessage]:
    """The development outbox, newest first (the demo's page and API, and tests)."""
    return uow.messages.in_channel(OUTBOX, account_id=account_id, limit=limit)
