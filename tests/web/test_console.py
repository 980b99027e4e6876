"""The operator's console: the figures, the alert the monitor raised, the decisions in
force (lifted from the page), guard levels set from the page, the review queue (approved
from the page), the live stream of figures, and the charting library served by the app."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json

from fastapi.testclient import TestClient

from fairslot.clock import FixedClock
from fairslot.domain.accounts import Role
from fairslot.monitoring.scenarios import Entity
from fairslot.web.app import create_app
from tests.conftest import World, api_book
from tests.web.test_pages import fields

FARMED = (("110101199003071111", "张三"), ("110101199003072222", "李四"),
          ("110101199003073333", "王五"))


def _client(world: World) -> TestClient:
    platform = dataclasses.replace(
        world.platform,
        settings=world.platform.settings.model_copy(update={"monitor_mode": "embedded"}))
    return TestClient(create_app(platform))


def test_the_console_shows_live_figures_alerts_decisions_and_acts_on_them(
        world: World) -> None:
    client = _client(world)
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    farm, _, farm_token = world.patient_account("farm.console")
    buyer, (buyer_patient,), buyer_token = world.patient_account("buyer.console")
    with client:
        for number, name in FARMED:
            client.post("/api/v1/me/patients", headers={"Authorization": f"Bearer {farm_token}"},
                        json={"id_number": number, "name": name})
        monitoring = client.app.state.monitoring  # type: ignore[attr-defined]
        monitoring.monitor.decide("hold_bookings", Entity("account", str(buyer.id)),
                                  dt.timedelta(days=1), "li", "ring")
        held = api_book(client, buyer_token, world.session_ids[0], buyer_patient, clock)
        assert held.status_code == 201 and held.json()["review"] == "pending"
        monitoring.embedded.stop()
        client.app.state.access_log.flush()  # type: ignore[attr-defined]

        # A patient may not see it.
        client.cookies.set("fs_session", buyer_token)
        assert client.get("/operator/console").status_code == 403

        client.cookies.set("fs_session", world.token(Role.INVESTIGATOR))
        page = client.get("/operator/console")
        assert page.status_code == 200, page.text
        text = page.text
        assert "<h1>实时监控" in text and '<html lang="zh-CN">' in text
        assert "bad_identities" in text and f'账户 <span class="mono">{farm.id}</span>' in text
        assert "/static/vendor/uplot/uPlot.iife.min.js" in text
        # The alert's summary is worded in Chinese from the scenario and its figures; the
        # API keeps the stored English summary.
        (alert,) = [a for a in monitoring.monitor.store.alerts()
                    if a.scenario == "bad_identities" and a.entity.type == "account"]
        n = alert.figures["identities"]
        assert f"账户 {farm.id} 在 " in text and f"内提交了 {n} 个无效身份（最近一次：" in text
        alerts_table = text.split('id="alerts"', 1)[1].split('id="decisions"', 1)[0]
        assert alert.summary not in html.unescape(alerts_table)
        # The monitor's decision on that alert gives its reason in Chinese too.
        assert f"告警 {alert.id}（" in text and "— 自动监控" in text
        assert alert.summary not in html.unescape(text)
        api = client.get(f"/api/v1/monitor/alerts/{alert.id}", headers={
            "Authorization": f"Bearer {world.token(Role.INVESTIGATOR)}"})
        assert api.status_code == 200 and api.json()["summary"] == alert.summary
        assert "预约待审核" in text  # the decision in force, in the page's language
        figures = json.loads(html.unescape(
            text.split('data-figures="', 1)[1].split('"', 1)[0]))
        assert figures["bookings_per_minute"][-1] == 1

        # Approve the held booking from the review queue.
        action = f"/operator/console/reviews/{held.json()['id']}"
        r = client.post(action, data=fields(text, action) | {
            "decision": "approve", "reason": "checked at the desk"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        assert "没有待审核的预约" in client.get("/operator/console").text

        # Lift the hold decision from the page.
        (decision,) = [d for d in monitoring.monitor.store.decisions(active_at=clock.now())
                       if d.entity == Entity("account", str(buyer.id))]
        action = f"/operator/console/decisions/{decision.id}/lift"
        page = client.get("/operator/console").text
        r = client.post(action, data=fields(page, action) | {"reason": "a carer"},
                        follow_redirects=False)
        assert r.status_code == 303
        assert monitoring.monitor.store.decision(decision.id).lifted_by == \
            "investigator:staff-investigator"

        # Live figures as server-sent events.
        with client.stream("GET", "/operator/console/stream?ticks=1") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            body = "".join(stream.iter_text())
        event, data = body.strip().split("\n", 1)
        assert event == "event: figures"
        live = json.loads(data.removeprefix("data: "))
        assert live["open_alerts"] >= 1 and live["requests_per_second"] > 0

        # Guard levels are the operator's: set from the page.
        client.cookies.set("fs_session", world.token(Role.OPERATOR))
        page = client.get("/operator/console").text
        data = fields(page, "/operator/console/level")
        r = client.post("/operator/console/level",
                        data=data | {"group": "booking", "level": "under_attack"},
                        follow_redirects=False)
        assert r.status_code == 303
        status = client.get("/api/v1/admin/guard", headers={
            "Authorization": f"Bearer {world.token(Role.OPERATOR)}"}).json()
        assert "under_attack" in json.dumps(status)

        # The charting library is the app's own.
        lib = client.get("/static/vendor/uplot/uPlot.iife.min.js")
        assert lib.status_code == 200 and "uPlot" in lib.text


def test_the_console_names_refusals_and_the_monitor_mode_in_the_visitors_language(
        world: World) -> None:
    """Refusal reasons and the monitor's mode are read as words; their codes stay beside
    them in a code tag (the docs explain each by its code)."""
    client = _client(world)
    clock = world.platform.clock
    with client:
        with world.platform.uow() as uow:
            for reason in ("rate_limited", "quota_active_bookings", "made_up_reason"):
                uow.events.append("guard.deny", clock.now(), detail={"reason": reason})
            uow.commit()
        client.cookies.set("fs_session", world.token(Role.OPERATOR))
        for lang, limited, quota, mode in (
                ("zh_CN", "超出频率限制", "有效预约过多", "嵌入本服务器"),
                ("en", "Over a rate limit", "Too many active bookings",
                 "embedded in this server")):
            client.cookies.set("fs_lang", lang)
            text = client.get("/operator/console").text
            refusals = text.split('id="fig-refusals"', 1)[1].split("</ul>", 1)[0]
            assert limited in refusals and quota in refusals
            assert '<code class="code-tag" lang="en">rate_limited</code>' in refusals
            assert refusals.count("quota_active_bookings") == 1  # only in its code tag
            assert "made_up_reason" in refusals  # an unknown code is shown as it is
            heading = text.split("<h1>", 1)[1].split("</h1>", 1)[0]
            assert mode in heading and '<code class="code-tag" lang="en">embedded</code>' in heading
            words = json.loads(html.unescape(text.split('data-words="', 1)[1].split('"', 1)[0]))
            assert words["reason:rate_limited"] == limited
