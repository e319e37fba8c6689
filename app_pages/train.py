"""Train: start a run, watch it live, stop it. The run directory is the truth; this page only reads it."""

import pandas as pd
import streamlit as st

from app_pages.shared import (
    current_config,
    current_run,
    data_label,
    follow_run,
    image_size_plan,
    next_step,
    task_result,
)
from app_pages.widgets import recipe_picker, setting_input
from core import charts
from core.errors import InputError
from core.monitor import RunProgress
from core.runs import RunDirectory, list_runs, resume_run, runs_root, start_run
from core.status import RunState

st.title("3. Train")
recipe_slot = st.container()
config = current_config()
weights = config.weights if config.weights in ("imagenet", "none") else "file"
st.caption(
    f"Photos: {data_label(config.data)} · Network: {config.backbone} at {image_size_plan(config)[1]} · Weights: {weights}"
)
# Settings side by side: phase 1's on the left, phase 2's and the rest on the right.
PAIRS = [
    ("optimizer", "batch_size"),
    ("cosine_decay", "average_weights"),
    ("early_stopping_patience", "reduce_lr_patience"),
    ("keep", "class_weights"),
    ("feature_cache", "feature_views"),
]


def find_learning_rate() -> None:
    """The button that sweeps phase 1's learning rate, the curve, and a button to use the suggestion."""
    if st.button("Find a good learning rate", key="find_lr", help="Tries rates from 0.000001 to 1 on the new head"):
        st.session_state["lr_find_for"] = current_config().to_dict()
    if not st.session_state.get("lr_find_for"):
        return
    message = "Trying learning rates on the new head; the photos are prepared as for training"
    result, error = task_result("lr_find", {"config": st.session_state["lr_find_for"]}, message)
    if error:
        st.error(f"No learning rate could be suggested: {error}")
        st.session_state.pop("lr_find_for")
        return
    st.plotly_chart(charts.learning_rate_sweep(result), key="lr_sweep")
    st.caption(result.get("message", ""))
    suggestion = result.get("suggestion")
    if suggestion and st.button(f"Use {suggestion:g}", key="use_lr"):
        st.session_state["draft"] = current_config().replace(head_learning_rate=float(suggestion))
        st.session_state.pop("head_learning_rate", None)
        st.session_state.pop("lr_find_for", None)
        st.rerun()


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
                right, two, disabled=not current_config().feature_cache or not current_config().augmentation.enabled
            )
        elif right == "reduce_lr_patience":
            setting_input(right, two, disabled=current_config().cosine_decay)
        else:
            setting_input(right, two)
    setting_input("seed")
recipe_picker("train", recipe_slot)

if st.button("Start training", type="primary", key="start"):
    try:
        follow_run(start_run(current_config()))
    except InputError as error:
        st.error(f"These settings cannot train: {error}")

run = current_run()
if run is None:
    st.info("No run yet. Press **Start training**: the defaults work.")
    st.stop()


@st.fragment(run_every=1.0)
def live(run_id: str) -> None:
    """Polls the run directory; a reload or a second browser reads the same files."""
    run = RunDirectory(runs_root() / run_id)
    cache = st.session_state.setdefault("progress", {})
    progress, offset = cache.get(run_id, (RunProgress(), 0))
    events, offset = run.read_events(offset)
    progress.update(events)
    status = run.status()
    progress.apply_status(status)
    cache[run_id] = (progress, offset)
    st.markdown(f"### Run `{run_id}`: {status.state.label}")
    show = {RunState.FAILED: st.error, RunState.INTERRUPTED: st.warning, RunState.SUCCEEDED: st.success}
    show.get(status.state, st.info)(status.message)
    st.caption(status.feature_mode or " ")  # which training mode, and why (same element in every state)
    # Every state draws the same elements (a progress bar, a Stop button, two charts), so a
    # fragment rerun updates them in place: nothing flickers and nothing stale lingers.
    running = status.state is RunState.RUNNING
    st.progress(progress.fraction, text=progress.describe() if running else status.state.label)
    if status.state is RunState.INTERRUPTED and run.can_resume():
        epoch = status.resume_point.epochs_done if status.resume_point else 0
        if st.button(f"Resume (after epoch {epoch})", key=f"resume_{run_id}", type="primary"):
            resume_run(run)
            st.toast("Resuming: the run picks up from its last finished epoch.")
    elif st.button("Stop", key=f"stop_{run_id}", disabled=not status.state.active or run.stop_requested()):
        run.request_stop()
        st.toast("Stopping after the current batch...")
    left, right = st.columns(2)
    left.plotly_chart(charts.training_curve(progress, "loss", "Loss (lower is better)"), key=f"loss_{run_id}")
    right.plotly_chart(charts.training_curve(progress, "accuracy", "Accuracy"), key=f"accuracy_{run_id}")
    with st.empty():
        if status.state in (RunState.SUCCEEDED, RunState.STOPPED) and run.evaluation():
            next_step("app_pages/evaluate.py", "Next: see how good it is →")


live(run.id)

st.subheader("Past runs")
past = list_runs()[:50]
rows = [
    {"run": r.id, "state": s.state.label, "accuracy": s.accuracy, "message": s.message}
    for r, s in ((r, r.status()) for r in past)
]
if rows:
    accuracy = st.column_config.NumberColumn(format="percent")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="past_runs", column_config={"accuracy": accuracy})
    choice = st.selectbox("Open a run", [r.id for r in past], key="open_run")
    if st.button("Open", key="open"):
        follow_run(next(r for r in past if r.id == choice))
        st.rerun()
