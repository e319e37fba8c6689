"""State and widgets every page shares. Pages read state, call core, render."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import streamlit as st

from core.backbones import BACKBONES
from core.config import AUTO_SIZE, RunConfig
from core.datasets import DatasetError, DatasetReport, resolve_source, scan_dataset
from core.images import load_rgb
from core.runs import RunDirectory, list_runs, runs_root, safe_name
from core.tasks import read_result, start_task, task_running

DATA_LABELS = {"demo": "Built-in demo (shapes, 4 classes)"}
STATE_LABELS = {
    "queued": "Waiting in the queue",
    "running": "Training",
    "succeeded": "Finished",
    "stopped": "Stopped",
    "failed": "Failed",
    "interrupted": "Interrupted",
}


def require_app(page: str) -> None:
    """Send a page that runs on its own through `streamlit_app.py`.

    Until some session has run `st.navigation`, Streamlit treats `pages/` as a legacy
    multipage folder, so a deep link such as /model on a freshly started server runs the
    page without the app's navigation and sidebar. The page then records where the user
    wanted to go and hands over to the app, which switches to its own navigation (for
    every session) and forwards them.
    """
    if not st.session_state.get("_routed", False):
        st.session_state["_wanted_page"] = page
        st.switch_page("streamlit_app.py")


def data_root() -> Path:
    """Server folders users may pick from: `STUDIO_DATA_ROOT`, default `./datasets`."""
    return Path(os.environ.get("STUDIO_DATA_ROOT", "datasets")).resolve()


def draft() -> dict:
    """The settings chosen so far on the pages (a partial RunConfig), kept for this browser tab.

    A new tab or a reload starts from the settings of the run it follows, so what was
    chosen for that run is not lost.
    """
    if "draft" not in st.session_state:
        run = current_run()
        try:
            config = run.config() if run else None
        except (OSError, ValueError):
            config = None
        fields = dataclasses.fields(config) if config else ()
        st.session_state["draft"] = {f.name: getattr(config, f.name) for f in fields if f.name != "name"}
    return st.session_state["draft"]


def current_config() -> RunConfig:
    return RunConfig().replace(**draft())


def set_choice(**values) -> None:
    draft().update(values)


# Widgets that show a setting a recipe decides: they are reset when a recipe is applied,
# so they show the recipe's values instead of keeping their own.
RECIPE_WIDGETS = (
    "backbone",
    "image_size",
    "unfreeze_plan",
    "top_n",
    "first_n",
    "from_block",
    "layer_editor",
    "pooling",
    "head_units",
    "dropout",
    "head_epochs",
    "head_lr",
    "finetune_epochs",
    "finetune_lr",
    "batch_size",
    "patience",
    "optimizer",
    "lr_schedule",
    "average_weights",
    "keep",
    "feature_views",
    "aug_hflip",
    "aug_vflip",
    "aug_rotation",
    "aug_zoom",
    "aug_translation",
    "aug_contrast",
    "aug_brightness",
)


def recipe_picker(where: str, slot) -> None:
    """One-click presets: a known recipe (or the tool's default) fills the settings it decides.

    Drawn into `slot` (a container near the top of the page) after the page's own settings
    widgets have run, so it shows whether the settings as they are now match a recipe.
    """
    from core.recipes import RECIPE_FIELDS, RECIPES, matching_recipe

    config = current_config()
    in_use = matching_recipe(config)
    if st.session_state.get(f"recipe_{where}_matched", in_use) != in_use:
        st.session_state[f"recipe_{where}"] = in_use  # the settings changed: show what they match now
    st.session_state[f"recipe_{where}_matched"] = in_use
    with slot.container(border=True):
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        key = left.selectbox(
            "Recipe",
            list(RECIPES),
            index=list(RECIPES).index(in_use) if in_use else None,
            format_func=lambda k: RECIPES[k].title,
            placeholder="Your own settings",
            key=f"recipe_{where}",
        )
        chosen = RECIPES.get(key)
        if right.button("Use this recipe", key=f"use_recipe_{where}", disabled=chosen is None or key == in_use):
            values = chosen.config(config)
            set_choice(**{name: getattr(values, name) for name in RECIPE_FIELDS})
            for widget in RECIPE_WIDGETS:
                st.session_state.pop(widget, None)
            st.toast(f"Settings from '{chosen.title}'. You can change any of them.")
            st.rerun()
        if chosen:
            st.caption(
                f"**{chosen.what}** {chosen.source}"
                + ("" if key == in_use else " Press **Use this recipe** to apply it.")
            )
        else:
            st.caption("The settings no longer match a recipe: they are your own. Choose a recipe to start from one.")


def data_label(source: str) -> str:
    if source in DATA_LABELS:
        return DATA_LABELS[source]
    if source.startswith("sample:"):
        return f"Sample: {source.split(':', 1)[1]}"
    return Path(source).name or source


@st.cache_data(show_spinner="Checking every photo...", max_entries=16)
def scan(source: str, _stamp: float = 0.0) -> dict:
    """Scan a dataset once per source (and folder change); the report as plain data."""
    return scan_dataset(resolve_source(source)).to_dict()


def load_report(source: str) -> tuple[DatasetReport | None, str | None]:
    """The report for `source`, or an error message to show instead."""
    try:
        folder = resolve_source(source)
        stamp = folder.stat().st_mtime if folder.exists() else 0.0
        return DatasetReport.from_dict(scan(source, stamp)), None
    except DatasetError as error:
        return None, str(error)
    except OSError as error:
        return None, f"The dataset could not be read: {error.strerror or error}"


def labelled_select(container, label: str, labels: dict, current, **kwargs):
    """A selectbox over `labels`' keys, showing their labels, starting at `current`."""
    keys = list(labels)
    return container.selectbox(label, keys, keys.index(current), format_func=labels.get, **kwargs)


def image_size_plan(config: RunConfig) -> tuple[int, str]:
    """The size a run of `config` will use, and how to say it (`auto` is chosen from the photos)."""
    spec = BACKBONES[config.backbone]
    if config.image_size != AUTO_SIZE:
        return config.image_size, f"{config.image_size} px"
    report, _ = load_report(config.data)
    if report is None or not report.items:
        return spec.default_size, f"{spec.default_size} px (automatic)"
    side = report.typical_side()
    size = spec.auto_image_size(side)
    return size, f"{size} px (automatic: the photos are typically {side} px on their shorter side)"


@st.cache_data(max_entries=512, show_spinner=False)
def thumbnail(path: str, size: int = 128):
    """A photo decoded upright at `size`, once per file for the whole server."""
    return load_rgb(path, size)


def current_run() -> RunDirectory | None:
    """The run this tab follows: from the URL (survives a reload), else the newest run."""
    run_id = st.query_params.get("run") or st.session_state.get("run_id")
    if run_id and run_id == safe_name(run_id, limit=200):  # a name from the URL never walks the file system
        candidate = runs_root() / run_id
        if (candidate / "config.json").is_file():
            return RunDirectory(candidate)
    runs = list_runs()
    return runs[0] if runs else None


def follow_run(run: RunDirectory) -> None:
    st.session_state["run_id"] = run.id
    st.query_params["run"] = run.id


def sidebar() -> None:
    """Where the user is: dataset, backbone, and the current run."""
    with st.sidebar:
        st.markdown("### Your project")
        project_summary()


@st.fragment(run_every=1.0)
def project_summary() -> None:
    """Refreshed on its own, so it shows choices the page below has just made and a run's live state."""
    config = current_config()
    st.markdown(f"**Photos:** {data_label(config.data)}")
    st.markdown(f"**Network:** {BACKBONES[config.backbone].label}")
    run = current_run()
    if run is None:
        st.caption("No training run yet.")
        return
    status = run.status()
    state = status.get("state", "queued")
    st.markdown(f"**Run:** `{run.id}`")
    st.markdown(f"**State:** {STATE_LABELS.get(state, state)}")
    if state == "running" and status.get("epochs_total"):
        st.progress(min(int(status.get("epoch") or 0) / status["epochs_total"], 1.0))
    if status.get("accuracy") is not None:
        st.markdown(f"**Test accuracy:** {status['accuracy']:.1%}")


def next_step(page: str, label: str) -> None:
    """A link to the next page; a page run on its own (as in tests) has no navigation to link into."""
    from streamlit.errors import StreamlitPageNotFoundError

    try:
        st.page_link(page, label=label)
    except StreamlitPageNotFoundError:
        st.caption(label)


def task_result(name: str, args: dict, message: str) -> tuple[dict | None, str | None]:
    """Run a TensorFlow task outside this process and wait for it, staying interruptible.

    Streamlit can only stop a script at a Streamlit call, so the wait touches the page
    every quarter second: a click elsewhere is answered at once, and the task still
    finishes and caches its result for next time.
    """
    path = start_task(name, args)
    slot = st.empty()
    started = time.time()
    while not path.exists() and task_running(path):
        slot.caption(f"{message} ({time.time() - started:.0f} s)")
        time.sleep(0.25)
    slot.empty()
    result = read_result(path)
    if result is None or "error" in result:
        path.unlink(missing_ok=True)  # let the next visit try again
        return None, (result or {}).get("error", "The helper process ended without an answer.")
    return result, None
