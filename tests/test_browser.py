"""The main flow in real Chromium: Data, Model, Train (live, reload, stop) and Evaluate on the demo set.

Screenshots of each page are saved to `test-artifacts/` for a person to look at.
"""

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import SHARED
from tests.dashboard_server import start_dashboard, stop_dashboard

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"),
]


def _server_env() -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if (SHARED / "weights").is_dir():
        env["STUDIO_WEIGHTS_DIRS"] = str(SHARED / "weights")
    return env


@pytest.fixture
def server(isolated_workspace):
    process, url, _ = start_dashboard(_server_env(), isolated_workspace / "server.log")
    yield url
    stop_dashboard(process)


def _settle(page, seconds: float = 60.0) -> None:
    """Wait until Streamlit has finished running the script."""
    page.wait_for_selector('[data-testid="stApp"]')
    time.sleep(1.0)
    deadline = time.time() + seconds
    while time.time() < deadline and page.locator('[data-testid="stStatusWidget"]').count():
        time.sleep(0.3)


def _set_epochs(page, head: int, finetune: int) -> None:
    """Open the Train page's settings and type the epochs of each phase."""
    page.get_by_text("Training settings").click()
    for label, value in (("Head epochs", head), ("Fine-tune epochs", finetune)):
        field = page.get_by_label(label, exact=True)
        field.fill(str(value))
        field.press("Enter")
        _settle(page)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_main_flow_in_chromium(server):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # the first page that imports TensorFlow takes a few seconds on 2 cores
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server)
        _settle(page)
        expect(page.get_by_text("Where to start")).to_be_visible()
        _shot(page, "0-home")

        page.get_by_role("link", name="Data").first.click()
        _settle(page)
        expect(page.get_by_text("Usable photos")).to_be_visible()
        _shot(page, "1-data")

        page.get_by_role("link", name="Model").first.click()
        _settle(page)
        expect(page.get_by_text("Weights trained in phase 2")).to_be_visible(timeout=60_000)
        _shot(page, "2-model")

        page.get_by_role("link", name="Train").first.click()
        _settle(page)
        _set_epochs(page, 2, 2)
        page.get_by_role("button", name="Start training").click()
        main_area = page.get_by_test_id("stMainBlockContainer")
        expect(main_area.get_by_text(": Training")).to_be_visible()
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=60_000)
        first_url = page.url
        assert "run=" in first_url
        page.wait_for_timeout(3000)
        page.reload()  # a reload finds the same run, still live
        _settle(page)
        expect(main_area.locator("code", has_text=first_url.split("run=")[1])).to_be_visible()
        _shot(page, "3-train-live")
        expect(main_area.get_by_text(": Finished")).to_be_visible(timeout=240_000)
        _shot(page, "3-train-done")

        page.get_by_role("button", name="Start training").click()  # a second run, stopped
        page.wait_for_url(lambda url: "run=" in url and url != first_url)
        expect(main_area.locator("code", has_text=page.url.split("run=")[1])).to_be_visible()
        stop = page.get_by_role("button", name="Stop")
        expect(stop).to_be_enabled()
        page.wait_for_timeout(3000)
        stop.click()
        expect(main_area.get_by_text(": Stopped")).to_be_visible(timeout=120_000)
        _shot(page, "3-train-stopped")

        page.get_by_role("link", name="Evaluate").first.click()
        _settle(page)
        expect(page.get_by_text("Confusion matrix")).to_be_visible(timeout=60_000)
        _shot(page, "4-evaluate")
        assert page.locator('[data-testid="stException"]').count() == 0
        browser.close()


def test_a_deep_link_on_a_fresh_server_gets_the_whole_app(server):
    """Streamlit's legacy pages/ mode would run /model alone; the app must frame it all the same."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(f"{server}/model")
        expect(page.get_by_role("heading", name="2. Model")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Your project")).to_be_visible()
        navigation = page.get_by_test_id("stSidebarNav")
        expect(navigation.get_by_text("Evaluate")).to_be_visible()
        assert navigation.get_by_text("shared").count() == 0
        browser.close()


def test_uploading_a_zip_of_photos(server, make_dataset, tmp_path):
    import zipfile

    from playwright.sync_api import expect, sync_playwright

    photos = make_dataset({"red": 5, "green": 4})
    archive = tmp_path / "my photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in photos.rglob("*.png"):
            zf.write(path, f"my photos/{path.parent.name}/{path.name}")
        zf.writestr("my photos/red/notes.txt", "not a photo")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{server}/data")
        expect(page.get_by_role("heading", name="1. Data")).to_be_visible(timeout=60_000)
        page.get_by_text("Upload a zip").click()
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(archive))
        main_area = page.get_by_test_id("stMainBlockContainer")
        expect(main_area.get_by_text("1 file(s) left out, and why")).to_be_visible(timeout=60_000)
        metrics = page.get_by_test_id("stMetricValue")
        expect(metrics.first).to_have_text("9")
        _shot(page, "1-data-zip")
        browser.close()


def test_a_run_survives_a_server_restart_and_the_page_reattaches(isolated_workspace):
    """The server is killed (SIGKILL) mid-run: the worker goes on, and a new server shows the same live run."""
    import json
    import signal

    import psutil
    from playwright.sync_api import expect, sync_playwright

    from core.runs import runs_root

    env = _server_env()
    process, url, _ = start_dashboard(env, isolated_workspace / "server.log")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/train")
            _settle(page)
            _set_epochs(page, 12, 2)
            page.get_by_role("button", name="Start training").click()
            main_area = page.get_by_test_id("stMainBlockContainer")
            expect(main_area.get_by_text(": Training")).to_be_visible(timeout=60_000)
            run_id = page.url.split("run=")[1].split("&")[0]
            status_path = runs_root() / run_id / "status.json"
            deadline = time.time() + 120
            while time.time() < deadline and not json.loads(status_path.read_text()).get("epoch"):
                time.sleep(0.5)  # wait until training is under way
            worker = json.loads(status_path.read_text())["pid"]

            process.send_signal(signal.SIGKILL)
            process.wait()
            assert psutil.pid_exists(worker), "the worker must not die with the server"
            process, url, _ = start_dashboard(env, isolated_workspace / "server.log")

            page.goto(f"{url}/train?run={run_id}")
            _settle(page)
            expect(main_area.locator("code", has_text=run_id)).to_be_visible(timeout=60_000)
            expect(main_area.get_by_text(": Training").first).to_be_visible()
            _shot(page, "5-train-after-server-restart")
            expect(main_area.get_by_text(": Finished")).to_be_visible(timeout=300_000)
            assert json.loads(status_path.read_text())["state"] == "succeeded"
            assert page.locator('[data-testid="stException"]').count() == 0
            browser.close()
    finally:
        stop_dashboard(process)
