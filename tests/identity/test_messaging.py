"""Notifications behind one interface: SMS, WeChat template messages, e-mail and the
development outbox carry the same catalogue, in the patient's language. Before, a draw
result existed only in the in-app inbox, in English, and nothing reached a phone."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from fairslot.clock import FixedClock
from fairslot.domain.accounts import Role
from fairslot.domain.messages import CATALOGUE, language_of, render
from fairslot.services import accounts, messaging, notifications, outbox
from fairslot.services.context import RequestContext
from fairslot.services.messaging import (
    DeliveryFailed,
    EmailChannel,
    Messenger,
    SmsChannel,
    WeChatTemplateChannel,
)
from fairslot.web.app import create_app
from tests.conftest import NOW, PASSWORD, World, password_hash


def test_every_message_has_chinese_and_english_with_the_same_fields() -> None:
    for kind, texts in CATALOGUE.items():
        assert set(texts) == {"zh-CN", "en"}, kind
        fields = {"code": "123456", "minutes": 10, "requester": "a", "patient": "W*",
                  "session": "2026-03-03 08:00", "pay_by": "2026-03-02 18:00", "rank": 2,
                  "at": "2026-03-02 09:00", "expires": "2026-03-03 09:00"}
        zh, en = render(kind, "zh-CN", **fields), render(kind, "en", **fields)
        assert zh.text != en.text and not any("\u4e00" <= ch <= "\u9fff" for ch in en.text)
    assert language_of(None) == "zh-CN" and language_of("en-GB") == "en"
    assert language_of("fr") == "zh-CN" and language_of("zh") == "zh-CN"


def _account(world: World, name: str, language: str) -> int:
    account = world.platform.run(accounts.create_user, name, PASSWORD, Role.PATIENT,
                                 "13900001111" if language == "en" else "13900002222",
                                 password_hash=password_hash(), phone_verified=True,
                                 language=language)
    return account.id or 0


def test_a_notification_reaches_inbox_and_outbox_in_the_accounts_language(
        world: World) -> None:
    english, chinese = _account(world, "mr.smith", "en"), _account(world, "li.na", "zh-CN")
    with world.platform.uow() as uow:
        for account_id in (english, chinese):
            notifications.notify(uow, world.platform.deps, account_id, "draw.waitlist",
                                 rank=3, patient="X*")
        uow.commit()
    with world.platform.uow() as uow:
        sent = {m.account_id: m for m in messaging.dev_outbox(uow)}
        inbox_en = uow.notifications.inbox(english)
        inbox_zh = uow.notifications.inbox(chinese)
    assert sent[english].language == "en" and "waitlist position 3" in sent[english].body
    assert sent[chinese].language == "zh-CN" and "候补第 3 位" in sent[chinese].body
    assert sent[english].recipient == "+8613900001111"
    assert inbox_en[0].text == sent[english].body and inbox_zh[0].text == sent[chinese].body


def _recording(answers: list[dict[str, Any]], seen: list[httpx.Request],
               status: int = 200) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=answers.pop(0) if answers else {})
    return httpx.Client(transport=httpx.MockTransport(handle))


def test_sms_goes_out_after_the_commit_and_a_refusal_is_retried(world: World) -> None:
    seen: list[httpx.Request] = []
    gateway = SmsChannel("https://sms.example/send", "k", client=_recording(
        [{"id": "m-1"}], seen, status=503))
    deps = world.platform.deps
    object.__setattr__(deps, "messenger", Messenger({"outbox": messaging.DevOutbox(),
                                                     "sms": gateway}, "sms", ("sms",)))
    account_id = _account(world, "zhao.lei", "zh-CN")
    with world.platform.uow() as uow:
        notifications.notify(uow, deps, account_id, "visit.reminder", patient="赵*",
                             session="2026-03-03 08:00")
        assert not seen  # nothing leaves inside the transaction
        uow.commit()
        item = uow.outbox.pending(messaging.SEND)[0]
        assert outbox.run_item(uow, deps, item.id) is False  # gateway down: kept for later
    assert len(seen) == 1
    gateway.client = _recording([{"id": "m-2"}], seen)
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    clock.advance(120)
    assert world.platform.run_job(outbox.run_due) == 1
    body = json.loads(seen[-1].content)
    assert body["to"] == "+8613900002222" and body["text"].startswith("【fairslot】")
    assert "明天就诊" in body["text"] and seen[-1].headers["Authorization"] == "Bearer k"
    with world.platform.uow() as uow:
        assert uow.outbox.pending(messaging.SEND) == []


def test_wechat_template_message_fetches_a_token_once_and_fills_the_template() -> None:
    seen: list[httpx.Request] = []
    client = _recording([{"access_token": "T1", "expires_in": 7200},
                         {"errcode": 0, "msgid": 42}, {"errcode": 0, "msgid": 43}], seen)
    channel = WeChatTemplateChannel("wxapp", "s", {"draw.won": "TPL-1"}, FixedClock(NOW),
                                    client=client)
    message = render("draw.won", "en", patient="W*", session="s", pay_by="p")
    assert channel.send("openid-1", message) == "42"
    assert channel.send("openid-1", message) == "43"
    assert [r.url.path for r in seen] == ["/cgi-bin/token", "/cgi-bin/message/template/send",
                                          "/cgi-bin/message/template/send"]
    sent = json.loads(seen[1].content)
    assert sent["touser"] == "openid-1" and sent["template_id"] == "TPL-1"
    assert sent["data"]["first"]["value"] == "Draw result: you won"
    assert sent["data"]["patient"]["value"] == "W*"
    with pytest.raises(DeliveryFailed):
        channel.send("openid-1", render("visit.reminder", "en", patient="W*", session="s"))


def test_email_is_written_in_the_patients_language() -> None:
    mail = EmailChannel("smtp.example").compose(
        "a@example.com", render("payment.reminder", "zh-CN", patient="王*", session="s",
                                pay_by="p"))
    assert mail["Content-Language"] == "zh-CN" and mail["Subject"] == "支付提醒"
    assert "尚未支付" in mail.get_content()


def test_the_outbox_page_and_api_exist_only_in_the_demo(world: World) -> None:
    _account_id = _account(world, "qian.li", "en")
    with world.platform.uow() as uow:
        notifications.notify(uow, world.platform.deps, _account_id, "draw.waitlist",
                             rank=1, patient="Q*")
        uow.commit()
    client = TestClient(create_app(world.platform))
    assert client.get("/api/v1/dev/outbox").status_code == 404
    assert client.get("/dev/outbox").status_code == 404
    object.__setattr__(world.platform.settings, "dev_outbox_page", True)
    listed = client.get("/api/v1/dev/outbox", params={"phone": "13900001111"}).json()
    assert [m["kind"] for m in listed] == ["draw.waitlist"] and listed[0]["to"] == "139****1111"
    page = client.get("/dev/outbox")
    assert page.status_code == 200 and "waitlist position 1" in page.text


def test_a_registration_code_goes_out_by_sms_in_the_same_request(world: World) -> None:
    seen: list[httpx.Request] = []
    gateway = SmsChannel("https://sms.example/send", "k", client=_recording([{"id": "c-1"}],
                                                                            seen))
    deps = world.platform.deps
    object.__setattr__(deps, "messenger", Messenger({"outbox": messaging.DevOutbox(),
                                                     "sms": gateway}, "sms", ("outbox",)))
    world.platform.run(accounts.register, "sms.user", PASSWORD, "13700007777",
                       RequestContext(ip="203.0.113.4"))
    assert len(seen) == 1 and json.loads(seen[0].content)["to"] == "+8613700007777"
    assert "验证码" in json.loads(seen[0].content)["text"]
    with world.platform.uow() as uow:
        assert uow.outbox.pending(messaging.SEND) == []


def test_payment_and_visit_reminders_go_out_once_in_the_accounts_language(
        world: World) -> None:
    from fairslot.services import booking

    account_id = _account(world, "remind.me", "en")
    with world.platform.uow() as uow:
        account = uow.accounts.get(account_id)
    assert account is not None
    person = world.residents.pop()
    patient = world.platform.run(accounts.add_patient, account, person.id_number, person.name,
                                 None, RequestContext())
    held = world.platform.run(booking.book, account, patient.id or 0, world.session_ids[0],
                              RequestContext())
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    assert world.platform.run_job(notifications.send_reminders) == 0  # 15 minutes left
    clock.advance(11 * 60)
    assert world.platform.run_job(notifications.send_reminders) == 1
    assert world.platform.run_job(notifications.send_reminders) == 0  # once
    world.platform.run(booking.pay, account, held.booking.id or 0, "alipay:remind@x.cn",
                       RequestContext())
    assert world.platform.run_job(notifications.send_reminders) == 1  # the visit, tomorrow
    with world.platform.uow() as uow:
        kinds = [(m.kind, m.language) for m in messaging.dev_outbox(uow, account_id=account_id)]
    assert kinds == [("visit.reminder", "en"), ("payment.reminder", "en")]


def test_an_account_switches_the_language_of_its_messages(world: World) -> None:
    _, _, token = world.patient_account("switcher", patients=0)
    client = TestClient(create_app(world.platform))
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).json()["language"] == "zh-CN"
    r = client.put("/api/v1/me/language", headers=headers, json={"language": "en"})
    assert r.status_code == 200 and r.json()["language"] == "en"
    r = client.put("/api/v1/me/language", headers=headers, json={"language": "fr"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_language"
    assert client.get("/api/v1/me", headers=headers).json()["language"] == "en"
