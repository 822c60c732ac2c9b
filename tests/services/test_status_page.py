"""The status page in a real headless browser (Debian's Chromium driven by Playwright): the curves
it draws hold the points the server holds. Skipped, with the reason, where there is no browser,
except under DLLMRL_REQUIRE_BROWSER=1 (.ci/run sets it), where a missing browser fails."""

import os
from pathlib import Path

import pytest

from services.board import Board
from services.status import build_app
from services.telemetry import CurvePoint, Progress
from tests.services.test_status import serve

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def missing_browser() -> str | None:
    """Why the browser cannot run here, or None."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None if CHROMIUM.is_file() else f"no Chromium at {CHROMIUM} (apt-get install chromium)"


@pytest.fixture()
def chromium():
    reason = missing_browser()
    if reason is not None:
        if os.environ.get("DLLMRL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"DLLMRL_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def test_the_page_draws_the_served_curves(chromium):
    board = Board(2.0)
    board.report(Progress(state="training", step=5, total_steps=10))
    for step, reward in enumerate([0.1, 0.3, 0.2, 0.5, 0.6], start=1):
        board.point(CurvePoint(series="reward", step=step, value=reward))
    board.point(CurvePoint(series="accuracy", step=0, value=35.0))
    board.point(CurvePoint(series="accuracy", step=5, value=41.5))
    page = chromium.new_page()
    page.goto(serve(build_app(board, token="t0k")) + "/?token=t0k", timeout=10_000)
    page.wait_for_selector("body[data-loaded='1']", timeout=10_000)
    for chart, count in (("reward", 5), ("accuracy", 2)):
        svg = page.locator(f"svg#{chart}")
        assert svg.get_attribute("data-points") == str(count)
        points = svg.locator("polyline").get_attribute("points").split()
        assert len(points) == count
    reward_y = [float(p.split(",")[1]) for p in page.locator("svg#reward polyline").get_attribute("points").split()]
    assert reward_y[0] == max(reward_y) and reward_y[-1] == min(reward_y)  # lowest reward drawn lowest (SVG y down)
    assert page.locator("svg#accuracy .hi").text_content() == "41.500"
    assert "training, step 5 of 10" in page.locator("#summary").text_content()
