"""How fast the dashboard answers a person, measured in real Chromium.

Prints: seconds from `streamlit run` to the server being ready and to the first page being
interactive; the time each navigation click takes to show its page while a run trains; and
the wall time of the whole demo flow with default settings (Start pressed to "Finished").

    .venv/bin/python bench/dashboard_timing.py            # uses ../shared/weights when present

Runs in a temporary workspace; nothing is written to the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.dashboard_server import start_dashboard, stop_dashboard  # noqa: E402

SHARED = Path(os.environ.get("STUDIO_SHARED", REPO.parent / "shared"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def start_server(workspace: Path) -> tuple[subprocess.Popen, str, float]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_HOME=str(workspace / "keras"))
    for name in ("RUNS", "DATA", "CACHE"):
        env[f"STUDIO_{name}"] = str(workspace / name.lower())
    if (SHARED / "weights").is_dir():
        env["STUDIO_WEIGHTS_DIRS"] = str(SHARED / "weights")
    return start_dashboard(env, workspace / "server.log")


def timed(action, check) -> float:
    started = time.perf_counter()
    action()
    check()
    return time.perf_counter() - started


def main() -> None:
    from playwright.sync_api import expect, sync_playwright

    workspace = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    process, url, ready = start_server(workspace)
    rows: list[tuple[str, float]] = [("server ready after `streamlit run`", ready)]
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            expect.set_options(timeout=300_000)
            rows.append(
                (
                    "first page interactive (Home link clickable)",
                    timed(
                        lambda: page.goto(url),
                        lambda: expect(page.get_by_role("link", name="1. Data")).to_be_visible(),
                    ),
                )
            )
            page.get_by_role("link", name="Train").first.click()
            expect(page.get_by_role("button", name="Start training")).to_be_enabled()
            flow_started = time.perf_counter()
            page.get_by_role("button", name="Start training").click()
            main_area = page.get_by_test_id("stMainBlockContainer")
            expect(main_area.get_by_text(": Training")).to_be_visible(timeout=60_000)
            for name, heading in (
                ("Data", "1. Data"),
                ("Model", "2. Model"),
                ("Evaluate", "4. Evaluate"),
                ("Train", "3. Train"),
                ("Home", "Fine-Tune Studio"),
            ):
                seconds = timed(
                    lambda name=name: page.get_by_role("link", name=name, exact=True).first.click(),
                    lambda heading=heading: expect(page.get_by_role("heading", name=heading)).to_be_visible(),
                )
                rows.append((f"click '{name}' while training: page shown", seconds))
            page.get_by_role("link", name="Train").first.click()
            expect(main_area.get_by_text(": Finished")).to_be_visible()
            rows.append(("demo flow, default settings: Start to Finished", time.perf_counter() - flow_started))
            browser.close()
    finally:
        stop_dashboard(process)
        shutil.rmtree(workspace, ignore_errors=True)
    width = max(len(label) for label, _ in rows)
    print(f"{'measurement':<{width}}  seconds")
    for label, seconds in rows:
        print(f"{label:<{width}}  {seconds:7.2f}")
    print(
        f"(weights: {'../shared/weights' if (SHARED / 'weights').is_dir() else 'Keras cache or download'}; "
        f"{os.cpu_count()} CPU cores)"
    )


if __name__ == "__main__":
    main()
