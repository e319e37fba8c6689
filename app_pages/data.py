"""Data: choose the photos, see what will be used, and what augmentation does to them."""

import dataclasses
from pathlib import Path

import streamlit as st

from app_pages.make_here import make_dataset_here
from app_pages.shared import current_config, current_run, load_report, next_step, set_setting, thumbnail
from app_pages.task_views import task_result
from app_pages.unsorted_views import photos_without_labels
from app_pages.widgets import dataset_summary, setting_input
from core.base.files import data_root, safe_name
from core.base.markup import md_literal
from core.base.tasks import Task
from core.data.collect import made_root
from core.data.datasets import DatasetError
from core.data.decisions import decisions_about, summary, undo
from core.data.sources import SAMPLES, data_home, server_folder, server_folders, source_label
from core.data.splits import make_splits
from core.data.uploads import store_upload
from core.network.config import BEST_NEEDS_VALIDATION

st.title("1. Data")


def review_decisions(root: str) -> None:
    """The photo review's decisions about this dataset (Evaluate page), each of which can be taken back."""
    decided = decisions_about(root)
    if not decided:
        return
    with st.expander(f"Your decisions: {summary(root)}. Training uses these; your files are unchanged."):
        for k, decision in enumerate(decided.values()):
            words, button = st.columns([5, 1], vertical_alignment="center")
            what = {"move": f"moved from {decision.was} to {decision.to}", "add": f"added to {decision.to}"}
            name = Path(decision.path).name if decision.action == "add" else decision.path
            words.caption(md_literal(f"{name}: {what.get(decision.action, 'left out')}"))
            if button.button("Undo", key=f"undo_review_{k}"):
                undo(root, str(Path(root) / decision.path))
                st.rerun()


SOURCES = ["Built-in demo", "Upload a zip", "Folder on this server", "Download a sample set", "Make one here"]
MAX_SAMPLE_CLASSES, PER_CLASS = 12, 6


def kind_of(data: str) -> int:
    """Which source option the current data came from (a new tab starts on the right one)."""
    if data == "demo":
        return 0
    if data.endswith(".zip"):
        return 1
    if Path(data).resolve().parent == made_root().resolve():
        return 4
    return 2 if Path(data).resolve().parent == data_root() else 3  # else a sample set, or a folder from the CLI


def choose_source(kind: str) -> None:
    """The widgets of one kind of source; records the data chosen (or stops the page with a message)."""
    if kind == "Built-in demo":
        set_setting("data", "demo")
        st.caption("Pictures of circles, squares, triangles and stars, drawn on the fly: no download needed.")
    elif kind == "Upload a zip":
        st.caption("A .zip with one folder per class (or train/ and val/ folders holding class folders).")
        upload = st.file_uploader("Zip of photos", type=["zip"], key="zip_upload")
        if upload is not None:
            try:  # streamed to disk in chunks, one folder per upload; the size limit is checked here too
                folder = data_home() / "uploads" / safe_name(upload.file_id, limit=80)
                limit = st.get_option("server.maxUploadSize") * 1024 * 1024
                set_setting("data", str(store_upload(upload.read, upload.name, folder, max_bytes=limit)))
            except DatasetError as error:
                st.error(str(error))
                st.stop()
    elif kind == "Folder on this server":
        root, folders = data_root(), server_folders()
        if not folders:
            st.info(
                "There are no dataset folders on this server yet. Ask whoever runs it to put one in its data folder."
            )
            with st.expander("For administrators"):
                st.caption(f"Folders are listed from {root} (set STUDIO_DATA_ROOT to use another).")
            st.stop()
        current = Path(current_config().data).name if kind_of(current_config().data) == 2 else None
        index = folders.index(current) if current in folders else None
        chosen = st.selectbox("Folder", folders, index=index, placeholder="Choose a folder", key="server_folder")
        if chosen is not None:
            try:
                set_setting("data", str(server_folder(chosen)))
            except DatasetError as error:  # a link that leads out of the data folder
                st.error(str(error))
                st.stop()
    elif kind == "Make one here":
        make_dataset_here()
    else:
        name = st.selectbox("Sample set", list(SAMPLES), format_func=lambda n: SAMPLES[n]["title"], key="sample_name")
        st.caption("Downloaded once through Keras, then kept on this machine.")
        if st.button("Use this sample", key="use_sample"):
            result, error = task_result(Task.SAMPLE, {"name": name}, "Downloading the sample set")
            if error:
                st.error(error)
                st.stop()
            set_setting("data", result["path"])


def demo_chosen() -> None:
    """The demo needs no further choice, so it is recorded as the radio changes: a person who goes
    straight on to another page, before this page has run again, still gets it."""
    if st.session_state.get("data_kind") == "Built-in demo":
        set_setting("data", "demo")


kind = st.radio(
    "Where are your photos?",
    SOURCES,
    index=kind_of(current_config().data),
    horizontal=True,
    key="data_kind",
    on_change=demo_chosen,
)
choose_source(kind)
config = current_config()
if kind == "Upload a zip" and not config.data.endswith(".zip"):
    st.stop()
report, error = load_report(config.data)
if error:
    st.error(error)
    st.stop()

st.subheader(source_label(config.data))
problems = report.problems_for_training()
for problem in problems:
    st.error(problem)
dataset_summary(report)
review_decisions(report.root)

st.subheader("Samples")
if len(report.class_names) > MAX_SAMPLE_CLASSES:
    st.caption(f"The first {MAX_SAMPLE_CLASSES} of {len(report.class_names)} classes.")
samples = {
    name: [i.path for i in report.items if i.label == name][:PER_CLASS]
    for name in report.class_names[:MAX_SAMPLE_CLASSES]
}
for name, paths in samples.items():
    st.markdown(f"**{name}**")
    st.image([thumbnail(p) for p in paths], width=110)

st.subheader("Photos without labels")
photos_without_labels(report.root, current_run())

st.subheader("Augmentation")
st.caption("During training each photo is randomly changed like this, so the model learns the subject, not the shot.")
controls, preview = st.columns([1, 3])
for name in ("flip", "rotation", "zoom", "translation", "contrast", "brightness"):
    setting_input(f"augmentation.{name}", controls)
augmentation = current_config().augmentation
if controls.button("Show new random versions", key="aug_again"):
    st.session_state["aug_seed"] = st.session_state.get("aug_seed", 0) + 1
examples = [paths[0] for paths in samples.values() if paths][:6]
if augmentation.enabled and examples:
    arguments = {
        "paths": examples,
        "augmentation": dataclasses.asdict(augmentation),
        "seed": st.session_state.get("aug_seed", 0),
    }
    with preview:
        result, error = task_result(Task.AUGMENT, arguments, "Drawing augmented versions")
    preview.image([thumbnail(p) for p in examples], width=110, caption=["original"] * len(examples))
    if error:
        preview.warning(f"The augmentation preview could not be drawn: {error}")
    else:
        preview.image(result["images"], width=110, caption=["augmented"] * len(examples))
elif augmentation.enabled:
    preview.info("Add photos to see what augmentation does to them.")
else:
    preview.info("Augmentation is off.")

if report.layout == "classes":
    st.subheader("Split")
    label = f"Validation share (scores each epoch; with {BEST_NEEDS_VALIDATION}+ photos, picks the best)"
    setting_input("val_fraction", label=label)
    setting_input("test_fraction", label="Test share (kept aside for the final score)")
else:
    plan = make_splits(report, config.val_fraction, config.test_fraction, config.seed)
    given = ", ".join(f"{split}/" for split in report.given_splits)
    st.caption(f"This dataset comes split into {given} folders. " + " ".join(plan.notes))
if not problems:
    next_step("app_pages/model.py", "Next: choose the model →")
