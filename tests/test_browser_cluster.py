"""A run sent to a Ray cluster, in real Chromium: the dashboard says where runs go, and follows one to the end."""

import socket

import pytest

from tests.conftest import needs_shared_weights
from tests.dashboard_server import start_dashboard, stop_dashboard
from tests.test_browser import CHROMIUM, _server_env, _settle, _shot, _state, chromium_page

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -r requirements-cluster.txt)")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"),
]


@pytest.fixture
def dashboard_on_a_cluster(isolated_workspace):
    context = ray.init(
        num_cpus=2, num_gpus=0, include_dashboard=False, object_store_memory=80 * 1024 * 1024, log_to_driver=False
    )
    address = context.address_info["gcs_address"]
    env = _server_env() | {"STUDIO_RAY_ADDRESS": address}
    process, url, _ = start_dashboard(env, isolated_workspace / "server.log")
    yield url, address
    stop_dashboard(process)
    ray.shutdown()


@needs_shared_weights
def test_a_run_on_the_cluster_is_followed_to_the_end(dashboard_on_a_cluster):
    from playwright.sync_api import expect, sync_playwright

    url, address = dashboard_on_a_cluster
    expect.set_options(timeout=60_000)
    with sync_playwright() as playwright, chromium_page(playwright, "cluster") as page:
        page.goto(f"{url}/train")
        _settle(page)
        main = page.get_by_test_id("stMainBlockContainer")
        page.get_by_text("Hardware (for administrators)").click()
        expect(main.get_by_text(f"Runs are sent to the Ray cluster at {address}")).to_be_visible()
        page.get_by_role("button", name="Quick first model").click()
        expect(_state(main, "Finished")).to_be_visible(timeout=240_000)
        host = socket.gethostname()
        expect(main.get_by_text(f"Trained on the processor of the cluster's computer {host}")).to_be_visible()
        main.get_by_text("Details for specialists").last.click()  # the live panel's: the devices' names, one click away
        expect(main.get_by_text(f"Devices: CPU:0 of the cluster's node {host} in float32")).to_be_visible()
        _shot(page, "cluster-finished")
        assert page.locator('[data-testid="stException"]').count() == 0
