"""The monitor's alerts and decisions over the API: an investigator lists and reads the
alert the embedded monitor raised, acknowledges it, decides by hand and lifts; patients
see none of it; bad input changes nothing."""

from __future__ import annotations

import dataclasses

from fastapi.testclient import TestClient

from fairslot.domain.accounts import Role
from fairslot.web.app import create_app
from tests.conftest import World

FARMED = (("110101199003071111", "张三"), ("110101199003072222", "李四"),
          ("110101199003073333", "王五"))


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_investigator_works_an_alert_through_the_api(world: World) -> None:
    platform = dataclasses.replace(
        world.platform,
        settings=world.platform.settings.model_copy(update={"monitor_mode": "embedded"}))
    client = TestClient(create_app(platform))
    account, _, token = world.patient_account("farm.api")
    investigator = _auth(world.token(Role.INVESTIGATOR))
    with client:
        for number, name in FARMED:
            client.post("/api/v1/me/patients", headers=_auth(token),
                        json={"id_number": number, "name": name})
        client.app.state.monitoring.embedded.stop()  # type: ignore[attr-defined]

        assert client.get("/api/v1/monitor/alerts", headers=_auth(token)).status_code == 403
        alerts = client.get("/api/v1/monitor/alerts?scenario=bad_identities",
                            headers=investigator).json()
        (alert,) = [a for a in alerts if a["entity"] == f"account:{account.id}"]
        assert alert["status"] == "open" and alert["figures"]["identities"] == 3
        detail = client.get(f"/api/v1/monitor/alerts/{alert['id']}",
                            headers=investigator).json()
        assert [(d["action"], d["entity"]) for d in detail["decisions"]] == [
            ("hold_bookings", f"account:{account.id}")]
        assert client.get("/api/v1/monitor/alerts/9999", headers=investigator).json()[
            "code"] == "alert_not_found"

        r = client.post(f"/api/v1/monitor/alerts/{alert['id']}/status", headers=investigator,
                        json={"status": "false_positive"})
        assert r.status_code == 422 and r.json()["code"] == "reason_required", r.text
        r = client.post(f"/api/v1/monitor/alerts/{alert['id']}/status", headers=investigator,
                        json={"status": "acknowledged", "reason": "looking"})
        assert r.status_code == 200 and r.json()["status"] == "acknowledged"
        history = client.get(f"/api/v1/monitor/alerts/{alert['id']}",
                             headers=investigator).json()["history"]
        assert history[-1]["status"] == "acknowledged"
        assert history[-1]["by"] == "investigator:staff-investigator"

        r = client.post("/api/v1/monitor/decisions", headers=investigator,
                        json={"action": "block", "entity": "nonsense", "lifetime": "1h",
                              "reason": "x"})
        assert r.status_code == 422 and r.json()["code"] == "invalid_entity"
        r = client.post("/api/v1/monitor/decisions", headers=investigator,
                        json={"action": "block", "entity": "ip:203.0.113.77",
                              "lifetime": "forever", "reason": "x"})
        assert r.status_code == 422 and r.json()["code"] == "invalid_lifetime"
        before = client.get("/api/v1/monitor/decisions", headers=investigator).json()
        r = client.post("/api/v1/monitor/decisions", headers=investigator,
                        json={"action": "block", "entity": "ip:203.0.113.77",
                              "lifetime": "2h", "reason": "scraping from a data centre"})
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["created_by"] == "investigator:staff-investigator"
        active = client.get("/api/v1/monitor/decisions", headers=investigator).json()
        assert len(active) == len(before) + 1
        r = client.post(f"/api/v1/monitor/decisions/{made['id']}/lift", headers=investigator,
                        json={"reason": "the hospital's own proxy"})
        assert r.status_code == 200 and r.json()["lifted_by"] == \
            "investigator:staff-investigator"
        assert len(client.get("/api/v1/monitor/decisions", headers=investigator).json()) == \
            len(before)
