"""Evaluate: how good the model is, where it errs, what it says about new photos, and the file."""

import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages.shared import current_run, follow_run, task_result, thumbnail
from core import charts
from core.images import ImageRejected
from core.runs import list_runs
from core.sources import data_home

st.title("4. Evaluate")
finished = [r for r in list_runs() if r.evaluation() is not None]
if not finished:
    st.info("No finished run yet. Train one on the Train page; its results appear here.")
    st.stop()
current = current_run()
ids = [r.id for r in finished]
index = ids.index(current.id) if current and current.id in ids else 0
chosen = st.selectbox("Run", ids, index=index, key="eval_run")
run = finished[ids.index(chosen)]
if current is None or current.id != run.id:
    follow_run(run)
evaluation = run.evaluation()
names = evaluation["class_names"]
split_name = "test" if evaluation["split"] == "test" else f"{evaluation['split']} (no test split)"

one, two, three = st.columns(3)
one.metric(f"Accuracy on {split_name} photos", f"{evaluation['accuracy']:.1%}")
two.metric("Loss", f"{evaluation['loss']:.3f}")
three.metric("Photos checked", evaluation["count"])
if run.status().weights_kind == "none":
    st.warning("This model started from random weights, so its accuracy is much lower than a pretrained one's.")
st.plotly_chart(charts.confusion_matrix(evaluation), key="confusion")

st.subheader("Per class")
st.dataframe(
    pd.DataFrame(evaluation["per_class"]),
    hide_index=True,
    key="per_class",
    column_config={c: st.column_config.NumberColumn(format="%.2f") for c in ("precision", "recall", "f1")},
)
st.caption(
    "Precision: of the photos it called this class, how many were. Recall: of this class's photos, how many it found."
)

mistakes = evaluation["misclassified"]
st.subheader(f"Mistakes ({len(mistakes)}), most confident first")
if mistakes:
    shown = mistakes[:24]
    images, captions = [], []
    for mistake in shown:
        try:
            images.append(thumbnail(mistake["path"], 160))
            captions.append(f"{mistake['true']} → {mistake['predicted']} ({mistake['confidence']:.0%})")
        except (OSError, ImageRejected):
            continue
    st.image(images, caption=captions, width=150)
else:
    st.success("No mistakes on these photos.")

st.subheader("Try it on new photos")
uploads = st.file_uploader(
    "Photos",
    type=["jpg", "jpeg", "png", "gif", "bmp", "webp", "tif", "tiff"],
    accept_multiple_files=True,
    key="try_photos",
)
if uploads:
    folder = data_home() / "uploads" / "predict"
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for upload in uploads[:12]:
        data = upload.getvalue()
        path = folder / f"{hashlib.sha1(data).hexdigest()[:16]}{Path(upload.name).suffix.lower()}"
        if not path.exists():
            path.write_bytes(data)
        saved.append((upload.name, str(path)))
    arguments = {
        "model_path": str(run.model_path),
        "image_paths": [p for _, p in saved],
        "class_names": names,
        "image_size": run.image_size(),
    }
    result, error = task_result("predict", arguments, "Asking the model")
    if error:
        st.error(f"The model could not make predictions: {error}")
    else:
        columns = st.columns(4)
        for k, ((name, path), prediction) in enumerate(zip(saved, result["predictions"], strict=True)):
            with columns[k % 4]:
                if "error" in prediction:
                    st.error(f"{name}: {prediction['error']}")
                    continue
                st.image(thumbnail(path, 160), caption=name, width=160)
                for label, probability in prediction["top"]:
                    st.progress(probability, text=f"{label}: {probability:.0%}")

st.subheader("Take the model away")
st.caption(
    "A Keras file that takes plain RGB photos (any size) and returns class probabilities, in the order "
    + ", ".join(names)
    + ". Load it with keras.models.load_model."
)
st.download_button(
    "Download model (.keras)",
    data=run.model_path.read_bytes(),
    file_name=f"{run.id}.keras",
    mime="application/octet-stream",
    key="download_model",
)
