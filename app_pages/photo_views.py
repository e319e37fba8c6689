"""Photos under the model's eye: the mistakes gallery, and trying new photos (files or the webcam),
each as the photo or as a Grad-CAM heatmap of what the model looked at (made by the `explain` task)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st
from PIL import Image

from app_pages.shared import PHOTO_TYPES, task_result, thumbnail
from core.files import data_home, write_atomic
from core.images import ImageRejected
from core.overrides import decide, decision_for, summary, undo
from core.runs import RunDirectory

HEAT_NOTE = "Warm colours: the parts of the photo that pushed the model towards that class."


def _heatmaps(run: RunDirectory, paths: list[str], classes: list[str | None]) -> dict[str, str] | None:
    """The overlay for each photo (its path by photo), or None with the reason shown."""
    args = {"run_dir": str(run.path), "image_paths": paths, "class_names": classes}
    result, error = task_result("explain", args, "Working out where the model looked")
    if error:
        st.error(f"The heatmaps could not be made: {error}")
        return None
    return {a["path"]: a["heatmap"] for a in result["explanations"] if "heatmap" in a}


def _picture(overlays: dict[str, str], path: str, size: int = 160):
    """The photo's heatmap overlay when there is one, else the photo itself."""
    heat = overlays.get(path)
    return Image.open(heat) if heat else thumbnail(path, size)


def mistakes_gallery(run: RunDirectory, mistakes: list[dict]) -> None:
    """The test photos it got wrong, most confident first; or where it looked, for its answer or the right one."""
    shown = mistakes[:24]
    views = ["Photos", "Heatmap of its answer", "Heatmap of the right class"]
    view = st.segmented_control("Show", views, default="Photos", key="mistake_view") or "Photos"
    overlays = {}
    if view != "Photos":
        classes = [m["true"] if view == views[2] else None for m in shown]
        overlays = _heatmaps(run, [m["path"] for m in shown], classes) or {}
        st.caption(HEAT_NOTE)
    images, captions = [], []
    for mistake in shown:
        try:
            images.append(_picture(overlays, mistake["path"]))
            captions.append(
                f"a {mistake['true']} taken for a {mistake['predicted']} ({mistake['confidence']:.0%} sure)"
            )
        except (OSError, ImageRejected):
            continue
    if images:
        st.image(images, caption=captions, width=150)
    else:
        st.caption("These photos are not on this server (the run was opened from a file, or they were moved).")


def _saved(uploads) -> list[tuple[str, str]]:
    """Uploaded or captured photos written once under the data folder, named by their content."""
    folder = data_home() / "uploads" / "predict"
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for upload in uploads[:12]:
        data = upload.getvalue()
        path = folder / f"{hashlib.sha1(data).hexdigest()[:16]}{Path(upload.name).suffix.lower() or '.jpg'}"
        if not path.exists():
            write_atomic(path, data)
        saved.append((upload.name, str(path)))
    return saved


def try_photos(run: RunDirectory, names: list[str]) -> None:
    """Photos from files or the webcam, and the model's top classes for each (and, on request, where it looked);
    a photo unlike all the classes is said to be."""
    source = st.segmented_control("Photos from", ["Files", "The webcam"], default="Files", key="try_source")
    if source == "The webcam":
        shot = st.camera_input("Take a photo", key="try_camera")
        uploads = [shot] if shot is not None else []
    else:
        uploads = st.file_uploader("Photos", type=PHOTO_TYPES, accept_multiple_files=True, key="try_photos") or []
    if not uploads:
        return
    saved = _saved(uploads)
    paths = [p for _, p in saved]
    result, error = task_result("predict", {"run_dir": str(run.path), "image_paths": paths}, "Asking the model")
    if error:
        st.error(f"The model could not make predictions: {error}")
        return
    overlays = {}
    if st.toggle("Show what the model looked at", key="try_heat"):
        overlays = _heatmaps(run, paths, [None] * len(paths)) or {}
        st.caption(HEAT_NOTE)
    columns = st.columns(4)
    for k, ((name, path), prediction) in enumerate(zip(saved, result["predictions"], strict=True)):
        with columns[k % 4]:
            if "error" in prediction:
                st.error(f"{name}: {prediction['error']}")
                continue
            st.image(_picture(overlays, path), caption=name, width=160)
            if prediction.get("unfamiliar"):
                st.warning(f"This photo does not look like any of your classes ({', '.join(names)}).")
            for label, probability in prediction["top"]:
                st.progress(probability, text=f"{label}: {probability:.0%}")


def _decided(root: str, photo: dict, key: str) -> None:
    choice = st.session_state[key]
    if choice == "keep":
        undo(root, photo["path"])
    elif choice == "exclude":
        decide(root, photo["path"], "exclude", was=photo["label"])
    else:
        decide(root, photo["path"], "move", was=photo["label"], to=choice.split(":", 1)[1])


def review_photos(run: RunDirectory, names: list[str]) -> None:
    """The photos most worth a second look, each with a decision: keep, move to another class, or leave out."""
    root = (run.dataset() or {}).get("root")
    if not root or not Path(root).is_dir():
        st.caption("This run's photos are no longer on the server, so they cannot be reviewed.")
        return
    st.caption(
        "The test mistakes, and the training and validation photos this model finds hardest, most suspicious "
        "first: often a wrong label, a poor example, or a photo of two things. Your decisions are kept beside "
        "the dataset (your files are never moved or deleted), can be taken back, and the next run uses them."
    )
    if not st.toggle("Review photos", key="review_on"):
        return
    result, error = task_result("review", {"run_dir": str(run.path)}, "Finding the photos the model finds hardest")
    if error:
        st.error(f"The photos to review could not be found: {error}")
        return
    done = summary(root)
    st.info(f"Decided so far: {done}. Train again to use them." if done else "No decisions yet.")
    overlays = {}
    if st.toggle("Show what the model looked at", key="review_heat"):
        paths = [photo["path"] for photo in result["photos"]]
        overlays = _heatmaps(run, paths, [None] * len(paths)) or {}
        st.caption(HEAT_NOTE)
    columns = st.columns(4)
    for k, photo in enumerate(result["photos"]):
        key = "review_" + hashlib.sha1(photo["path"].encode()).hexdigest()[:12]
        options = ["keep"] + [f"move:{n}" for n in names if n != photo["label"]] + ["exclude"]
        decision = decision_for(root, photo["path"])
        current = {"move": f"move:{decision.to}", "exclude": "exclude"}.get(decision.action) if decision else "keep"
        with columns[k % 4]:
            try:
                st.image(_picture(overlays, photo["path"]), width=160)
            except (OSError, ImageRejected):
                continue
            st.caption(
                f"{photo['split']} · labelled **{photo['label']}** · the model says {photo['predicted']} "
                f"({photo['confidence']:.0%})"
            )
            st.selectbox(
                "Decision",
                options,
                index=options.index(current) if current in options else 0,
                format_func=lambda o, label=photo["label"]: {"keep": f"Keep as {label}", "exclude": "Leave out"}.get(
                    o, f"Move to {o.split(':', 1)[-1]}"
                ),
                key=key,
                on_change=_decided,
                args=(root, photo, key),
                label_visibility="collapsed",
            )
    near_copies(result.get("pairs") or [])


def near_copies(pairs: list[dict]) -> None:
    """Photos that are nearly the same picture, side by side: one of each pair is usually worth leaving out,
    and a pair across training and test makes the test score look better than it is."""
    st.markdown("**Near-copies**")
    if not pairs:
        st.caption("No two photos are near-copies of each other.")
        return
    st.caption("Pairs the model sees as nearly the same picture, most alike first.")
    for pair in pairs:
        images = []
        for path in pair["paths"]:
            try:
                images.append(thumbnail(path, 120))
            except (OSError, ImageRejected):
                break
        if len(images) == 2:
            captions = [f"{split} · {label}" for split, label in zip(pair["splits"], pair["labels"], strict=True)]
            st.image(images, caption=captions, width=120)
            st.caption(f"{pair['similarity']:.1%} alike")
