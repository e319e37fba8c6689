"""The main flow in real Chromium: Data, Model, Train (live, reload, stop) and Evaluate on the demo set.

Screenshots of each page are saved to `test-artifacts/` for a person to look at.
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from app_pages.navigation import PAGES
from core.data.demo_data import draw_shape, ensure_demo_dataset
from tests.conftest import SHARED, needs_shared_weights, wait_until
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


# Counts the script runs the page has finished, so that a test can wait for the rerun its own action starts:
# straight after a click the app still says "notRunning", and `_settle` alone would pass before the server
# has seen the change, letting the next click race it.
COUNT_RERUNS = """
window.__studioRuns = 0;
new MutationObserver((records) => {
  for (const record of records) if (record.oldValue === "running") window.__studioRuns += 1;
}).observe(document,
           {subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ["data-test-script-state"]});
"""


def _rerun(page, action, seconds: float = 60.0) -> None:
    """Do `action`, which changes a widget, and wait until the script run that it starts has finished."""
    before = page.evaluate("window.__studioRuns")
    action()
    page.wait_for_function(f"window.__studioRuns > {before}", timeout=seconds * 1000)
    _settle(page, seconds)


def _choose(page, box: str, option: str) -> None:
    """Pick `option` in the select box labelled `box`, waiting for the app to take it."""
    page.get_by_test_id("stSelectbox").filter(has_text=box).click()
    _rerun(page, lambda: page.get_by_role("option", name=option).click())


def _new_page(browser, **options):
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, **options)
    page.add_init_script(COUNT_RERUNS)
    return page


def _status(run_id: str) -> dict:
    from core.runs.directory import runs_root

    try:
        return json.loads((runs_root() / run_id / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def _set_epochs(page, head: int, finetune: int) -> None:
    """Open the Train page's settings and type the epochs of each phase."""
    page.get_by_text("Training settings").click()
    for label, value in (("Head epochs", head), ("Fine-tune epochs", finetune)):
        field = page.get_by_label(label, exact=True)
        if field.input_value() != str(value):
            field.fill(str(value))
            _rerun(page, lambda field=field: field.press("Enter"))


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


CAMERA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]  # Chromium's test camera


@contextlib.contextmanager
def chromium_page(playwright, name: str, camera: bool = False):
    """A new page in a new Chromium; if the test fails, a screenshot of the page as it was (`FAILED-NAME.png`)."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS + (CAMERA if camera else []))
    page = _new_page(browser, permissions=["camera"] if camera else [])
    try:
        yield page
    except BaseException:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(ARTIFACTS / f"FAILED-{name}.png"), full_page=True)
        raise
    finally:
        browser.close()


def _dataset(run_id: str) -> dict:
    """The photos a run uses (its `dataset.json`), once it has written them."""
    from core.runs.directory import runs_root

    try:
        return json.loads((runs_root() / run_id / "dataset.json").read_text())
    except (OSError, ValueError):
        return {}


def _splits(run_id: str) -> dict[str, str]:
    """Each photo's class in a run's `splits.csv`, once it has written it."""
    import csv

    from core.runs.directory import runs_root

    try:
        with (runs_root() / run_id / "splits.csv").open(newline="") as rows:
            return {row["path"]: row["label"] for row in csv.DictReader(rows)}
    except OSError:
        return {}


def _run_in_url(page) -> str:
    """The run in the address bar, read in the page (Playwright's `page.url` misses history.pushState here)."""
    query = parse_qs(urlparse(page.evaluate("location.href")).query)
    return query.get("run", [""])[0]


def _state(area, state: str):
    """The run's heading once it says `state` ("Circle, square, ... · 2 Dec 19:40: Training")."""
    return area.get_by_role("heading", name=re.compile(f": {state}$"))


def _take_photo(area, done) -> None:
    """Take photos with the camera in `area` until `done()`: a click before Chromium's test camera streams
    is lost, and a rerun that redraws the camera shows it live again."""

    def attempt() -> bool:
        if done():
            return True
        take = area.get_by_role("button", name="Take Photo")
        if take.count() and take.is_enabled():
            take.click()
        return False

    wait_until(attempt, 90, "a photo from Chromium's test camera", 2.0)


def _go(page, name: str) -> None:
    """Click a page in the sidebar's navigation and wait for it."""
    page.get_by_test_id("stSidebar").get_by_role("link", name=name, exact=True).click()
    _settle(page)


@needs_shared_weights
def test_main_flow_in_chromium(server, isolated_workspace):
    """Data, Model, Train, Evaluate on the demo, following the same run on every page and in every URL."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    # One star filed with the circles, as a person's photos often have: the review should find it, and once it is
    # moved back, the next run should train on it as a star. (It falls in the training photos, so the test
    # photos, and their count below, are the demo's own.)
    demo = ensure_demo_dataset(isolated_workspace / "data" / "demo")
    planted = demo / "circle" / "star_000.png"
    (demo / "star" / "star_000.png").rename(planted)
    expect.set_options(timeout=60_000)  # the first page that imports TensorFlow takes a few seconds on 2 cores
    with sync_playwright() as playwright, chromium_page(playwright, "main-flow", camera=True) as page:
        page.goto(server)
        _settle(page)
        expect(page.get_by_text("Where to start")).to_be_visible()
        _shot(page, "0-home")
        for name, sign, shot in (
            ("Data", "Usable photos", "1-data"),
            ("Model", "Weights trained in phase 2", "2-model"),
        ):
            _go(page, name)
            expect(page.get_by_text(sign)).to_be_visible()
            _shot(page, shot)
        _go(page, "Evaluate")
        expect(page.get_by_text("No run yet")).to_be_visible()
        _shot(page, "4-evaluate-empty")

        _go(page, "Train")
        _shot(page, "3-train-empty")
        _set_epochs(page, 2, 2)
        page.get_by_role("button", name="Start training").click()
        main_area = page.get_by_test_id("stMainBlockContainer")
        title = "Circle, square, star and triangle · MobileNetV2"
        expect(main_area.get_by_role("heading", name=title)).to_be_visible()
        first_id = wait_until(lambda: _run_in_url(page), 30, "the new run in the address bar")
        wait_until(lambda: _status(first_id).get("epoch"), 120, "the first epoch")
        page.reload()  # a reload finds the same run, still live
        _settle(page)
        assert _run_in_url(page) == first_id
        expect(_state(main_area, "Training")).to_be_visible()
        _shot(page, "3-train-live")
        expect(_state(main_area, "Finished")).to_be_visible(timeout=240_000)
        # The page around the live panel follows: no "still training" left, Start offered again.
        expect(main_area.get_by_text("is still training")).to_have_count(0)
        expect(page.get_by_role("button", name="Start training")).to_be_enabled()
        # The list is live. Its grid is drawn on a canvas; the cells' text lives in the canvas's
        # accessible table, which has no box on screen of its own, so it is read, not "seen".
        runs_row = main_area.get_by_test_id("stDataFrame").last.locator('[role="row"]').filter(has_text=title)
        expect(runs_row.locator('[role="gridcell"]').nth(1)).to_have_text("Finished")
        _shot(page, "3-train-done")

        page.get_by_role("link", name="Next: see how good it is").click()
        _settle(page)
        assert _run_in_url(page) == first_id  # the link keeps the run
        expect(page.get_by_text("Class by class")).to_be_visible()
        _shot(page, "4-evaluate")
        page.locator(".st-key-make_tflite button").click()  # made as a task, checked, then offered
        download = page.locator(".st-key-download_tflite button")
        expect(download).to_be_visible(timeout=180_000)
        expect(main_area.get_by_text("Same answer as the Keras model on 100.0% of 36 test photos")).to_be_visible()
        download.scroll_into_view_if_needed()
        _shot(page, "4-evaluate-export")

        def downloaded():  # the file is made when clicked, so a busy machine can take a moment
            try:
                with page.expect_download(timeout=60_000) as started:  # a click again cancels one being made
                    download.click()
                return started.value.path()
            except PlaywrightTimeout:
                return None

        with zipfile.ZipFile(wait_until(downloaded, 240, "the LiteRT zip to download", 0.5)) as archive:
            assert {"tflite/model.tflite", "tflite/MODEL_CARD.md"} <= set(archive.namelist())
            assert "circle" in archive.read("tflite/MODEL_CARD.md").decode()

        # What it looked at: the mistakes as heatmaps, the photo review, and a photo from the webcam.
        page.locator(".st-key-mistake_view").get_by_text("Heatmap of its answer").click()
        expect(main_area.get_by_text("pushed the model towards that class")).to_be_visible(timeout=120_000)
        main_area.get_by_text("pushed the model towards that class").scroll_into_view_if_needed()
        _shot(page, "4-evaluate-heatmaps")
        page.locator(".st-key-review_on label").click()
        expect(main_area.get_by_text("No decisions yet")).to_be_visible(timeout=120_000)
        expect(main_area.get_by_text(re.compile(r"^\d+ photos judged by the pretrained MobileNetV2"))).to_be_visible()
        flagged = page.locator(".st-key-review_" + hashlib.sha1(str(planted.resolve()).encode()).hexdigest()[:12])
        expect(flagged).to_be_visible()  # the planted star is among the photos shown, said to look like a star
        expect(main_area.get_by_text("training · labelled circle · the other photos suggest star")).to_be_visible()
        flagged.scroll_into_view_if_needed()
        _shot(page, "4-evaluate-review")
        flagged.get_by_test_id("stSelectbox").click()
        _rerun(page, lambda: page.get_by_role("option", name="Move to star").click())
        expect(main_area.get_by_text("Decided so far: 1 photo moved to another class")).to_be_visible()
        main_area.get_by_text("Near-copies", exact=True).scroll_into_view_if_needed()
        _shot(page, "4-evaluate-review-near-copies")
        page.locator(".st-key-collect_on label").click()  # what to collect next: the curves and the words
        words = main_area.get_by_text(re.compile(r"(levelled off|would probably help|still improving slowly)")).first
        expect(words).to_be_visible(timeout=120_000)
        words.scroll_into_view_if_needed()
        _shot(page, "4-evaluate-collect")
        page.locator(".st-key-try_source").get_by_text("The webcam").click()
        _take_photo(main_area, lambda: main_area.get_by_role("button", name="Clear photo").count())
        answer = main_area.get_by_text(re.compile(r"^(circle|square|star|triangle): \d+%$")).first
        expect(answer).to_be_visible(timeout=120_000)
        answer.scroll_into_view_if_needed()
        _shot(page, "4-evaluate-webcam")
        page.locator(".st-key-try_heat label").click()  # where it looked, by the same method as the mistakes
        expect(
            main_area.get_by_text(re.compile(r"^Made by Grad-CAM at the network's last layer, sharpened"))
        ).to_have_count(2)
        page.locator(".st-key-try_heat").scroll_into_view_if_needed()
        _shot(page, "4-evaluate-webcam-heatmap")

        # Photos without labels: the run's model suggests a class for each; added, the next run trains on them.
        _go(page, "Data")
        unsorted = isolated_workspace / "unsorted-photos"
        unsorted.mkdir()
        rng = np.random.default_rng(7)
        for k, shape in enumerate(("circle", "circle", "square")):
            draw_shape(shape, rng, 128).save(unsorted / f"new_{k}.png")
        uploader = page.locator(".st-key-unsorted_upload [data-testid='stFileUploaderDropzoneInput']")
        uploader.set_input_files([str(path) for path in sorted(unsorted.iterdir())])
        add_all = main_area.get_by_role("button", name=re.compile(r"^Add (all \d+|the photo) as "))
        expect(add_all.first).to_be_visible(timeout=120_000)
        add_all.first.scroll_into_view_if_needed()
        _shot(page, "1-data-unsorted")

        def all_added() -> bool:  # each group at once; the page redraws after each click
            if main_area.get_by_text(re.compile(r"3 photos without labels added")).count():
                return True
            if add_all.count():
                _rerun(page, lambda: add_all.first.click())
            return False

        wait_until(all_added, 120, "every suggested photo added", 1.0)
        _shot(page, "1-data-unsorted-added")

        _go(page, "Train")
        _set_epochs(page, 40, 2)  # a second run, long enough to look at while it trains
        page.get_by_role("button", name="Start training").click()
        second_id = wait_until(lambda: _run_in_url(page) not in ("", first_id) and _run_in_url(page), 30, "run 2")
        used = wait_until(lambda: _dataset(second_id).get("decisions"), 120, "the second run's photos")
        assert sorted(Path(d["path"]).name for d in used if d["action"] == "add") == [
            "new_0.png",
            "new_1.png",
            "new_2.png",
        ]
        assert [(d["path"], d["to"]) for d in used if d["action"] == "move"] == [("circle/star_000.png", "star")]
        splits = wait_until(lambda: _splits(second_id), 120, "the second run's splits")
        assert splits[str(planted.resolve())] == "star"  # moved back: it trains as a star
        wait_until(
            lambda: _status(second_id).get("stage") == "head" and _status(second_id).get("epoch"), 120, "training"
        )

        _go(page, "Evaluate")  # mid-run: this run, said to be training, never the finished one silently
        assert _run_in_url(page) == second_id
        expect(main_area.get_by_text("is still training")).to_be_visible()
        expect(page.get_by_role("button", name=f"Show the last finished run instead: {title}")).to_be_visible()
        assert main_area.get_by_text("Class by class").count() == 0
        _shot(page, "4-evaluate-while-training")
        for name in ("Home", "Data", "Model", "Train"):
            _go(page, name)
            assert _run_in_url(page) == second_id, name
        expect(_state(main_area, "Training")).to_be_visible()
        page.get_by_role("button", name="Stop", exact=True).click()
        expect(_state(main_area, "Stopped")).to_be_visible(timeout=120_000)
        _shot(page, "3-train-stopped")
        _go(page, "Evaluate")
        assert _run_in_url(page) == second_id
        expect(page.get_by_text("This run was stopped before its end")).to_be_visible()
        assert page.locator('[data-testid="stException"]').count() == 0


NAN_MESSAGE = "The loss became NaN (not a number) in phase 1: training diverged. Try a learning rate 10 times lower."


@needs_shared_weights
def test_start_is_refused_with_the_reason_and_a_double_click_starts_one_run(isolated_workspace, make_dataset, tmp_path):
    """Missing weights offline, zero epochs, one usable class: Start waits, saying why and what to do."""

    from playwright.sync_api import expect, sync_playwright

    from core.network.config import RunConfig
    from core.runs.directory import RunDirectory, list_runs, runs_root
    from core.runs.status import RunState, Stage

    photos = make_dataset({"red": 6})
    junk = tmp_path / "one class.zip"
    with zipfile.ZipFile(junk, "w") as zf:
        for path in photos.rglob("*.png"):
            zf.write(path, f"photos/red/{path.name}")
        zf.writestr("photos/green/readme.txt", "no photos here")
    process, url, _ = start_dashboard({**_server_env(), "STUDIO_OFFLINE": "1"}, isolated_workspace / "server.log")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = _new_page(browser)
            main_area = page.get_by_test_id("stMainBlockContainer")
            page.goto(f"{url}/model")
            _settle(page)
            _choose(page, "Pretrained network", "EfficientNetB0")
            _go(page, "Train")
            start = page.get_by_role("button", name="Start training")
            expect(start).to_be_disabled()
            expect(main_area.get_by_text("EfficientNetB0 needs its ImageNet weights")).to_be_visible()
            expect(
                main_area.get_by_text("Choose a network that is ready on this machine (MobileNetV2 (width 0.35)")
            ).to_be_visible()
            expect(main_area.get_by_text("For administrators", exact=True)).to_be_visible()
            _shot(page, "3-train-start-refused-weights")

            _go(page, "Model")
            _choose(page, "Pretrained network", "MobileNetV2 (width 0.5)")
            _go(page, "Train")
            _set_epochs(page, 0, 0)
            expect(start).to_be_disabled()
            expect(
                main_area.get_by_text("Head epochs and fine-tune epochs are both 0: nothing would train.")
            ).to_be_visible()
            _shot(page, "3-train-start-refused-epochs")

            _go(page, "Data")
            page.get_by_text("Upload a zip").click()
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(junk))
            expect(main_area.get_by_text("A classifier needs at least 2 classes")).to_be_visible()
            _go(page, "Train")
            expect(start).to_be_disabled()
            expect(main_area.get_by_text("A classifier needs at least 2 classes")).to_be_visible()

            _go(page, "Data")
            page.get_by_text("Built-in demo").click()
            expect(main_area.get_by_text("Pictures of circles, squares")).to_be_visible()
            _go(page, "Train")
            _set_epochs(page, 1, 0)
            try:
                expect(start).to_be_enabled()
            except AssertionError:
                _shot(page, "FAILED-start-disabled")  # what the page said instead
                raise
            start.dblclick()
            wait_until(lambda: _run_in_url(page), 30, "the run in the address bar")
            _settle(page)
            # Straight after, Start waits for a deliberate choice, saying why, instead of queueing a duplicate.
            expect(main_area.get_by_text("is still training", exact=False).first).to_be_visible()
            expect(start).to_be_disabled()
            expect(main_area.get_by_text("Start another run while")).to_be_visible()
            _shot(page, "3-train-start-while-training")
            assert len(list_runs()) == 1, [r.id for r in list_runs()]

            failed = RunDirectory.create(runs_root(), RunConfig(), title="A run that failed")
            failed.update_status(state=RunState.FAILED, stage=Stage.DONE, message=NAN_MESSAGE, bad_input=False)
            page.goto(f"{url}/train?run={failed.id}")
            _settle(page)
            expect(_state(main_area, "Failed")).to_be_visible()
            expect(main_area.get_by_test_id("stAlertContentError").get_by_text(NAN_MESSAGE)).to_be_visible()
            _shot(page, "3-train-failed")
            _go(page, "Evaluate")
            expect(main_area.get_by_text("has no results")).to_be_visible()
            _shot(page, "4-evaluate-failed")
            assert page.locator('[data-testid="stException"]').count() == 0
            browser.close()
    finally:
        stop_dashboard(process)


# Records, from before the page's own scripts run, every navigation label and page title the
# browser ever shows, so a flash of the wrong screen (a raw file list, say) cannot go unseen.
RECORD_EVERY_PAINT = """
window.__seen = {nav: new Set(), titles: new Set()};
new MutationObserver(() => {
  document.querySelectorAll('[data-testid="stSidebarNav"] a, [data-testid="stSidebar"] a').forEach(a => {
    const label = a.cloneNode(true);
    label.querySelectorAll('[data-testid="stIconMaterial"]').forEach(icon => icon.remove());
    window.__seen.nav.add(label.textContent.trim());
  });
  document.querySelectorAll('h1').forEach(h => window.__seen.titles.add(h.textContent.trim()));
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


PAGE_TITLES = [
    ("", "Fine-Tune Studio"),
    ("data", "1. Data"),
    ("model", "2. Model"),
    ("train", "3. Train"),
    ("evaluate", "4. Evaluate"),
    ("runs", "Runs"),
]  # each page's address and heading


@pytest.mark.parametrize("path, title", PAGE_TITLES)
def test_the_first_request_to_a_fresh_server_shows_the_app_from_its_first_paint(isolated_workspace, path, title):
    """No raw file list, even for a moment: Streamlit's legacy `pages/` folder mode is out of the way."""
    from playwright.sync_api import expect, sync_playwright

    process, url, _ = start_dashboard(_server_env(), isolated_workspace / "server.log")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = _new_page(browser)
            page.add_init_script(RECORD_EVERY_PAINT)
            page.goto(f"{url}/{path}")
            expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Your project")).to_be_visible()
            # Streamlit loads the code that draws a page link on first use, just after the first paint.
            expect(page.get_by_test_id("stSidebar").get_by_role("link", name="Evaluate")).to_be_visible()
            seen = page.evaluate("({nav: [...window.__seen.nav], titles: [...window.__seen.titles]})")
            assert set(seen["nav"]) == {title for _, title, _ in PAGES}, seen
            assert seen["titles"] == [title], seen
            _shot(page, f"0-first-paint-{path or 'home'}")
            browser.close()
    finally:
        stop_dashboard(process)


def test_uploading_a_zip_of_photos(server, make_dataset, tmp_path):

    from playwright.sync_api import expect, sync_playwright

    photos = make_dataset({"red": 5, "green": 4})
    archive = tmp_path / "my photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in photos.rglob("*.png"):
            zf.write(path, f"my photos/{path.parent.name}/{path.name}")
        zf.writestr("my photos/red/notes.txt", "not a photo")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = _new_page(browser)
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


@needs_shared_weights
def test_a_run_survives_a_server_restart_and_the_page_reattaches(isolated_workspace):
    """The server is killed (SIGKILL) mid-run: the worker goes on, and a new server shows the same live run."""
    import signal

    import psutil
    from playwright.sync_api import expect, sync_playwright

    from core.runs.directory import runs_root

    env = _server_env()
    process, url, _ = start_dashboard(env, isolated_workspace / "server.log")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = _new_page(browser)
            page.goto(f"{url}/train")
            _settle(page)
            _set_epochs(page, 12, 2)
            page.get_by_role("button", name="Start training").click()
            main_area = page.get_by_test_id("stMainBlockContainer")
            expect(_state(main_area, "Training")).to_be_visible(timeout=60_000)
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
            expect(main_area.get_by_role("heading", name="Circle, square, star and triangle")).to_be_visible()
            assert _run_in_url(page) == run_id
            expect(_state(main_area, "Training")).to_be_visible()
            _shot(page, "5-train-after-server-restart")
            expect(_state(main_area, "Finished")).to_be_visible(timeout=300_000)
            assert json.loads(status_path.read_text())["state"] == "succeeded"
            assert page.locator('[data-testid="stException"]').count() == 0
            browser.close()
    finally:
        stop_dashboard(process)


def test_a_dataset_made_with_the_webcam(server, isolated_workspace):
    """Teachable Machine's flow: name the classes, take photos of each, and the counts follow."""
    from playwright.sync_api import expect, sync_playwright

    from core.data.collect import classes_of, made_folder

    expect.set_options(timeout=60_000)
    with sync_playwright() as playwright, chromium_page(playwright, "webcam", camera=True) as page:
        main_area = page.get_by_test_id("stMainBlockContainer")
        page.goto(f"{server}/data")
        _settle(page)
        page.get_by_text("Make one here").click()
        expect(main_area.get_by_text("Add the first class")).to_be_visible()
        for name in ("cat", "dog"):
            page.get_by_label("New class").fill(name)
            page.get_by_label("New class").press("Enter")
            page.get_by_role("button", name="Add class").click()
            expect(page.get_by_role("tab", name=f"{name} (0)")).to_be_visible()
        for name, shots in (("cat", 2), ("dog", 1)):
            page.get_by_role("tab", name=re.compile(f"^{name} ")).click()
            panel = page.get_by_role("tabpanel").filter(has_text=f"Take a photo of {name}")
            for taken in range(1, shots + 1):
                clear = panel.get_by_role("button", name="Clear photo")
                if clear.count():
                    clear.click()
                _take_photo(panel, lambda n=name, k=taken: page.get_by_role("tab", name=f"{n} ({k})").count())
        page.get_by_role("tab", name="cat (2)").scroll_into_view_if_needed()
        _shot(page, "1-data-webcam")
        expect(main_area.get_by_text("Usable photos")).to_be_visible()
        main_area.get_by_text("Samples").scroll_into_view_if_needed()
        _shot(page, "1-data-webcam-samples")
        # The summary follows the photos (Chromium's test camera shows nearly the same frame each time, so
        # one of the two cat photos can be left out as a copy: the page says which and why).
        expect(main_area.get_by_test_id("stMetricValue").first).to_have_text(re.compile("^[23]$"))
        assert classes_of(made_folder("my-photos")) == {"cat": 2, "dog": 1}
        assert page.locator('[data-testid="stException"]').count() == 0
