"""The blacklist officer's page in a real browser (Debian's Chromium, driven by Playwright)
against a real server: an investigator publishes one of the hospital's patients on the
shared list from the form, in Chinese, then withdraws the entry. A missing Chromium is a
failure with the fix in its message, never a skip."""

from __future__ import annotations

import os
import pathlib
import textwrap

import pytest

from tests.conftest import PASSWORD
from tests.web.browser_server import serve
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser]

SEED = textwrap.dedent("""
    import random
    from fairslot.bootstrap import bootstrap
    from fairslot.consortium.pseudonyms import EpochKey
    from fairslot.domain.accounts import Role
    from fairslot.domain.residents import make_residents
    from fairslot.services import accounts
    from fairslot.services.context import RequestContext
    from fairslot.storage.migrate import upgrade

    platform = bootstrap()
    upgrade(platform.engine)
    platform.consortium.create_key("hosp-b", "Hospital B", actor="test")
    platform.consortium.store.add_epoch(EpochKey.new(1), platform.clock.now(), "test")
    [person] = make_residents(random.Random(31), 1)
    with platform.uow() as uow:
        platform.verifier.register(uow, person)
        uow.commit()
    platform.run(accounts.create_user, "list.officer", {password!r}, Role.INVESTIGATOR, None)
    family = platform.run(accounts.create_user, "family.b", {password!r}, Role.PATIENT,
                          "13912345690", phone_verified=True)
    print(platform.run(accounts.add_patient, family, person.id_number, person.name, None,
                       RequestContext(ip="127.0.0.1")).id)
""")


def test_an_officer_publishes_a_patient_and_withdraws_the_entry(tmp_path: pathlib.Path) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it with "
                    "`apt-get update && apt-get install -y chromium` (make test does)",
                    pytrace=False)
    from playwright.sync_api import expect, sync_playwright

    with serve(tmp_path, SEED) as (url, printed), sync_playwright() as pw:
        patient_id = printed.split()[-1]
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="zh-CN")
            page.goto(url + "/login")
            page.get_by_label("用户名").fill("list.officer")
            page.get_by_label("密码").fill(PASSWORD)
            page.get_by_role("button", name="登录").click()
            page.wait_for_load_state()
            page.get_by_role("link", name="共享名单").click()
            form = page.locator("form[action='/consortium/entries']")
            form.get_by_label("类别").select_option("ring_member")
            form.get_by_label("团伙中的角色").select_option("held_identity")
            form.get_by_label("或本院患者（编号）").fill(patient_id)
            form.get_by_label("证据摘要（仅留本院）").fill("案件 2026-51：同一付款人 17 笔预约")
            asked: list[str] = []
            page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
            form.get_by_role("button", name="发布").click()
            expect(page.get_by_role("status")).to_contain_text("已发布到共享名单")
            assert asked and "联盟内所有医院" in asked[-1], asked
            row = page.locator("#entry-1")
            expect(row).to_contain_text("hosp-b/1")
            expect(row).to_contain_text("生效中")
            row.get_by_label("原因").fill("身份被盗用")
            row.get_by_role("button", name="撤回").click()
            expect(page.get_by_role("status")).to_contain_text("条目已撤回")
            assert len(asked) == 2 and "撤回条目 1" in asked[-1], asked
            expect(page.locator("#entry-1")).to_contain_text("已撤回")
        finally:
            browser.close()
