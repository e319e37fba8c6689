"""State every page shares: the settings chosen so far, the followed run, datasets, the page list and sidebar.

Pages read state, call core, render. Widgets made from the settings' declarations are in
`app_pages/widgets.py`.
"""

from __future__ import annotations

import streamlit as st

from app_pages.session_views import dashboard_password, keep_cookie, sign_out
from core.base.files import safe_name
from core.base.markup import md_literal
from core.base.settings import with_value
from core.data.datasets import DatasetError, DatasetReport, scan_dataset
from core.data.images import IMAGE_EXTENSIONS, load_rgb
from core.data.overrides import overrides_home
from core.data.sources import resolve_source, source_label
from core.network import weights
from core.network.backbones import BACKBONES
from core.network.config import AUTO_SIZE, RunConfig
from core.runs.directory import RunDirectory, list_runs, runs_root
from core.training.evaluation import accuracy_label
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
        decided = overrides_home()  # a decision in the photo review changes what a scan reports
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


PAGES = [
    ("app_pages/home.py", "Home", ":material/home:"),
    ("app_pages/data.py", "Data", ":material/photo_library:"),
    ("app_pages/model.py", "Model", ":material/neurology:"),
    ("app_pages/train.py", "Train", ":material/monitoring:"),
    ("app_pages/evaluate.py", "Evaluate", ":material/fact_check:"),
    ("app_pages/runs.py", "Runs", ":material/table_rows:"),
]


def _page_icon():
    """The tab's icon, drawn here: an icon named by emoji or Material name is fetched from Google's servers."""
    from PIL import Image, ImageDraw

    icon = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(icon)
    draw.rounded_rectangle((2, 2, 61, 61), radius=14, fill="#2563eb")
    for left, top in ((14, 36), (28, 24), (42, 14)):  # three rising bars: a model getting better
        draw.rounded_rectangle((left, top, left + 9, 50), radius=3, fill="white")
    return icon


PAGE_ICON = _page_icon()


def _run_named(run_id: str | None) -> RunDirectory | None:
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
    run = _run_named(wanted) or _run_named(st.session_state.get("run_id"))
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


# A sign that the page is working, on every page: Streamlit fades what a click is about to redraw
# (`data-stale`), with nothing else to see for seconds. Shown after a second, so the sidebar's
# and the live panel's own refreshes every second never flash it.
WORKING_SIGN = """<style>
body:has([data-stale="true"])::after {
  content: "Working…"; position: fixed; top: 14px; left: 50%; transform: translateX(-50%); z-index: 999999;
  background: #2563eb; color: #fff; padding: 6px 16px; border-radius: 999px; font: 600 14px sans-serif;
  box-shadow: 0 2px 8px rgba(0,0,0,.2); opacity: 0; animation: studio-working 0s linear 1s forwards;
}
@keyframes studio-working { to { opacity: 1; } }
</style>"""


def sidebar() -> None:
    """The pages (each link keeps the followed run), and where the project stands."""
    st.html(WORKING_SIGN)
    with st.sidebar:
        current_run()
        for page, title, icon in PAGES:
            st.page_link(page, label=title, icon=icon, query_params=run_params())
        st.divider()
        st.markdown("### Your project")
        project_summary()
        keep_cookie()
        if dashboard_password():
            st.button("Sign out", icon=":material/logout:", on_click=sign_out, key="sign_out")


@st.fragment(run_every=1.0)
def project_summary() -> None:
    """Refreshed on its own, so it shows choices the page below has just made and a run's live state."""
    config = current_config()
    st.markdown(f"**Photos:** {source_label(config.data)}")
    st.markdown(f"**Network:** {BACKBONES[config.backbone].label}")
    run = _run_named(st.session_state.get("run_id"))
    if run is None:
        st.caption("No training run yet.")
        return
    status = run.status()
    st.markdown(f"**Run:** {md_literal(run.title())}")
    st.markdown(f"**State:** {status.state.label}")
    if status.state.active and status.epochs_total:
        st.progress(min(status.epoch / status.epochs_total, 1.0))
    if status.accuracy is not None:
        which = accuracy_label(status.accuracy_split)
        which = f"First model's {which.lower()}" if status.state.active else which
        st.markdown(f"**{which}:** {status.accuracy:.1%}")


def next_step(page: str, label: str) -> None:
    """A link to another page, keeping the followed run; a page run on its own (as in tests) has no
    navigation to link into."""
    from streamlit.errors import StreamlitPageNotFoundError

    try:
        st.page_link(page, label=label, query_params=run_params())
    except StreamlitPageNotFoundError:
        st.caption(label)
