"""A shared run, read-only: its results, curves, the report and trying it on a photo, and nothing else.

Opened through a signed link (`?share=TOKEN`, `core.sharing.links`); the token is checked on every
rerun, so a link turned off stops working at the person's next click.
"""

import streamlit as st

from app_pages.photo_views import try_photos
from app_pages.run_views import progress_of
from app_pages.share_views import report_download
from core.base.files import safe_name
from core.base.markup import md_literal, md_notes
from core.results import charts
from core.results.report import accuracy_interval
from core.runs.directory import RunDirectory, runs_root
from core.sharing import links as sharing
from core.training.evaluation import accuracy_headline, results_in_words

try:
    link = sharing.open_link(st.query_params.get("share", ""))
except sharing.ShareRefused as error:
    st.title("Fine-Tune Studio")
    st.error(str(error))
    st.stop()
run = RunDirectory(runs_root() / safe_name(link.run, limit=200))
evaluation = run.evaluation() if run.config_path.is_file() else None
if evaluation is None:
    st.title("Fine-Tune Studio")
    st.error("This run has no results to show any more. Ask the person who shared it for a new link.")
    st.stop()

st.caption("Shared with you from Fine-Tune Studio (read-only)")
st.title(md_literal(run.title()))
notes = run.about().notes
if notes:
    st.markdown(md_notes(notes))
count = evaluation["count"]
right = round(evaluation["accuracy"] * count)
low, high = accuracy_interval(right, count)
st.metric(accuracy_headline(evaluation), f"{evaluation['accuracy']:.1%}")
st.caption(f"{right} of {count} right. On photos like these, between {low:.0%} and {high:.0%} (95% confidence).")
report_download(run, key="shared_report")

st.subheader("How it learned")
progress, _ = progress_of(run)
st.plotly_chart(charts.training_curve(progress, "accuracy", "Accuracy (higher is better)"), key="shared_curve")

st.subheader("Where it errs")
st.plotly_chart(charts.confusion_matrix(evaluation), key="shared_confusion")
st.dataframe(
    results_in_words(evaluation),
    hide_index=True,
    key="shared_per_class",
    column_config={"found": "how many it found", "right": "how often it was right"},
)

st.subheader("Try it on a photo")
try_photos(run, evaluation["class_names"], quota_key=f"link:{link.link}")
