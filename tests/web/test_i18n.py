"""The pages in Chinese (the default) and English: the switch remembered in the browser,
the lang attributes, errors in the visitor's language, and catalogues that cover every
text of the templates."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from fairslot.web import i18n
from fairslot.web.app import create_app
from tests.conftest import World
from tests.web.test_pages import HTML, SQLITE_ONLY, alert, log_in, platform, submit

__all__ = ["platform"]


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.platform), headers=HTML) as test_client:
        yield test_client


@SQLITE_ONLY
def test_chinese_by_default_and_the_switch_is_remembered(client: TestClient,
                                                         world: World) -> None:
    home = client.get("/")
    assert '<html lang="zh-CN">' in home.text and "如何预约" in home.text
    assert home.headers["content-language"] == "zh-CN"
    # The way to the other language is itself marked as English for screen readers.
    assert 'lang="en" hreflang="en" class="lang">English</a>' in home.text
    switched = client.get("/lang", params={"to": "en", "next": "/login"},
                          follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/login"
    page = client.get("/login").text
    assert '<html lang="en">' in page and "Username" in page and "用户名" not in page
    assert 'lang="zh-CN" hreflang="zh-CN" class="lang">中文</a>' in page
    # Back to Chinese; an unknown language and an off-site "next" change nothing harmful.
    client.get("/lang", params={"to": "zh_CN"})
    assert "用户名" in client.get("/login").text
    evil = client.get("/lang", params={"to": "xx", "next": "//evil.example"},
                      follow_redirects=False)
    assert evil.headers["location"] == "/"
    assert '<html lang="zh-CN">' in client.get("/").text


@SQLITE_ONLY
def test_errors_are_shown_in_the_visitors_language(client: TestClient, world: World) -> None:
    world.patient_account("li.na", patients=0)
    log_in(client, "li.na")
    r = submit(client, "/me", "/me/patients", id_number="110101199003071234", name="张三")
    assert r.status_code == 422 and "身份证号校验码错误" in alert(r.text)
    client.cookies.set(i18n.LANG_COOKIE, "en")
    r = submit(client, "/me", "/me/patients", id_number="110101199003071234", name="张三")
    assert "the ID number's check digit is wrong" in alert(r.text)
    # The typed ID number is not wiped by the error.
    assert 'value="110101199003071234"' in r.text


def test_every_template_text_has_a_chinese_translation() -> None:
    with (i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale="zh_CN")
    untranslated = [m.id for m in catalog if m.id and not m.string
                    and any(loc[0].endswith(".html") or "/pages/" in loc[0]
                            for loc in m.locations)]
    assert untranslated == []
    zh = i18n.translations("zh_CN")
    assert zh.gettext("Log in") == "登录"
    assert i18n.translations("en").gettext("Log in") == "Log in"


CJK = re.compile(r"[\u4e00-\u9fff]")


@SQLITE_ONLY
def test_a_patients_phone_and_identity_pages_speak_one_language(client: TestClient,
                                                               world: World) -> None:
    world.patient_account("wang.fang", patients=0)
    log_in(client, "wang.fang")
    pages = ("/me", "/me/phone", "/me/identity")
    for path in pages:
        main = client.get(path).text.split('<main id="main"', 1)[1].split("</main>", 1)[0]
        assert CJK.search(main), path  # Chinese by default
    client.cookies.set(i18n.LANG_COOKIE, "en")
    for path in pages:
        main = client.get(path).text.split('<main id="main"', 1)[1].split("</main>", 1)[0]
        assert not CJK.search(main), (path, CJK.findall(main)[:5])
        assert "Phone number" in main or path == "/me/identity"
