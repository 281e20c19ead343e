"""The desk in a real browser: the embedded platform served by uvicorn on loopback, with the
demo data, and Playwright driving Debian's Chromium (Playwright's own browser download is out
of reach here). Every page is checked by axe-core, and no request may leave the app's origin.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, Route, sync_playwright

from services.demo import load_demo
from services.platform.sealing import PREFIX as SEALED
from services.platform.settings import Settings
from services.wiring import embedded_app
from tests.conftest import JWT_SECRET
from tests.infrastructure import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "var" / "screenshots"
# Chromium's own calls home are refused by a closed network; these flags keep it quiet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERIOUS = ("serious", "critical")
# A code or catalogue key shown as it is (route_in.minsei_volunteer, use_recommendation,
# field.state): the desk must always show words.
RAW_CODE = re.compile(r"\b[a-z]+(?:[._][a-z]+)+\b")


class LiveDesk:
    """The embedded platform serving on loopback in a thread of this process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = embedded_app(settings)
        load_demo(self.app, settings)
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_config=None, access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveDesk:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the desk did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDesk]:
    settings = Settings(var_dir=tmp_path_factory.mktemp("desk") / "var", jwt_secret=JWT_SECRET)
    with LiveDesk(settings) as live:
        yield live


# Per module, not per session: Playwright's sync API keeps an event loop running in the main
# thread while it is open, which would break every later test that calls asyncio.run.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: make test installs it (deploy/local)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, desk: LiveDesk) -> Iterator[Page]:
    """A fresh browser session; any request to another origin fails the test."""
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo")
    elsewhere: list[str] = []

    def only_our_origin(route: Route) -> None:
        url = route.request.url
        if url.startswith(desk.origin + "/") or url.startswith("data:"):
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort()

    context.route("**/*", only_our_origin)
    opened = context.new_page()
    yield opened
    context.close()
    assert elsewhere == [], f"pages requested other origins: {elsewhere}"


@pytest.fixture(scope="session")
def axe() -> Axe:
    return Axe()


AccessibilityCheck = Callable[[Page, str], None]


@pytest.fixture
def checked(axe: Axe) -> AccessibilityCheck:
    """Checks the page as it stands with axe-core (no serious or critical violation), that no
    code shows raw, and keeps a screenshot of it under var/screenshots for review."""

    def check(page: Page, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        raw = sorted(set(RAW_CODE.findall(page.locator("body").inner_text())))
        assert raw == [], f"{name}: codes shown raw: {raw}"
        # A sealed value reaching a page unopened: an answer that bypassed the opening.
        assert SEALED not in page.content(), f"{name}: a sealed value shown as it is stored"
        results: dict[str, Any] = axe.run(page).response
        serious = [
            f"{v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(n["target"][0] for n in v["nodes"][:3])
            for v in results["violations"]
            if v["impact"] in SERIOUS
        ]
        assert serious == [], f"{name}: {serious}"

    return check


def sign_in(page: Page, desk: LiveDesk, agency: str, role: str, staff: str = "s001") -> None:
    """The development sign-in, through its form, as a user would."""
    page.goto(f"{desk.origin}/signin")
    page.get_by_label(re.compile("^所属機関")).select_option(agency)
    page.get_by_label(re.compile("^役割")).select_option(role)
    page.get_by_label(re.compile("^職員番号")).fill(staff)
    page.get_by_role("button", name="ログインする").click()
    page.wait_for_url(f"{desk.origin}/")
