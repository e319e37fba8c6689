"""Photos under the model's eye: the mistakes gallery, and trying new photos (files or the webcam),
each as the photo or as a heatmap of what the model looked at (made by the `explain` task)."""

from __future__ import annotations

import secrets

import streamlit as st
from PIL import Image

from app_pages.shared import PHOTO_TYPES, thumbnail
from app_pages.task_views import task_result
from core.base.tasks import Task
from core.data.images import ImageRejected
from core.data.uploads import TRY_MAX_BYTES, TRY_PER_PICK, TriedPhoto, forget_tried_photos, keep_tried_photos
from core.results.explain import heatmap_note
from core.runs.directory import RunDirectory
from core.training.evaluation import mistake_caption


def heatmaps_of(run: RunDirectory, paths: list[str], classes: list[str | None]) -> dict[str, dict] | None:
    """Each photo's answer by path: its overlay (`heatmap`), or why none is worth showing (`not_shown`: nothing
    pointed to the class, or the model is unsure), so the photo is shown with that said instead. None, with the
    reason shown, when the heatmaps could not be made."""
    args = {"run_dir": str(run.path), "image_paths": paths, "class_names": classes}
    result, error = task_result(Task.EXPLAIN, args, "Working out where the model looked")
    if error:
        st.error(f"The heatmaps could not be made: {error}")
        return None
    return {a["path"]: a for a in result["explanations"] if "heatmap" in a or "not_shown" in a}


def picture_of(overlays: dict[str, dict], path: str, size: int = 160):
    """The photo's heatmap overlay when there is one, else the photo itself."""
    heat = (overlays.get(path) or {}).get("heatmap")
    return Image.open(heat) if heat else thumbnail(path, size)


def not_shown(overlays: dict[str, dict], path: str) -> str:
    """Why the photo is shown without its heatmap (" · " and the words), or ""."""
    why = (overlays.get(path) or {}).get("not_shown")
    return f" · {why}" if why else ""


def mistakes_gallery(run: RunDirectory, mistakes: list[dict]) -> None:
    """The test photos it got wrong, most confident first; or where it looked, for its answer or the right one."""
    shown = mistakes[:24]
    views = ["Photos", "Heatmap of its answer", "Heatmap of the right class"]
    view = st.segmented_control("Show", views, default="Photos", key="mistake_view") or "Photos"
    overlays = {}
    if view != "Photos":
        classes = [m["true"] if view == views[2] else None for m in shown]
        overlays = heatmaps_of(run, [m["path"] for m in shown], classes) or {}
        st.caption(heatmap_note(run))
    images, captions = [], []
    for mistake in shown:
        try:
            images.append(picture_of(overlays, mistake["path"]))
            captions.append(mistake_caption(mistake) + not_shown(overlays, mistake["path"]))
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
        overlays = heatmaps_of(run, paths, [None] * len(paths)) or {}
        st.caption(heatmap_note(run))
    columns = st.columns(4)
    for k, (photo, prediction) in enumerate(zip(kept, result["predictions"], strict=True)):
        with columns[k % 4]:
            if "error" in prediction:
                st.error(f"{photo.name}: {prediction['error']}")
                continue
            st.image(picture_of(overlays, photo.path), caption=photo.name + not_shown(overlays, photo.path), width=160)
            if prediction.get("unfamiliar"):
                st.warning(f"This photo does not look like any of your classes ({', '.join(names)}).")
            for label, probability in prediction["top"]:
                st.progress(probability, text=f"{label}: {probability:.0%}")
