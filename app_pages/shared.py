"""State every page shares: the settings chosen so far, the followed run, datasets and thumbnails.

Pages read state, call core, render. Widgets made from the settings' declarations are in
`app_pages/widgets.py`; the page list and the sidebar in `app_pages/navigation.py`.
"""

from __future__ import annotations

import streamlit as st

from core.base.files import safe_name
from core.base.settings import with_value
from core.data.datasets import DatasetError, DatasetReport, scan_dataset
from core.data.decisions import decisions_home
from core.data.images import IMAGE_EXTENSIONS, load_rgb
from core.data.sources import resolve_source
from core.network import weights
from core.network.config import AUTO_SIZE, RunConfig
from core.runs.directory import RunDirectory, list_runs, runs_root
from core.training.preflight import planned_image_size, typical_side_words


def current_config() -> RunConfig:
    """The settings chosen so far on the pages, kept for this browser tab.

    A new tab or a reload starts from the settings of the run it follows, so what was
    chosen for that run is not lost.
    """
    if "draft" not in st.session_state:
        run = current_run()
        try:
            config = run.config().replace(name="") if run else RunConfig()
        except (OSError, ValueError):
            config = RunConfig()
        st.session_state["draft"] = config
    return st.session_state["draft"]


def set_setting(name: str, value) -> None:
    """Record a choice (`name` may be nested: "augmentation.zoom")."""
    st.session_state["draft"] = with_value(current_config(), name, value)


def set_config(config: RunConfig) -> None:
    st.session_state["draft"] = config


@st.cache_data(show_spinner="Checking every photo...", max_entries=16)
def scan(source: str, stamp: float = 0.0) -> dict:
    """Scan a dataset once per source and folder change (`stamp`, the folder's time, is part of the cache key:
    a name starting with an underscore would not be); the report as plain data."""
    return scan_dataset(resolve_source(source)).to_dict()


def load_report(source: str) -> tuple[DatasetReport | None, str | None]:
    """The report for `source`, or an error message to show instead."""
    try:
        folder = resolve_source(source)
        stamp = folder.stat().st_mtime if folder.exists() else 0.0
        decided = decisions_home()  # a decision in the photo review changes what a scan reports
        stamp += decided.stat().st_mtime if decided.exists() else 0.0
        return DatasetReport.from_dict(scan(source, stamp)), None
    except DatasetError as error:
        return None, str(error)
    except OSError as error:
        return None, f"The dataset could not be read: {error.strerror or error}"


def image_size_plan(config: RunConfig) -> tuple[int, str]:
    """The size a run of `config` will use, and how to say it (`auto` is chosen from the photos)."""
    if config.image_size != AUTO_SIZE:
        return config.image_size, f"{config.image_size} px"
    report, _ = load_report(config.data)
    size = planned_image_size(config, report)
    if report is None or not report.items:
        return size, f"{size} px (automatic)"
    return size, f"{size} px (automatic: the photos are {typical_side_words(report)})"


def weights_downloadable() -> bool:
    """Whether this server can download ImageNet weights (`core.network.weights` asks at most every two minutes)."""
    return weights.downloads_possible()


PHOTO_TYPES = sorted(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)  # what the photo uploaders accept


@st.cache_data(max_entries=512, show_spinner=False)
def thumbnail(path: str, size: int = 128):
    """A photo decoded upright at `size`, once per file for the whole server."""
    return load_rgb(path, size)


def run_named(run_id: str | None) -> RunDirectory | None:
    """The run called `run_id` on this server, if there is one; a forged name finds nothing."""
    if run_id and run_id == safe_name(run_id, limit=200):  # a name from the URL never walks the file system
        candidate = runs_root() / run_id
        if (candidate / "config.json").is_file():
            return RunDirectory(candidate)
    return None


def current_run() -> RunDirectory | None:
    """The run this tab follows: the one in the URL (`?run=`), else this tab's, else the newest.

    It changes only when the person chooses another (Start, Open, a run picker), and it is
    written back to the URL, so every page, the sidebar and a copied link show the same run.
    """
    wanted = st.query_params.get("run")
    run = run_named(wanted) or run_named(st.session_state.get("run_id"))
    if run is None:
        runs = list_runs()
        run = runs[0] if runs else None
    if wanted and (run is None or run.id != wanted):
        st.session_state["missing_run"] = wanted  # said once on the page, by `say_missing_run`
    if run is not None:
        follow_run(run)
    return run


def say_missing_run() -> None:
    """A link to a run that is not here gets a word, not a silent substitute."""
    missing = st.session_state.pop("missing_run", None)
    if missing:
        st.warning(f"There is no run called “{missing[:80]}” on this server; showing the newest run instead.")


def follow_run(run: RunDirectory) -> None:
    """Follow `run` in this tab and in its URL."""
    st.session_state["run_id"] = run.id
    if st.query_params.get("run") != run.id:
        st.query_params["run"] = run.id


def run_params() -> dict | None:
    """The query parameters every link carries: the followed run."""
    run_id = st.session_state.get("run_id")
    return {"run": run_id} if run_id else None


def next_step(page: str, label: str) -> None:
    """A link to another page, keeping the followed run; a page run on its own (as in tests) has no
    navigation to link into."""
    from streamlit.errors import StreamlitPageNotFoundError

    try:
        st.page_link(page, label=label, query_params=run_params())
    except StreamlitPageNotFoundError:
        st.caption(label)
