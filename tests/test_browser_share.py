"""Sharing and comparing in real Chromium: the Runs page, the report opened offline, read-only links, the door.

Two tiny runs are trained once for the file (random weights, 32 px) and copied into each test's
workspace. Screenshots go to `test-artifacts/`.
"""

import contextlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.data.uploads import tried_photos_home
from core.runs.directory import runs_root
from core.sharing import links as sharing
from tests.conftest import REPO, make_photos
from tests.dashboard_server import start_dashboard, stop_dashboard
from tests.test_browser import CHROMIUM, PAGE_TITLES, _server_env, _settle, _shot, chromium_page
from tests.test_cli import TINY
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"),
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Two finished runs of the same photos, differing in their batch size."""
    root = tmp_path_factory.mktemp("trained")
    photos = make_photos(root / "photos", {"red": 10, "green": 10})
    for name, batch in (("small-steps", "4"), ("big-steps", "8")):
        env = dict(os.environ, PYTHONPATH=str(REPO), STUDIO_DATA=str(root / "data"), TF_CPP_MIN_LOG_LEVEL="3")
        args = [*TINY, "--batch-size", batch, "--head-epochs", "2", "--name", name]
        command = [sys.executable, "-m", "core", "train", "--data", str(photos), *args, "--out", str(root / name)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def server_with_runs(trained, isolated_workspace):
    for name in ("small-steps", "big-steps"):
        shutil.copytree(trained / name, runs_root() / name)
    process, url, _ = start_dashboard(_server_env(), isolated_workspace / "server.log")
    yield url
    stop_dashboard(process)


@contextlib.contextmanager
def _sharing_server(trained: Path, workspace: Path, **env):
    """A dashboard holding one run, "small-steps", and a read-only link to it: its address and the link's token."""
    shutil.copytree(trained / "small-steps", runs_root() / "small-steps")
    token = sharing.make_link("small-steps")
    process, url, _ = start_dashboard(dict(_server_env(), **env), workspace / "server.log")
    try:
        yield url, token
    finally:
        stop_dashboard(process)


def _refuse_outside(page) -> list[str]:
    """Refuse every request `page` makes to a server other than this one; the list of those it made."""
    outside = []
    local = re.compile(r"^(https?|wss?)://127\.0\.0\.1:\d+/|^(data|blob|about):")

    def refuse(route):
        if local.match(route.request.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", refuse)
    return outside


def _tick_rows(page, rows: list[int]) -> None:
    """Tick rows of the runs table: its grid is a canvas, so the row's checkbox is clicked where it is drawn."""
    grid = page.locator(".st-key-runs_table [data-testid='stDataFrameResizable']")
    box = grid.bounding_box()
    for row in rows:
        page.mouse.click(box["x"] + 15, box["y"] + 35 * (row + 1) + 17)
        _settle(page)


def _download(page, button, folder: Path) -> Path:
    """Click a download button and keep the file under the name the page gave it, in `folder` (the file is
    made when clicked, so a busy machine may take a moment)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    def attempt():
        try:
            with page.expect_download(timeout=20_000) as started:
                button.click()
        except PlaywrightTimeout:
            return None
        path = folder / started.value.suggested_filename
        started.value.save_as(path)
        return path

    return wait_until(attempt, 120, "a download", 0.5)


def test_compare_two_runs_and_open_a_run_kept_as_a_file(server_with_runs, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)
    with sync_playwright() as playwright, chromium_page(playwright, "runs-compare") as page:
        page.goto(f"{server_with_runs}/runs")
        _settle(page)
        main = page.get_by_test_id("stMainBlockContainer")
        table = main.locator(".st-key-runs_table")
        expect(table.locator('[role="row"]').filter(has_text="small-steps")).to_have_count(1)
        _tick_rows(page, [0, 1])
        expect(main.get_by_role("heading", name="Comparing 2 runs")).to_be_visible()
        expect(main.get_by_text("Settings (2 differ, highlighted)")).to_be_visible()  # the batch size and the name
        expect(main.locator(".js-plotly-plot")).to_have_count(4)  # curves, classes, two confusion matrices
        # Both were tested on the same photos: whether the difference is more than chance (McNemar's exact test).
        expect(
            main.get_by_text(
                re.compile(r"(happens by chance (\d+%|less than 1%) of the time|same right and wrong answers)")
            )
        ).to_be_visible()
        main.get_by_role("heading", name="Comparing 2 runs").scroll_into_view_if_needed()
        _shot(page, "5-runs-compare")

        _tick_rows(page, [1])  # one run: keep it as a file, then open that file as a new run
        kept = _download(page, main.get_by_role("button", name="Keep this run as a file"), tmp_path)
        assert kept.name == "big-steps.studio.zip"
        expect(main.get_by_text("Downloaded big-steps.studio.zip: its settings, history")).to_be_visible()  # said
        main.get_by_text("Open a run kept as a file").click()
        main.locator(".st-key-run_file input[type=file]").set_input_files(str(kept))
        main.get_by_role("button", name="Open it").click()
        _settle(page)
        expect(main.get_by_text("It is in the table below, with its results.")).to_be_visible()
        expect(table.locator('[role="row"]').filter(has_text="(opened from a file)")).to_have_count(1)
        assert page.locator('[data-testid="stException"]').count() == 0


def test_the_report_opens_offline_with_every_chart_drawn(server_with_runs, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)
    with sync_playwright() as playwright, chromium_page(playwright, "report") as page:
        page.goto(f"{server_with_runs}/evaluate?run=small-steps")
        _settle(page)
        report = _download(page, page.get_by_role("button", name="Download the report (HTML)"), tmp_path)
        assert report.name == "small-steps - report.html"
        browser = page.context.browser
        offline = browser.new_context(offline=True, viewport={"width": 1100, "height": 900})
        requests = []
        offline.on("request", lambda request: requests.append(request.url))
        viewer = offline.new_page()
        viewer.goto(report.as_uri())
        viewer.wait_for_function(
            "document.querySelectorAll('.js-plotly-plot').length === 3 && "
            "[...document.querySelectorAll('.js-plotly-plot')].every(p => p.querySelector('.main-svg .trace, .main-svg .hm image'))",
            timeout=30_000,
        )
        assert [url for url in requests if not url.startswith(("file:", "data:"))] == []
        expect(viewer.get_by_role("heading", name="How good it is")).to_be_visible()
        viewer.screenshot(path=str(REPO / "test-artifacts" / "6-report.png"), full_page=True)
        viewer.emulate_media(media="print")
        viewer.screenshot(path=str(REPO / "test-artifacts" / "6-report-print.png"), full_page=True)
        pdf = viewer.pdf(format="A4")  # printing from the browser gives pages, not an error
        assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 2
        offline.close()


def test_a_read_only_link_shows_one_run_and_can_be_turned_off(server_with_runs):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)
    with sync_playwright() as playwright, chromium_page(playwright, "share") as page:
        page.goto(f"{server_with_runs}/evaluate?run=small-steps")
        _settle(page)
        page.get_by_role("button", name="Make a read-only link").click()
        _settle(page)
        link = page.get_by_test_id("stCode").inner_text().strip().replace("\n", "")
        assert "?share=" in link
        visitor = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})
        visitor.goto(link)
        _settle(visitor)
        expect(visitor.get_by_role("heading", name="small-steps")).to_be_visible()
        expect(visitor.get_by_text("Shared with you from Fine-Tune Studio (read-only)")).to_be_visible()
        assert visitor.get_by_test_id("stSidebar").count() == 0
        assert visitor.get_by_role("button", name="Start training").count() == 0
        _shot(visitor, "7-shared-run")
        junk = {"name": "big.jpg", "mimeType": "image/jpeg", "buffer": os.urandom(3 * 2**20)}
        visitor.locator("input[type=file]").set_input_files([junk])
        expect(visitor.get_by_text("big.jpg: not a photo this tool can read, so it was not kept.")).to_be_visible()
        assert not [p for p in tried_photos_home().rglob("*") if p.is_file()]  # nothing of it kept

        token = link.split("share=", 1)[1]
        visitor.goto(f"{server_with_runs}/train?share={token}&run=big-steps")  # another page, another run
        _settle(visitor)
        expect(visitor.get_by_role("heading", name="small-steps")).to_be_visible()
        assert visitor.get_by_text("big-steps").count() == 0 and visitor.get_by_text("Page not found").count() == 0
        visitor.goto(f"{server_with_runs}/?share={token[:-3]}abc")  # altered
        _settle(visitor)
        expect(visitor.get_by_text("This share link is not valid")).to_be_visible()

        page.get_by_role("button", name="Turn off").click()
        expect(page.get_by_role("button", name="Turn off")).to_have_count(0)  # turned off, and said so
        visitor.goto(link)
        _settle(visitor)
        expect(visitor.get_by_text("was turned off by the person who shared it")).to_be_visible()
        _shot(visitor, "7-shared-run-turned-off")


def test_a_password_closes_the_dashboard_and_signing_in_lasts(trained, isolated_workspace):
    """Signed in once, a reload and a new tab stay in; a read-only link stripped of `share` asks for the password;
    Sign out ends it, reload included."""
    from playwright.sync_api import expect, sync_playwright

    with (
        _sharing_server(trained, isolated_workspace, STUDIO_PASSWORD="correct horse") as (url, token),
        sync_playwright() as playwright,
        chromium_page(playwright, "sign-in") as first,
    ):
        page = first.context.browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()  # tabs
        page.goto(f"{url}/?share={token}")
        _settle(page)
        expect(page.get_by_role("heading", name="small-steps")).to_be_visible()  # the link needs no password
        for stripped in (f"{url}/", f"{url}/runs?run=small-steps", f"{url}/evaluate?shared={token}"):
            page.goto(stripped)
            _settle(page)
            expect(page.get_by_text("This dashboard is private")).to_be_visible()
            assert page.get_by_role("button", name="Delete").count() == 0
            assert page.get_by_role("link", name="Train").count() == 0
        page.goto(f"{url}/train")
        _settle(page)
        page.get_by_label("Password", exact=True).fill("correct hors")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("That password is not right")).to_be_visible()
        _shot(page, "8-sign-in-refused")
        page.get_by_label("Password", exact=True).fill("correct horse")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="3. Train")).to_be_visible()  # where the address pointed
        wait_until(lambda: any(c["name"] == "studio_session" for c in page.context.cookies()), 30, "the cookie")
        page.reload()
        _settle(page)
        expect(page.get_by_role("heading", name="3. Train")).to_be_visible()  # a reload keeps you in
        other = page.context.new_page()
        other.goto(f"{url}/runs")
        _settle(other)
        expect(other.get_by_role("button", name="Sign out")).to_be_visible()  # so does a new tab
        _shot(other, "8-signed-in-new-tab")
        stale = next(c for c in page.context.cookies() if c["name"] == "studio_session")
        sign_out = other.get_by_role("button", name="Sign out")

        def signed_out() -> bool:  # a click made while a busy page redraws can be lost: click again until it lands
            if other.get_by_text("This dashboard is private").count():
                return True
            if sign_out.count() and sign_out.is_enabled():
                sign_out.click()
            return False

        try:
            wait_until(signed_out, 25, "the sign-in page after Sign out", 3.0)
            redrawn = True
        except AssertionError:
            # Once in a loaded full suite the server signed the session out (signed-out.json was written) but the
            # tab did not redraw. Kept for diagnosis; the promise itself is checked on a reload.
            _shot(other, "STUCK-sign-out")
            redrawn = False
            other.reload()
            _settle(other)
            expect(other.get_by_text("This dashboard is private")).to_be_visible()
        if redrawn:  # the tab that signed out made its browser forget the cookie
            wait_until(lambda: not any(c["name"] == "studio_session" for c in other.context.cookies()), 30, "no cookie")
        page.context.add_cookies([stale])  # a copied cookie of a signed-out session is refused too
        page.reload()
        _settle(page)
        expect(page.get_by_text("This dashboard is private")).to_be_visible()


def test_another_computer_gets_a_link_s_run_and_nothing_more_without_a_password(trained, isolated_workspace):
    """With no password, a visitor from another address (here: any address but a documentation-only one counts as
    another computer) sees a read-only link's run; stripped of `share`, the closed door, with no request leaving the
    server."""
    from playwright.sync_api import expect, sync_playwright

    with (
        _sharing_server(trained, isolated_workspace, STUDIO_OWNER_ADDRESSES="192.0.2.1") as (url, token),
        sync_playwright() as playwright,
        chromium_page(playwright, "closed") as page,
    ):
        outside = _refuse_outside(page)
        page.goto(f"{url}/evaluate?share={token}")
        _settle(page)
        expect(page.get_by_role("heading", name="small-steps")).to_be_visible()
        for stripped in (f"{url}/", f"{url}/train", f"{url}/runs?run=small-steps"):
            page.goto(stripped)
            _settle(page)
            expect(page.get_by_text("This dashboard is open only on the computer it runs on")).to_be_visible()
            assert page.get_by_test_id("stSidebar").count() == 0
            assert page.get_by_text("big-steps").count() == 0 and page.get_by_role("button").count() == 0
        _shot(page, "8-closed-to-other-computers")
        assert outside == [], f"pages asked servers other than this one: {outside}"


def test_every_page_asks_this_server_only(server_with_runs):
    """Each page of the dashboard loads, its tab icon included, with every request to another server refused."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright, chromium_page(playwright, "offline-pages") as page:
        outside = _refuse_outside(page)
        for path, heading in PAGE_TITLES:
            page.goto(f"{server_with_runs}/{path}?run=small-steps")
            _settle(page)
            expect(page.get_by_role("heading", name=heading).first).to_be_visible()
        assert outside == [], f"pages asked servers other than this one: {outside}"
        sign = "() => { const s = getComputedStyle(document.body, '::after'); return [s.content, s.opacity]; }"
        assert page.evaluate(sign)[0] == "none"  # nothing redrawing: no sign
        page.evaluate("document.querySelector('[data-testid=stElementContainer]').setAttribute('data-stale', 'true')")
        wait_until(lambda: page.evaluate(sign) == ['"Working…"', "1"], 10, "the working sign, a second into a redraw")
