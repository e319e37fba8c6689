"""Runs: every run in one table; one chosen to rename, keep as a file or delete; two or more compared."""

import streamlit as st

from app_pages.run_views import about_editor, compare_runs
from app_pages.share_views import keep_as_file
from app_pages.shared import follow_run, next_step
from core.base.errors import InputError
from core.base.markup import md_literal
from core.results.compare import runs_frame
from core.runs.directory import RunDirectory, list_runs, runs_root
from core.sharing.run_files import RunFileRefused, delete_run, imported_from, unpack_run

st.title("Runs")


def open_run_file() -> None:
    """A run kept as a file (here or on another server) becomes a run of this server."""
    with st.expander("Open a run kept as a file (.studio.zip)"):
        upload = st.file_uploader("Run file", type=["zip"], key="run_file")
        if upload is not None and st.button("Open it", key="open_run_file", type="primary"):
            try:
                run = unpack_run(upload.getvalue(), runs_root())
            except RunFileRefused as error:
                st.error(str(error))
                return
            follow_run(run)
            st.success(f"Opened **{md_literal(run.title())}**. It is in the table below, with its results.")


open_run_file()
runs = list_runs()
if not runs:
    st.info("No runs yet. Start one on the Train page; every run appears here.")
    st.stop()

frame = runs_frame(runs)
frame["origin"] = ["opened from a file" if imported_from(run) else "" for run in runs]
find, states = st.columns([3, 2])
text = find.text_input("Find", placeholder="a name, dataset, network or note", key="runs_find")
chosen_states = states.multiselect("State", sorted(frame["state"].unique()), key="runs_state")
shown = frame
if text:
    haystack = frame[["name", "data", "network", "notes", "recipe"]].fillna("").agg(" ".join, axis=1)
    shown = shown[haystack.str.contains(text, case=False, regex=False)]
if chosen_states:
    shown = shown[shown["state"].isin(chosen_states)]

selection = st.dataframe(
    shown.drop(columns="id").assign(accuracy=shown["accuracy"] * 100),
    hide_index=True,
    key="runs_table",
    on_select="rerun",
    selection_mode="multi-row",
    column_config={
        "name": st.column_config.TextColumn("name", width="large"),
        "accuracy": st.column_config.NumberColumn(
            "accuracy", format="%.1f%%", help="On the test photos, or the validation photos where none were kept aside"
        ),
        "minutes": st.column_config.NumberColumn("minutes", format="%.1f"),
        "started": st.column_config.DatetimeColumn("started", format="D MMM YYYY HH:mm"),
    },
)
rows = [row for row in selection.selection.rows if row < len(shown)]
by_id = {run.id: run for run in runs}
picked: list[RunDirectory] = [by_id[shown.iloc[row]["id"]] for row in rows]
st.caption(
    f"{len(shown)} of {len(frame)} runs. Click the column headers to sort. Tick one run to rename, keep or delete "
    "it; tick two or more to compare them."
)

if len(picked) == 1:
    run = picked[0]
    st.subheader(md_literal(run.title()))
    left, middle = st.columns(2)
    with left:
        if st.button("Follow this run on every page", key="runs_follow"):
            follow_run(run)
            st.rerun()
    with middle:
        keep_as_file(run, key="runs_keep")
    next_step("app_pages/evaluate.py", "See its results on Evaluate →")
    about_editor(run)
    with st.expander("Delete this run"):
        st.caption("Deletes its settings, history, results and model from this server. Your photos are not touched.")
        sure = st.checkbox(f"Yes, delete “{run.title()}”", key=f"runs_delete_sure_{run.id}")
        if st.button("Delete", key="runs_delete", type="primary", disabled=not sure):
            try:
                delete_run(run)
            except InputError as error:
                st.error(str(error))
            else:
                st.session_state.pop("run_id", None)
                st.query_params.pop("run", None)
                st.toast(f"Deleted {run.title()}.")
                st.rerun()
elif len(picked) > 1:
    compare_runs(picked)
