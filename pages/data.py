"""Data: choose the photos, see what will be used, and what augmentation does to them."""

import dataclasses
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

from core.config import BEST_NEEDS_VALIDATION, AugmentationConfig
from core.datasets import SAMPLES, DatasetError, data_home, store_upload
from core.runs import safe_name
from pages.shared import (
    current_config,
    data_label,
    data_root,
    load_report,
    next_step,
    require_app,
    set_choice,
    task_result,
    thumbnail,
)

require_app("pages/data.py")
st.title("1. Data")
config = current_config()
SOURCES = ["Built-in demo", "Upload a zip", "Folder on this server", "Download a sample set"]


def kind_of(data: str) -> int:
    """Which source option the current data came from (a new tab starts on the right one)."""
    if data == "demo":
        return 0
    if data.endswith(".zip"):
        return 1
    if Path(data).resolve().parent == data_root():
        return 2
    return 3  # a downloaded sample set (or a folder chosen outside the dashboard)


kind = st.radio("Where are your photos?", SOURCES, index=kind_of(config.data), horizontal=True, key="data_kind")

if kind == "Built-in demo":
    set_choice(data="demo")
    st.caption("Pictures of circles, squares, triangles and stars, drawn on the fly: no download needed.")
elif kind == "Upload a zip":
    st.caption("A .zip with one folder per class (or train/ and val/ folders holding class folders).")
    upload = st.file_uploader("Zip of photos", type=["zip"], key="zip_upload")
    if upload is not None:
        try:  # streamed to disk in chunks, one folder per upload; the size limit is checked here too
            path = store_upload(
                upload.read,
                upload.name,
                data_home() / "uploads" / safe_name(upload.file_id, limit=80),
                max_bytes=st.get_option("server.maxUploadSize") * 1024 * 1024,
            )
        except DatasetError as error:
            st.error(str(error))
            st.stop()
        set_choice(data=str(path))
elif kind == "Folder on this server":
    root = data_root()
    folders = (
        sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    )
    if not folders:
        st.info(f"No folders in {root}. Put a dataset folder there (or set STUDIO_DATA_ROOT).")
        st.stop()
    current_folder = Path(config.data).name if kind_of(config.data) == 2 else None
    chosen = st.selectbox(
        "Folder",
        folders,
        index=folders.index(current_folder) if current_folder in folders else None,
        placeholder="Choose a folder",
        key="server_folder",
    )
    if chosen is not None:
        path = (root / chosen).resolve()
        if path.parent != root:  # a link that leads out of the data folder
            st.error("That folder is outside the data folder and cannot be used.")
            st.stop()
        set_choice(data=str(path))
else:
    names = list(SAMPLES)
    name = st.selectbox("Sample set", names, format_func=lambda n: SAMPLES[n]["title"], key="sample_name")
    st.caption("Downloaded once through Keras, then kept on this machine.")
    if st.button("Use this sample", key="use_sample"):
        result, error = task_result("sample", {"name": name}, "Downloading the sample set")
        if error:
            st.error(error)
            st.stop()
        set_choice(data=result["path"])

config = current_config()
if kind == "Upload a zip" and not config.data.endswith(".zip"):
    st.stop()
report, error = load_report(config.data)
if error:
    st.error(error)
    st.stop()

st.subheader(data_label(config.data))
totals = report.class_totals()
problems = report.problems_for_training()
for problem in problems:
    st.error(problem)
left, right = st.columns([3, 2])
with left:
    counts = pd.DataFrame(
        [
            {"class": name, "split": split, "images": n}
            for name, row in report.counts().items()
            for split, n in row.items()
        ]
    )
    if not counts.empty:
        figure = px.bar(counts, x="class", y="images", color="split", title="Photos per class", height=320)
        st.plotly_chart(figure, key="class_counts")
with right:
    st.metric("Usable photos", sum(totals.values()))
    st.metric("Classes", len(report.class_names))
    st.metric("Left out", len(report.skipped))
    st.caption(f"Formats: {', '.join(f'{k} {v}' for k, v in report.formats().items()) or '-'}")
for warning in report.warnings:
    st.warning(warning)
if report.skipped:
    with st.expander(f"{len(report.skipped)} file(s) left out, and why"):
        st.dataframe(pd.DataFrame([{"file": s.path, "reason": s.reason} for s in report.skipped]), key="skipped")

st.subheader("Samples")
per_class = 6
MAX_SAMPLE_CLASSES = 12
shown_classes = report.class_names[:MAX_SAMPLE_CLASSES]
if len(report.class_names) > MAX_SAMPLE_CLASSES:
    st.caption(f"The first {MAX_SAMPLE_CLASSES} of {len(report.class_names)} classes.")
samples = {name: [i.path for i in report.items if i.label == name][:per_class] for name in shown_classes}
for name, paths in samples.items():
    st.markdown(f"**{name}**")
    st.image([thumbnail(p) for p in paths], width=110)

st.subheader("Augmentation")
st.caption("During training each photo is randomly changed like this, so the model learns the subject, not the shot.")
controls, preview = st.columns([1, 3])
with controls:
    aug = config.augmentation
    chosen = AugmentationConfig(
        horizontal_flip=st.checkbox("Flip left-right", aug.horizontal_flip, key="aug_hflip"),
        vertical_flip=st.checkbox("Flip upside down", aug.vertical_flip, key="aug_vflip"),
        rotation=st.slider("Rotate (fraction of a turn)", 0.0, 0.5, aug.rotation, 0.05, key="aug_rotation"),
        zoom=st.slider("Zoom", 0.0, 0.5, aug.zoom, 0.05, key="aug_zoom"),
        translation=st.slider("Shift", 0.0, 0.5, aug.translation, 0.05, key="aug_translation"),
        contrast=st.slider("Contrast", 0.0, 0.9, aug.contrast, 0.05, key="aug_contrast"),
        brightness=st.slider("Brightness", 0.0, 0.9, aug.brightness, 0.05, key="aug_brightness"),
    )
    set_choice(augmentation=chosen)
    regenerate = st.button("Show new random versions", key="aug_again")
with preview:
    if regenerate:
        st.session_state["aug_seed"] = st.session_state.get("aug_seed", 0) + 1
    examples = [paths[0] for paths in samples.values() if paths][:6]
    if chosen.enabled and examples:
        arguments = {
            "paths": examples,
            "augmentation": dataclasses.asdict(chosen),
            "seed": st.session_state.get("aug_seed", 0),
        }
        result, error = task_result("augment", arguments, "Drawing augmented versions")
        st.image([thumbnail(p) for p in examples], width=110, caption=["original"] * len(examples))
        if error:
            st.warning(f"The augmentation preview could not be drawn: {error}")
        else:
            st.image(result["images"], width=110, caption=["augmented"] * len(examples))
    else:
        st.info("Augmentation is off.")

if report.layout == "classes":
    st.subheader("Split")
    val = st.slider(
        f"Validation share (scores each epoch; with {BEST_NEEDS_VALIDATION}+ photos, picks the best)",
        0.05,
        0.4,
        config.val_fraction,
        0.05,
        key="val_fraction",
    )
    test = st.slider(
        "Test share (kept aside for the final score)", 0.0, 0.4, config.test_fraction, 0.05, key="test_fraction"
    )
    set_choice(val_fraction=val, test_fraction=test)
else:
    st.caption("This dataset comes split into " + ", ".join(report.given_splits) + " folders; they are used as given.")
if not problems:
    next_step("pages/model.py", "Next: choose the model →")
