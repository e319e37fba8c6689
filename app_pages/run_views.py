"""Views of runs that several pages share: the live panel of a run, the list of runs, the run picker.

Each reads the run directory only; live views are fragments that poll it every second, so
a reload, a second browser or a restarted server shows the same thing.
"""

from __future__ import annotations

import datetime

import pandas as pd
import streamlit as st

from app_pages.shared import follow_run, next_step
from core.base.markup import md_literal
from core.network.config import BEST_NEEDS_VALIDATION
from core.network.distribute import placement_details, placement_in_words
from core.results import charts
from core.runs.directory import RunDirectory, distinct_titles, list_runs, runs_root
from core.runs.queue import resume_run
from core.runs.status import RunState, keep_choice
from core.training.monitor import RunProgress, memorising


def progress_of(run: RunDirectory) -> tuple[RunProgress, object]:
    """The run's progress folded from its new events (kept per tab, read incrementally), and its status."""
    cache = st.session_state.setdefault("progress", {})
    progress, offset = cache.get(run.id, (RunProgress(), 0))
    events, offset = run.read_events(offset)
    progress.update(events)
    status = run.status()
    progress.apply_status(status)
    cache[run.id] = (progress, offset)
    return progress, status


@st.fragment(run_every=1.0)
def live_run(run_id: str) -> None:
    """A run as it trains: its state in words, progress and time left, Stop or Resume, and the curves.

    Every state draws the same elements, so a rerun updates them in place: nothing flickers,
    nothing stale lingers.
    """
    run = RunDirectory(runs_root() / run_id)
    progress, status = progress_of(run)
    ended_here = st.session_state.get(f"live_active_{run_id}") and not status.state.active
    st.session_state[f"live_active_{run_id}"] = status.state.active
    if ended_here:  # the page around this panel (Start, "still training") was drawn while it trained
        st.rerun(scope="app")
    st.markdown(f"### {run.title()}: {status.state.label}")
    show = {RunState.FAILED: st.error, RunState.INTERRUPTED: st.warning, RunState.SUCCEEDED: st.success}
    show.get(status.state, st.info)(status.message)
    devices = placement_in_words(status.placement, status.node)
    on = f" {'Training' if status.state.active else 'Trained'} on {devices}." if devices else ""
    st.caption((status.feature_mode + on).strip() or " ")  # which training mode and devices, and why
    with st.expander("Details for specialists"):
        details = placement_details(status.placement, status.node)
        why = status.placement.get("precision_why", "") if status.placement else ""
        st.caption(f"Devices: {details}. Precision: {why}." if details else "Devices: not recorded yet.")
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
    with st.empty():
        if status.first_model and status.state.active:
            st.success(first_model_line(status))
        elif status.finetune_decision:
            st.info(status.finetune_decision)
    keeps_best = keep_choice(run.config().keep, status.images.get("val", 0), BEST_NEEDS_VALIDATION) == "best"
    warning = memorising(progress.epochs, keeps_best or status.kept == "best", status.state.active)
    with st.empty():
        if warning:
            st.warning(warning)
    st.plotly_chart(charts.training_curve(progress, "accuracy", "Accuracy (higher is better)"), key=f"acc_{run_id}")
    with st.expander("Loss: how far the model's answers are from the right ones (lower is better)"):
        st.plotly_chart(charts.training_curve(progress, "loss", "Loss"), key=f"loss_{run_id}")
    with st.empty():
        if status.state in (RunState.SUCCEEDED, RunState.STOPPED) and run.evaluation():
            next_step("app_pages/evaluate.py", "Next: see how good it is →")


def first_model_line(status, here: bool = False) -> str:
    """What the first model (kept as phase 1 ends) scored, said while fine-tuning goes on (`here`: on the
    Evaluate page, which shows it)."""
    first = status.first_model
    score = (
        f"{first['val_accuracy']:.0%} on validation photos"
        if first.get("val_accuracy") is not None
        else f"{first['accuracy']:.0%} on {first['split']} photos"
    )
    where = "Try it or download it below." if here else "Try it or download it on the Evaluate page."
    then = first.get("then") or (
        "Fine-tuning continues to improve it; the final model replaces it unless the first does better on validation."
    )
    return f"A first model is ready: {score}. {where} {then}"


def about_editor(run: RunDirectory) -> None:
    """Rename the run or add a note; its id, and so every link to it, stays the same."""
    about = run.about()
    with st.expander("Rename this run or add a note"):
        name = st.text_input("Name", value=run.title(), key=f"name_{run.id}", max_chars=120)
        notes = st.text_area("Notes", value=about.notes, key=f"notes_{run.id}", max_chars=4000)
        if st.button("Save", key=f"save_about_{run.id}"):
            run.set_about(name=name, notes=notes)
            st.toast("Saved.")
            st.rerun()  # the heading above, and the sidebar, show the new name at once
        st.caption(f"Run id (in the address bar): `{run.id}`")


@st.fragment(run_every=2.0)
def runs_table() -> None:
    """Every run with its state and result, kept live; Open follows the one chosen."""
    runs = list_runs()[:100]
    if not runs:
        return
    rows = []
    for run in runs:
        status = run.status()
        started = datetime.datetime.fromtimestamp(status.created) if status.created else None
        rows.append(
            {
                "run": run.title(),
                "state": status.state.label,
                "accuracy": status.accuracy * 100 if status.accuracy is not None else None,
                "started": started,
                "message": status.message,
            }
        )
    columns = {
        "accuracy": st.column_config.NumberColumn("test accuracy", format="%.1f%%"),
        "started": st.column_config.DatetimeColumn("started", format="D MMM HH:mm"),
    }
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="past_runs", column_config=columns)
    titles = distinct_titles(runs)
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    choice = left.selectbox("Open a run", list(titles), format_func=titles.get, key="open_run")
    if right.button("Open", key="open"):
        follow_run(next(run for run in runs if run.id == choice))
        st.rerun(scope="app")


def compare_runs(runs: list[RunDirectory]) -> None:
    """Two or more runs side by side: curves overlaid, results, time and size, settings that differ, classes."""
    from core.results import compare

    st.subheader(f"Comparing {len(runs)} runs")
    curves = compare.validation_curves(runs)
    if curves:
        st.plotly_chart(charts.compared_curves(curves), key="compare_curves")
    st.dataframe(compare.facts_frame(runs), key="compare_facts")
    for line in compare.paired_tests(runs):
        st.markdown(md_literal(line), help="McNemar's exact test on the photos where the two runs disagree.")
    settings = compare.settings_frame(runs)
    differing = int(settings["differs"].sum())
    st.markdown(f"**Settings** ({differing} differ, highlighted)" if differing else "**Settings**: all the same")
    only = st.toggle("Only the settings that differ", value=bool(differing), key="compare_only_differ")
    table = settings[settings["differs"]] if only else settings
    highlight = "background-color: #fef3c7; font-weight: 600"
    st.dataframe(
        table.drop(columns="differs").style.apply(
            lambda row: [highlight if table.loc[row.name, "differs"] else ""] * len(row), axis=1
        ),
        key="compare_settings",
    )
    per_class = compare.per_class_frame(runs)
    if not per_class.empty:
        st.plotly_chart(charts.compared_classes(per_class), key="compare_classes")
    evaluated = [run for run in runs if run.evaluation()]
    if evaluated:
        st.markdown("**Confusion matrices** (rows: true class, columns: predicted)")
        for column, run in zip(st.columns(min(len(evaluated), 3)) * 2, evaluated[:6], strict=False):
            with column:
                st.caption(run.title())
                figure = charts.confusion_matrix(run.evaluation())
                figure.update_layout(
                    title=None, margin={"t": 10}, height=260 + 20 * len(run.evaluation()["class_names"])
                )
                figure.update_coloraxes(showscale=False)
                st.plotly_chart(figure, key=f"compare_confusion_{run.id}")
