"""Photos under the model's eye: the mistakes gallery, and trying new photos (files or the webcam),
each as the photo or as a Grad-CAM heatmap of what the model looked at (made by the `explain` task)."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import streamlit as st
from PIL import Image

from app_pages.shared import PHOTO_TYPES, thumbnail
from app_pages.task_views import task_result
from core.base.tasks import Task
from core.data.decisions import apply_choice, choice_of, choice_words, choices, decision_for, summary
from core.data.images import ImageRejected
from core.data.uploads import TRY_MAX_BYTES, TRY_PER_PICK, TriedPhoto, forget_tried_photos, keep_tried_photos
from core.results.review import review_words
from core.runs.directory import RunDirectory
from core.training.evaluation import mistake_caption

HEAT_NOTE = "Warm colours: the parts of the photo that pushed the model towards that class."


def _heatmaps(run: RunDirectory, paths: list[str], classes: list[str | None]) -> dict[str, str | None] | None:
    """The overlay for each photo (its path by photo; None where nothing pointed to the class, so the photo is
    shown with that said instead of an empty picture), or None with the reason shown."""
    args = {"run_dir": str(run.path), "image_paths": paths, "class_names": classes}
    result, error = task_result(Task.EXPLAIN, args, "Working out where the model looked")
    if error:
        st.error(f"The heatmaps could not be made: {error}")
        return None
    return {a["path"]: a.get("heatmap") for a in result["explanations"] if "heatmap" in a or a.get("flat")}


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
            flat = view != "Photos" and mistake["path"] in overlays and overlays[mistake["path"]] is None
            captions.append(mistake_caption(mistake) + (" · nothing in it pointed to that class" if flat else ""))
        except (OSError, ImageRejected):
            continue
    if images:
        st.image(images, caption=captions, width=150)
    else:
        st.caption("These photos are not on this server (the run was opened from a file, or they were moved).")


def try_photos(run: RunDirectory, names: list[str], quota_key: str | None = None) -> None:
    """Photos from files or the webcam, and the model's top classes for each (and, on request, where it looked);
    a photo unlike all the classes is said to be.

    Each photo is checked before it is kept, kept only while its answer is shown, and counted against
    `quota_key`'s hourly allowance (a read-only link's).
    """
    source = st.segmented_control("Photos from", ["Files", "The webcam"], default="Files", key="try_source")
    if source == "The webcam":
        shot = st.camera_input("Take a photo", key="try_camera")
        uploads = [shot] if shot is not None else []
    else:
        uploads = (
            st.file_uploader(
                f"Photos (up to {TRY_PER_PICK} at a time, {TRY_MAX_BYTES // 2**20} MB each)",
                type=PHOTO_TYPES,
                accept_multiple_files=True,
                key="try_photos",
                max_upload_size=TRY_MAX_BYTES // 2**20,
            )
            or []
        )
    if not uploads:
        return
    space = st.session_state.setdefault("try_space", secrets.token_hex(8))  # this tab's own folder
    named = [("Photo from the webcam" if source == "The webcam" else upload.name, upload) for upload in uploads]
    photos = keep_tried_photos([(name, upload.getvalue()) for name, upload in named], space, quota_key)
    try:
        _answers(run, names, photos)
    finally:
        forget_tried_photos(photos)  # a tried photo stays only while its answer is shown


def _answers(run: RunDirectory, names: list[str], photos: list[TriedPhoto]) -> None:
    for photo in photos:
        if photo.refusal:
            st.warning(f"{photo.name}: {photo.refusal}.")
    kept = [photo for photo in photos if photo.path]
    if not kept:
        return
    paths = [photo.path for photo in kept]
    result, error = task_result(Task.PREDICT, {"run_dir": str(run.path), "image_paths": paths}, "Asking the model")
    if error:
        st.error(f"The model could not make predictions: {error}")
        return
    overlays = {}
    if st.toggle("Show what the model looked at", key="try_heat"):
        overlays = _heatmaps(run, paths, [None] * len(paths)) or {}
        st.caption(HEAT_NOTE)
    columns = st.columns(4)
    for k, (photo, prediction) in enumerate(zip(kept, result["predictions"], strict=True)):
        with columns[k % 4]:
            if "error" in prediction:
                st.error(f"{photo.name}: {prediction['error']}")
                continue
            st.image(_picture(overlays, photo.path), caption=photo.name, width=160)
            if prediction.get("unfamiliar"):
                st.warning(f"This photo does not look like any of your classes ({', '.join(names)}).")
            for label, probability in prediction["top"]:
                st.progress(probability, text=f"{label}: {probability:.0%}")


def _decided(root: str, photo: dict, key: str) -> None:
    apply_choice(root, photo["path"], photo["given"], st.session_state[key])


def review_photos(run: RunDirectory, names: list[str]) -> None:
    """The photos most worth a second look, each with a decision: keep, move to another class, or leave out."""
    root = (run.dataset() or {}).get("root")
    if not root or not Path(root).is_dir():
        st.caption("This run's photos are no longer on the server, so they cannot be reviewed.")
        return
    st.caption(
        "The training and validation photos that are probably in the wrong class, or unlike every class, most "
        "suspicious first. Each is judged by a model that never saw it, so a wrong label cannot hide by being "
        "learned. Your decisions are kept beside the dataset (your files are never moved or deleted), can be "
        "taken back, and the next run uses them."
    )
    if not st.toggle("Review photos", key="review_on"):
        return
    result, error = task_result(
        Task.REVIEW, {"run_dir": str(run.path)}, "Judging each photo with a model that never saw it"
    )
    if error:
        st.error(f"The photos to review could not be found: {error}")
        return
    flagged = len(result["photos"])
    st.caption(
        f"{result.get('reviewed', 0)} photos judged by {result.get('judged_by', 'the model')}: "
        + (f"{flagged} worth a look." if flagged else "none looks mislabelled or out of place.")
    )
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
        options = choices(names, photo["given"])
        current = choice_of(decision_for(root, photo["path"]))
        with columns[k % 4]:
            try:
                st.image(_picture(overlays, photo["path"]), width=160)
            except (OSError, ImageRejected):
                continue
            st.caption(review_words(photo))
            st.selectbox(
                "Decision",
                options,
                index=options.index(current) if current in options else 0,
                format_func=lambda choice, label=photo["given"]: choice_words(choice, label),
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
