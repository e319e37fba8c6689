"""The main flow in real Chromium: Data, Model, Train (live, reload, stop) and Evaluate on the demo set.

Screenshots of each page are saved to `test-artifacts/` for a person to look at.
"""

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import SHARED, wait_until
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
    """Wait until Streamlit has run the page's script to its end (the app marks its script state)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=seconds * 1000)


def _status(run_id: str) -> dict:
    from core.runs import runs_root

    try:
        return json.loads((runs_root() / run_id / "status.json").read_text())
    except (OSError, ValueError):
        return {}


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
        first_id = first_url.split("run=")[1].split("&")[0]
        wait_until(lambda: _status(first_id).get("epoch"), 120, "the first epoch")
        page.reload()  # a reload finds the same run, still live
        _settle(page)
        expect(main_area.locator("code", has_text=first_url.split("run=")[1])).to_be_visible()
        _shot(page, "3-train-live")
        expect(main_area.get_by_text(": Finished")).to_be_visible(timeout=240_000)
        _shot(page, "3-train-done")

        _set_epochs(page, 40, 2)  # a second run, long enough to be stopped while it trains
        page.get_by_role("button", name="Start training").click()
        page.wait_for_url(lambda url: "run=" in url and url != first_url)
        second_id = page.url.split("run=")[1].split("&")[0]
        expect(main_area.locator("code", has_text=second_id)).to_be_visible()
        wait_until(
            lambda: _status(second_id).get("stage") == "head" and _status(second_id).get("epoch"), 120, "training"
        )
        stop = page.get_by_role("button", name="Stop", exact=True)
        expect(stop).to_be_enabled()
        stop.click()
        expect(main_area.get_by_text(": Stopped")).to_be_visible(timeout=120_000)
        _shot(page, "3-train-stopped")

        page.get_by_role("link", name="Evaluate").first.click()
        _settle(page)
        expect(page.get_by_text("Confusion matrix")).to_be_visible(timeout=60_000)
        _shot(page, "4-evaluate")
        assert page.locator('[data-testid="stException"]').count() == 0
        browser.close()


# Records, from before the page's own scripts run, every navigation label and page title the
# browser ever shows, so a flash of the wrong screen (a raw file list, say) cannot go unseen.
RECORD_EVERY_PAINT = """
window.__seen = {nav: new Set(), titles: new Set()};
new MutationObserver(() => {
  document.querySelectorAll('[data-testid="stSidebarNav"] a').forEach(a => {
    const label = a.cloneNode(true);
    label.querySelectorAll('[data-testid="stIconMaterial"]').forEach(icon => icon.remove());
    window.__seen.nav.add(label.textContent.trim());
  });
  document.querySelectorAll('h1').forEach(h => window.__seen.titles.add(h.textContent.trim()));
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


@pytest.mark.parametrize(
    "path, title",
    [
        ("", "Fine-Tune Studio"),
        ("data", "1. Data"),
        ("model", "2. Model"),
        ("train", "3. Train"),
        ("evaluate", "4. Evaluate"),
    ],
)
def test_the_first_request_to_a_fresh_server_shows_the_app_from_its_first_paint(isolated_workspace, path, title):
    """No raw file list, even for a moment: Streamlit's legacy `pages/` folder mode is out of the way."""
    from playwright.sync_api import expect, sync_playwright

    process, url, _ = start_dashboard(_server_env(), isolated_workspace / "server.log")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.add_init_script(RECORD_EVERY_PAINT)
            page.goto(f"{url}/{path}")
            expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Your project")).to_be_visible()
            seen = page.evaluate("({nav: [...window.__seen.nav], titles: [...window.__seen.titles]})")
            assert set(seen["nav"]) == {"Home", "Data", "Model", "Train", "Evaluate"}, seen
            assert seen["titles"] == [title], seen
            _shot(page, f"0-first-paint-{path or 'home'}")
            browser.close()
    finally:
        stop_dashboard(process)


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
            wait_until(lambda: _status(run_id).get("epoch"), 120, "training to be under way")
            worker = _status(run_id)["pid"]

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
