"""Train: start a run, watch it live, stop it. The run directory is the truth; this page only reads it."""

import time

import streamlit as st

from app_pages.run_views import about_editor, live_run, runs_table
from app_pages.shared import (
    current_config,
    current_run,
    follow_run,
    image_size_plan,
    load_report,
    say_missing_run,
    weights_downloadable,
)
from app_pages.task_views import task_if_done
from app_pages.train_views import find_learning_rate, where_runs_train
from app_pages.widgets import recipe_picker, setting_input
from core.base.markup import md_literal
from core.base.processes import cluster_address
from core.base.tasks import Task
from core.data.sources import source_label
from core.network.backbones import BACKBONES
from core.network.choices import FINETUNE_PATIENCE, HEAD_FITS
from core.network.recipes import RECIPES
from core.runs.directory import RunDirectory, run_title
from core.runs.queue import start_run
from core.training.estimate import planned_seconds, speeds_request
from core.training.monitor import format_seconds
from core.training.preflight import start_blockers

DOUBLE_CLICK_SECONDS = 5.0

st.title("3. Train")
recipe_slot = st.container()
config = current_config()
weights = {"imagenet": "ImageNet", "none": "random"}.get(config.weights, "from a file")
st.caption(
    f"Photos: {source_label(config.data)} · Network: {BACKBONES[config.backbone].label} at {image_size_plan(config)[1]} · "
    f"Weights: {weights}"
)
# Settings side by side: phase 1's on the left, phase 2's and the rest on the right.
PAIRS = [
    ("optimizer", "batch_size"),
    ("cosine_decay", "average_weights"),
    ("early_stopping_patience", "reduce_lr_patience"),
    ("keep", "finetune_until"),
    ("fast_mode", "feature_views"),
    ("class_weights", "seed"),
]


with st.expander("Training settings", expanded=st.session_state.get("lr_find_for") is not None):
    one, two = st.columns(2)
    one.markdown("**Phase 1: new head, network frozen**")
    two.markdown("**Phase 2: fine-tune the top of the network**")
    setting_input("head_epochs", one)
    setting_input("finetune_epochs", two)
    setting_input("head_learning_rate", one)
    setting_input("finetune_learning_rate", two)
    with one:
        find_learning_rate()
    for left, right in PAIRS:
        one, two = st.columns(2)
        setting_input(left, one)
        if right == "feature_views":
            setting_input(
                right, two, disabled=not current_config().fast_mode or not current_config().augmentation.enabled
            )
        elif right == "reduce_lr_patience":
            setting_input(right, two, disabled=current_config().cosine_decay)
        else:
            setting_input(right, two)
with st.expander("Hardware (for administrators)"):
    one, two = st.columns(2)
    setting_input("devices", one)
    setting_input("precision", two)
    st.caption(where_runs_train())
recipe_picker("train", recipe_slot)


def planned_time(config, report, shortest: bool = False) -> dict | None:
    """Seconds each stage should take on this machine, from its measured speeds; None until they are measured
    (`shortest`: if fine-tuning ends at its earliest)."""
    speeds = task_if_done(Task.SPEEDS, speeds_request(config, report))
    return planned_seconds(config, report, speeds, shortest) if speeds else None


@st.fragment(run_every=1.0)
def time_needed(config, report) -> None:
    """How long a run of these settings should take here (appears once this machine's speed is measured)."""
    planned = planned_time(config, report)
    if planned is None:
        st.caption("Measuring how fast this machine runs this network, to say how long training will take...")
        return
    parts = {
        "preparing": "preparing",
        "features": "computing features",
        "head": "phase 1",
        "finetune": "phase 2",
        "evaluating": "checking",
    }
    steps = ", ".join(f"{parts[k]} {format_seconds(v)}" for k, v in planned.items() if v >= 0.5)
    where = "on this server; the cluster's nodes may be faster" if cluster_address() else "on this machine"
    total = sum(planned.values())
    shortest = sum((planned_time(config, report, shortest=True) or planned).values())
    early = (
        f" If the new head alone proves enough, **as little as {format_seconds(shortest)}**: fine-tuning is skipped "
        f"where the head already tells apart {HEAD_FITS:.0%} of its training photos, and ends once "
        f"{FINETUNE_PATIENCE} epochs in a row do not improve the validation photos."
        if shortest < total - 0.5
        else ""
    )
    st.caption(f"Expected to take **about {format_seconds(total)}** {where} ({steps}).{early}")


def start_panel() -> None:
    """Start, or every reason a run would fail and the way out; a double click starts one run, not two."""
    config = current_config()
    report, data_error = load_report(config.data)
    blockers = start_blockers(config, report, data_error, weights_downloadable())
    if not blockers:
        time_needed(config, report)
    for blocker in blockers:
        st.error(f"**{blocker.problem}** {blocker.fix}")
        if blocker.details:
            with st.expander("For administrators"):
                st.caption(blocker.details)
    busy = _training_here()
    if busy is not None:
        st.info(
            f"**“{md_literal(busy.title())}” is still training** (below). Starting now would train a second run "
            "beside it, or after it; Stop it below first, or tick the box to start another one anyway.",
            icon=":material/hourglass_top:",
        )
        another = st.checkbox(
            f"Start another run while “{md_literal(busy.title())}” trains", key=f"start_another_{busy.id}"
        )
        blocked = bool(blockers) or not another
    else:
        blocked = bool(blockers)
    start, quick, what = st.columns([1, 1, 4], vertical_alignment="center")
    if start.button("Start training", type="primary", key="start", disabled=blocked):
        _start(config, report)
    if quick.button(
        "Quick first model",
        key="start_quick",
        disabled=blocked,
        help=f"{RECIPES['quick'].in_words} Your photos and network stay as chosen.",
    ):
        _start(config.replace(**RECIPES["quick"].settings), report)  # the chosen network, the quick schedule
    what.caption("Quick first model: a model in seconds to try, trained on each photo's features computed once.")


def _training_here() -> RunDirectory | None:
    """The run this tab follows while it trains or waits: Start then asks before starting another."""
    run = current_run()
    return run if run is not None and run.status().state.active else None


def _start(config, report) -> None:
    fingerprint = config.to_json()
    last = st.session_state.get("last_start")
    if last and last[0] == fingerprint and time.time() - last[1] < DOUBLE_CLICK_SECONDS:
        return  # the same settings a moment ago: a second click of the same Start
    st.session_state["last_start"] = (fingerprint, time.time())
    title = run_title(config, report.class_names, time.time())
    follow_run(start_run(config, title=title, estimate=planned_time(config, report)))
    st.rerun()  # so the sidebar's links, drawn before this click, carry the new run too


start_panel()
run = current_run()
say_missing_run()
if run is None:
    st.info("No run yet.")
    st.stop()
live_run(run.id)
about_editor(run)
st.subheader("All runs")
runs_table()
