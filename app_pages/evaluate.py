"""Evaluate: how good the followed run's model is, where it errs, what it says about new photos, and the file."""

import pandas as pd
import streamlit as st

from app_pages.photo_views import mistakes_gallery, try_photos
from app_pages.review_views import collect_next, review_photos
from app_pages.run_views import first_model_line, progress_of
from app_pages.share_views import keep_as_file, report_download, share_panel
from app_pages.shared import current_run, follow_run, say_missing_run
from app_pages.take_away import take_away
from core.base.markup import md_literal, md_notes
from core.results import charts
from core.runs.directory import RunDirectory, distinct_titles, list_runs, runs_root
from core.runs.status import RunState
from core.training.evaluation import accuracy_headline, results_in_words

st.title("4. Evaluate")
run = current_run()
say_missing_run()
if run is None:
    st.info("No run yet. Train one on the Train page; its results appear here.")
    st.stop()
runs = list_runs()
finished = [r for r in runs if r.evaluation() is not None]
choices = distinct_titles([run, *[r for r in finished if r.id != run.id]])
st.session_state["eval_run"] = run.id  # the picker always shows the followed run
st.selectbox(
    "Run",
    list(choices),
    format_func=choices.get,
    key="eval_run",
    on_change=lambda: follow_run(RunDirectory(runs_root() / st.session_state["eval_run"])),
)


@st.fragment(run_every=1.0)
def still_training(run_id: str) -> None:
    """Where the followed run is; the whole page turns to its results when it finishes."""
    followed = RunDirectory(runs_root() / run_id)
    progress, status = progress_of(followed)
    if followed.evaluation() is not None:
        st.rerun(scope="app")
    scored = [e for e in progress.epochs if e.get("val_accuracy") is not None]
    so_far = f" Validation accuracy so far: {scored[-1]['val_accuracy']:.0%}." if scored else ""
    st.info(
        f"**{md_literal(followed.title())}** is still training: {progress.describe()}.{so_far} Its results appear here when it ends."
    )


@st.fragment(run_every=2.0)
def first_model_ready(run_id: str) -> None:
    """While phase 2 runs, the first model is what this page shows; when the run ends, the page turns to the kept one."""
    followed = RunDirectory(runs_root() / run_id)
    progress, status = progress_of(followed)
    if not status.state.active:
        st.rerun(scope="app")
    st.success(first_model_line(status, here=True) + f" Now: {progress.describe()}.")


evaluation = run.evaluation()
status = run.status()
if evaluation is not None and status.state.active:
    first_model_ready(run.id)
elif evaluation is None:
    if status.state.active:
        still_training(run.id)
    else:
        st.warning(f"**{md_literal(run.title())}** has no results: {status.message}")
    others = [r for r in finished if r.id != run.id]
    if others and st.button(f"Show the last finished run instead: {others[0].title()}", key="show_finished"):
        follow_run(others[0])
        st.rerun()
    st.stop()

notes = run.about().notes
if notes:
    st.caption(md_notes(notes))
names = evaluation["class_names"]
right = round(evaluation["accuracy"] * evaluation["count"])
st.metric(accuracy_headline(evaluation), f"{evaluation['accuracy']:.1%}")
st.caption(f"{right} of {evaluation['count']} right. {status.kept_in_words()}")
if status.weights_kind == "none":
    st.warning("This model started from random weights, so its accuracy is much lower than a pretrained one's.")
if status.state is RunState.STOPPED:
    st.info("This run was stopped before its end: these are the results of its most accurate epoch.")
report_download(run)
st.plotly_chart(charts.confusion_matrix(evaluation), key="confusion")

st.subheader("Class by class")
words = pd.DataFrame(results_in_words(evaluation))
st.dataframe(
    words,
    hide_index=True,
    key="per_class",
    column_config={"found": "how many it found", "right": "how often it was right"},
)

mistakes = evaluation["misclassified"]
st.subheader(f"Mistakes ({len(mistakes)}), most confident first")
if mistakes:
    mistakes_gallery(run, mistakes)
else:
    st.success("No mistakes on these photos.")

st.subheader("Review photos")
review_photos(run, names)

st.subheader("What to collect next")
collect_next(run)

st.subheader("Try it on new photos, or with the webcam")
try_photos(run, names)

st.subheader("Take the model away")
take_away(run.id)

st.subheader("Share this run")
share_panel(run)
keep_as_file(run, key="evaluate_keep")
