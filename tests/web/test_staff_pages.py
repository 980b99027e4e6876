"""The operator's, admin's and investigator's pages: a doctor's release policy, the guard's
levels, a bad date, staff accounts and roles, and an investigation run from an uploaded
export with its progress and report."""

from __future__ import annotations

import datetime as dt
import io
import pathlib
import zipfile
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fairslot.domain.accounts import Role
from fairslot.domain.schedule import ReleasePolicy
from fairslot.services import accounts, catalog
from fairslot.services.investigations import Jobs
from fairslot.web.app import create_app
from tests.conftest import PASSWORD, World
from tests.web.test_pages import HTML, SQLITE_ONLY, alert, fields, platform, submit

__all__ = ["platform"]


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.platform), headers=HTML) as test_client:
        yield test_client


def _as(client: TestClient, world: World, role: Role) -> None:
    client.cookies.set("fs_session", world.token(role))


@SQLITE_ONLY
def test_an_operator_changes_a_doctors_release_policy_and_the_guard_level(
        client: TestClient, world: World) -> None:
    _as(client, world, Role.OPERATOR)
    home = client.get("/operator").text
    for link in ("/operator/console", "/operator/policies", "/operator/guard"):
        assert f'href="{link}"' in home
    assert 'href="/desk"' not in home and 'href="/admin/users"' not in home
    page = client.get("/operator/policies").text
    assert "李明" in page
    r = submit(client, "/operator/policies", f"/operator/policies/{world.doctor_id}",
               policy="draw")
    assert r.status_code == 303, alert(r.text)
    assert "放号方式已保存" in client.get(r.headers["location"]).text
    doctor = world.platform.run(catalog.doctor, world.doctor_id)
    assert doctor.release_policy is ReleasePolicy.DRAW
    r = submit(client, "/operator/policies", f"/operator/policies/{world.doctor_id}",
               policy="auction")
    assert r.status_code == 422
    guard = client.get("/operator/guard")
    assert guard.status_code == 200 and "booking" in guard.text
    r = submit(client, "/operator/guard", "/operator/guard/booking", level="elevated")
    assert r.status_code == 303, alert(r.text)
    assert 'value="elevated" selected' in client.get("/operator/guard").text
    # A malformed date is a bad request, shown as a page.
    bad = client.get("/operator", params={"date": "bogus"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text


@SQLITE_ONLY
def test_an_admin_manages_staff_accounts_and_roles(client: TestClient, world: World) -> None:
    _as(client, world, Role.ADMIN)
    r = submit(client, "/admin/users", "/admin/users", username="desk.three",
               password=PASSWORD, role="registration")
    assert r.status_code == 303, alert(r.text)
    r = submit(client, "/admin/users", "/admin/users", username="desk.four",
               password=PASSWORD, role="patient")
    assert r.status_code == 422
    created = next(a for a in world.platform.run(accounts.staff_accounts)
                   if a.username == "desk.three")
    page = client.get("/admin/users").text
    data = fields(page, f"/admin/users/{created.id}") | {"role": "operator",
                                                         "disabled": "yes"}
    r = client.post(f"/admin/users/{created.id}", data=data, follow_redirects=False)
    assert r.status_code == 303, alert(r.text)
    changed = next(a for a in world.platform.run(accounts.staff_accounts)
                   if a.username == "desk.three")
    assert changed.role is Role.OPERATOR and changed.disabled
    # A disabled account cannot log in; nobody changes their own account here.
    other = TestClient(client.app, headers=HTML)
    r = submit(other, "/login", "/login", username="desk.three", password=PASSWORD)
    assert r.status_code == 401
    own = world.staff[Role.ADMIN].id
    assert f'action="/admin/users/{own}"' not in page
    r = client.post(f"/admin/users/{own}", data={"csrf": data["csrf"], "role": "operator"},
                    follow_redirects=False)
    assert r.status_code == 409
    # Other roles cannot open the page.
    _as(client, world, Role.OPERATOR)
    assert client.get("/admin/users").status_code == 403


@SQLITE_ONLY
def test_an_investigator_runs_an_investigation_from_an_uploaded_export(
        client: TestClient, world: World, tmp_path: pathlib.Path) -> None:
    from fairslot.investigation.synth import write_synthetic

    # The job runs in the request's thread here (a thread in production), so the test
    # needs no waiting; the stages are the same.
    app = client.app
    app.state.investigations = Jobs(world.platform.deps, tmp_path / "jobs",  # type: ignore[attr-defined]
                                    runner=lambda fn: fn())
    write_synthetic(tmp_path / "export", seed=3, scale=0.05)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted((tmp_path / "export").iterdir()):
            if path.name != "labels.csv":
                zf.write(path, f"export/{path.name}")
    _as(client, world, Role.INVESTIGATOR)
    home = client.get("/investigations").text
    assert 'href="/investigations"' in home and 'href="/desk"' not in home
    csrf = fields(home, "/investigations")["csrf"]
    r = client.post("/investigations", data={"csrf": csrf},
                    files={"export": ("notes.txt", b"hello", "text/plain")},
                    follow_redirects=False)
    assert r.status_code == 422 and ".zip" in alert(r.text)
    r = client.post("/investigations", data={"csrf": csrf},
                    files={"export": ("export.zip", buffer.getvalue(), "application/zip")},
                    follow_redirects=False)
    assert r.status_code == 303, alert(r.text)
    job_page = client.get(r.headers["location"]).text
    assert "100%" in job_page and "report.html" in job_page
    report = client.get(r.headers["location"] + "/report.html")
    assert report.status_code == 200 and "sandbox" in report.headers["content-security-policy"]
    # In the language the investigator reads the pages in.
    assert '<html lang="zh-CN">' in report.text
    # Served by the site, the report leads back to it (the file itself stands alone).
    job_path = r.headers["location"]
    assert f'<a href="{job_path}">返回调查</a>' in report.text
    assert '<a href="/investigations">' in report.text and '<a href="/">' in report.text
    # When the records were read, in the hospital's time and so named (the clock is UTC).
    platform = world.platform
    read_at = platform.clock.now().astimezone(platform.settings.zone).strftime("%Y-%m-%d %H:%M")
    assert platform.clock.now().utcoffset() == dt.timedelta(0)
    assert f"读取于 {read_at}（北京时间）" in report.text
    client.cookies.set("fs_lang", "en")
    english = client.get(r.headers["location"] + "/report.html")
    assert english.status_code == 200 and '<html lang="en">' in english.text
    assert "sandbox" in english.headers["content-security-policy"]
    assert f'<a href="{job_path}">Back to the investigation</a>' in english.text
    assert f"read {read_at} (Beijing time)" in english.text
    client.cookies.delete("fs_lang")
    assert client.get(r.headers["location"] + "/suspects.csv").text.startswith("entity_type")
    assert client.get(r.headers["location"] + "/../../etc/passwd").status_code == 404
    # A zip with a path outside its folder fails the job, nothing written outside.
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.csv", "x")
    r = client.post("/investigations", data={"csrf": csrf},
                    files={"export": ("evil.zip", evil.getvalue(), "application/zip")},
                    follow_redirects=False)
    failed = client.get(r.headers["location"]).text
    assert "失败" in failed and not (tmp_path / "jobs" / "escape.csv").exists()
    # A patient cannot see investigations.
    _, _, token = world.patient_account("ma.li")
    client.cookies.set("fs_session", token)
    assert client.get("/investigations").status_code == 403


@SQLITE_ONLY
def test_the_guard_page_says_the_shared_state_in_the_visitors_language(
        client: TestClient, world: World) -> None:
    _as(client, world, Role.OPERATOR)
    page = client.get("/operator/guard").text
    # Chinese by default: the storage line is worded, not the raw /readyz fields.
    assert "共享状态（Redis）" in page
    assert "per-process limits" not in page and "redis: " not in page
    client.cookies.set("fs_lang", "en")
    assert "Shared state (Redis)" in client.get("/operator/guard").text


@SQLITE_ONLY
@pytest.mark.parametrize("role", [Role.REGISTRATION, Role.OPERATOR, Role.INVESTIGATOR])
def test_staff_on_a_patients_booking_page_are_told_it_is_for_patients(
        client: TestClient, world: World, role: Role) -> None:
    # A doctor's page shows staff no Book buttons; a staff account that follows one anyway
    # (a link, a bookmark) is told the page is for patients and where the desk books.
    book = f'href="/sessions/{world.session_ids[0]}/book"'
    client.cookies.set("fs_session", world.patient_account(f"sees.book.{role.value}")[2])
    assert book in client.get(f"/doctors/{world.doctor_id}").text
    _as(client, world, role)
    assert book not in client.get(f"/doctors/{world.doctor_id}").text
    r = client.get(f"/sessions/{world.session_ids[0]}/book")
    assert r.status_code == 403
    assert "此页面仅供患者本人账户使用" in r.text and "挂号台" in r.text
    assert "其他员工权限" not in r.text
    _as(client, world, Role.ADMIN)
    assert client.get(f"/sessions/{world.session_ids[0]}/book").status_code == 200
