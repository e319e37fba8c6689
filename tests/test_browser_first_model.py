"""A model in seconds, in real Chromium: the Quick first model, and a run's first model while phase 2 trains."""

import pytest

from tests.conftest import needs_shared_weights
from tests.dashboard_server import start_dashboard, stop_dashboard
from tests.test_browser import CHROMIUM, _go, _server_env, _set_epochs, _settle, _shot, _state, chromium_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"),
]


@pytest.fixture
def dashboard(isolated_workspace):
    process, url, _ = start_dashboard(_server_env(), isolated_workspace / "server.log")
    yield url
    stop_dashboard(process)


@needs_shared_weights
def test_a_quick_model_then_a_first_model_to_try_while_fine_tuning_goes_on(dashboard):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)
    with sync_playwright() as playwright, chromium_page(playwright, "first-model") as page:
        page.goto(f"{dashboard}/train")
        _settle(page)
        main = page.get_by_test_id("stMainBlockContainer")
        page.get_by_role("button", name="Quick first model").click()
        expect(_state(main, "Finished")).to_be_visible(timeout=180_000)
        _go(page, "Evaluate")
        expect(main.get_by_text("Class by class")).to_be_visible()
        assert main.get_by_text("A first model is ready").count() == 0  # a Quick model is the whole run

        _go(page, "Train")
        _set_epochs(page, 2, 60)  # a phase 2 long enough to look at the first model meanwhile
        page.get_by_role("button", name="Start training").click()
        expect(main.get_by_text("A first model is ready")).to_be_visible(timeout=240_000)
        _shot(page, "3-train-first-model")
        _go(page, "Evaluate")
        expect(main.get_by_text("A first model is ready")).to_be_visible()
        expect(main.get_by_text("These are the first model's results")).to_be_visible()
        expect(main.get_by_text("Class by class")).to_be_visible()
        _shot(page, "4-evaluate-first-model")
        _go(page, "Train")
        page.get_by_role("button", name="Stop", exact=True).click()
        expect(_state(main, "Stopped")).to_be_visible(timeout=120_000)
        assert page.locator('[data-testid="stException"]').count() == 0
