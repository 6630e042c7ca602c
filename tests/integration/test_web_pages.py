"""The web pages in a real browser: Debian's Chromium driven by Playwright for Python, against a real
uvicorn on loopback with PostgreSQL (the application's clock pinned, so no page depends on today).

A grid worker reports through the API; the centre's clerk signs in on the page, finds the case in the
workbench's queue, classifies, dispatches it; the handler accepts and resolves it; the clerk verifies it —
every step through the pages' forms. Two browser contexts acting on the same case show the conflict. Bad
input (no CSRF token, a foreign ``next``, a missing required field) gets a clear page and changes nothing.
Screenshots of each page at 360 px and 1920 px are saved in ``test-artifacts/web/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from config.settings import Settings
from gridflow.app import Gridflow
from tests.chromium import require_chromium, require_cjk_font

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
GRID = "mayingtai-01"
WORKER = "p-an-yixuan"  # grid worker of mayingtai-01 (13800000011)
CENTRE = "p-chen-jia"  # centre clerk (13800000001)
CENTRE_PHONE, WORKER_PHONE = "13800000001", "13800000011"
PASSWORD = "网格中心Pass-2026"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
WIDTHS = {"phone": (360, 780), "desktop": (1920, 1080)}


@dataclass
class Site:
    gf: Gridflow
    url: str
    now: list[datetime] = field(default_factory=lambda: [NOW])

    def report(self, title: str) -> str:
        token = self.gf.create_token(WORKER, f"web test {title}")["token"]
        answer = httpx.post(
            f"{self.url}/api/v1/cases",
            headers={"Authorization": f"Bearer {token}"},
            json={"grid": GRID, "title": title, "description": "村口主水管破裂，十几户停水"},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["code"])


@pytest.fixture(scope="module")
def site(pg_server, tmp_path_factory) -> Iterator[Site]:
    from gridflow.api.embedded import EmbeddedApi

    home = tmp_path_factory.mktemp("web")
    settings = Settings(home=home, database_url=pg_server.create("gridflow_web"), notices_file=home / "notices.log")
    now = [NOW]
    gf = Gridflow(settings, clock=lambda: now[0])
    gf.init()
    for person in (CENTRE, WORKER):
        gf.set_password(person, PASSWORD)
    server = EmbeddedApi(gf, "127.0.0.1", 0)
    server.start()
    yield Site(gf, server.url, now)
    server.stop()
    gf.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    path = require_chromium()
    require_cjk_font()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, args=["--no-sandbox"], timeout=30_000)
        yield launched
        launched.close()


def _context(browser, width: int = 1280, height: int = 900):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    context.set_default_timeout(15_000)
    return context


def sign_in(page, site: Site, phone: str, password: str = PASSWORD, then: str = "/workbench") -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{site.url}{then}")
    assert "/login" in page.url  # not signed in: to the sign-in page, and back afterwards
    page.fill("#phone-p", phone)
    page.fill("#password", password)
    page.click("text=密码登录")
    page.wait_for_url(re.compile(re.escape(then) + "$"))


def shoot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """The page at both widths, as files a person looks at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def step(page, label: str, **fields: str) -> None:  # type: ignore[no-untyped-def]
    """Open the step's form by its Chinese label, fill its fields (by the field's label), submit."""
    form = page.locator("details.step", has=page.locator(f"summary:text-is('{label}')"))
    form.locator("summary").click()
    for field_label, value in fields.items():
        control = form.get_by_label(field_label, exact=False)
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(label=value)
        else:
            control.fill(value)
    form.locator("button[type=submit]").click()
    page.wait_for_load_state("load")


def test_a_case_goes_from_report_to_verified_through_the_pages(site: Site, browser) -> None:
    code = site.report("村口水管破裂")
    context = _context(browser)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # a CSP refusal shows here
    sign_in(page, site, CENTRE_PHONE)
    assert page.locator("h1").inner_text() == "工作台"
    tile = page.locator("a.queue", has_text="待立案")
    assert tile.locator(".count").inner_text() == "1"
    shoot(page, "workbench")

    tile.click()
    page.wait_for_url(re.compile(r"/queues/classify$"))
    row = page.locator("table.list tbody tr", has_text=code)
    assert row.count() == 1 and "村口水管破裂" in row.inner_text()
    shoot(page, "queue")

    row.locator(f"a:text-is('{code}')").click()
    page.wait_for_url(re.compile(rf"/cases/{code}$"))
    assert "已上报" in page.locator("h1 .badge").inner_text()
    bars = page.locator("figure.clock")
    assert bars.count() >= 2  # the case's own clock and the state's
    assert "开始计时" in page.locator("ol.reasons").first.inner_text()
    shoot(page, "case-reported")

    step(page, "立案分类", 事件类别="供水", 紧急程度="紧急")
    assert page.locator("p.ok").inner_text() == "已完成：立案分类。"
    assert "已立案" in page.locator("h1 .badge").inner_text()
    step(page, "派遣", 处置人="安怡萱")
    assert "已派遣" in page.locator("h1 .badge").inner_text()
    shoot(page, "case-assigned")

    handler = _context(browser).new_page()
    sign_in(handler, site, WORKER_PHONE, then=f"/cases/{code}")
    step(handler, "签收")
    assert "处置中" in handler.locator("h1 .badge").inner_text()
    step(handler, "办结", 处置结果="已更换破裂管段，恢复供水")
    assert "已办结" in handler.locator("h1 .badge").inner_text()

    page.goto(f"{site.url}/queues/verify")
    page.locator(f"a:text-is('{code}')").click()
    step(page, "核查结案", 群众满意度="满意")
    assert "已核查结案" in page.locator("h1 .badge").inner_text()
    timeline = page.locator("ol.timeline li")
    assert timeline.count() == 6  # reported, classified, assigned, accepted, resolved, verified
    classified = timeline.nth(1).inner_text()
    assert "立案分类" in classified and "陈佳" in classified and "事件类别\n供水" in classified  # labels, not ids
    assert "water_supply" not in classified and "p-chen-jia" not in classified
    shoot(page, "case-verified")
    assert not errors, errors
    handler.context.close()
    context.close()


def test_two_people_on_one_case_the_second_sees_the_conflict(site: Site, browser) -> None:
    code = site.report("两人同时处理")
    first, second = _context(browser).new_page(), _context(browser).new_page()
    sign_in(first, site, CENTRE_PHONE, then=f"/cases/{code}")
    sign_in(second, site, CENTRE_PHONE, then=f"/cases/{code}")
    step(first, "立案分类", 事件类别="供水", 紧急程度="一般")
    step(second, "作废", 原因="重复上报")  # the form was built on version 1
    assert "其他人已处理了此事件" in second.locator("p.alert").inner_text()
    assert "已立案" in second.locator("h1 .badge").inner_text()  # the page shows the case as it is now
    shoot(second, "case-conflict")
    assert site.gf.show_case(code)["status"] == "classified"
    first.context.close()
    second.context.close()


def test_a_missing_required_field_is_named_and_nothing_changes(site: Site, browser) -> None:
    code = site.report("缺少必填项")
    page = _context(browser).new_page()
    sign_in(page, site, CENTRE_PHONE, then=f"/cases/{code}")
    form = page.locator("details.step", has=page.locator("summary:text-is('作废')"))
    form.locator("summary").click()
    form.locator("textarea, input[name=f_reason]").evaluate("e => e.removeAttribute('required')")  # past the browser
    form.locator("button[type=submit]").click()
    page.wait_for_load_state("load")
    assert "reason" in page.locator("p.alert").inner_text()
    assert site.gf.show_case(code)["status"] == "reported"
    page.context.close()


def test_forms_without_the_csrf_token_and_foreign_next_addresses_are_refused(site: Site) -> None:
    code = site.report("跨站请求")
    with httpx.Client(base_url=site.url, timeout=30) as http:
        login = http.get("/login")
        assert login.status_code == 200 and "script-src 'self'" in login.headers["content-security-policy"]
        assert "unsafe-inline" not in login.headers["content-security-policy"]
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
        cookie = http.cookies.get("gridflow_csrf")
        assert cookie == csrf
        set_cookie = login.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie
        with httpx.Client(base_url=site.url, timeout=30) as stranger:  # a form posted from elsewhere: no cookie
            forged = stranger.post("/login", data={"phone": CENTRE_PHONE, "password": PASSWORD})
        assert forged.status_code == 403 and "表单已过期" in forged.text
        signed = http.post(
            "/login",
            data={"csrf": csrf, "phone": CENTRE_PHONE, "password": PASSWORD, "next": "//evil.example/x"},
            follow_redirects=False,
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/"
        session = signed.headers["set-cookie"].lower()
        assert "gridflow_session=" in session and "httponly" in session and "samesite=lax" in session
        other = httpx.Client(
            base_url=site.url, timeout=30, cookies={"gridflow_session": http.cookies["gridflow_session"]}
        )
        with other:  # the session without the CSRF cookie: a forged cross-site form
            refused = other.post(f"/cases/{code}/steps", data={"trigger": "void", "f_reason": "x", "version": "1"})
        assert refused.status_code == 403
        wrong = http.post("/login", data={"csrf": csrf, "phone": CENTRE_PHONE, "password": "wrong", "how": "password"})
        assert wrong.status_code == 401 and "wrong phone number or password" in wrong.text
    assert site.gf.show_case(code)["status"] == "reported"


def test_the_breaching_soon_queue_counts_working_hours(site: Site) -> None:
    """A case reported at 16:00 on a Friday: its 2-hour classify clock runs out on Monday, not the same night."""
    viewer = site.gf.viewer(CENTRE)
    friday_4pm = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    site.now[0] = friday_4pm
    try:
        code = site.report("周五下午上报")
        soon = site.gf.queue_cases(viewer, "soon", at=friday_4pm)
        assert code in [c["code"] for c in soon["items"]]  # due at Monday 09:00 + … within 4 working hours
        later = site.gf.queue_cases(viewer, "soon", at=friday_4pm - timedelta(days=30))
        assert code not in [c["code"] for c in later["items"]]
    finally:
        site.now[0] = NOW
