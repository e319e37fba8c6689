"""Make a dataset in the browser (Teachable Machine's flow): name the classes, then add photos to
each with the webcam or from files. The photos are kept on the server (`core.data.collect`)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_pages.shared import PHOTO_TYPES, current_config, set_setting
from core.base.errors import InputError
from core.data.collect import add_class, add_photo, classes_of, made_folder, made_root


def _add(folder: Path, name: str, files) -> bool:
    """Keep each new photo once (a widget hands back the same file on every rerun); say why one is refused.
    True when a photo was added."""
    seen = st.session_state.setdefault("made_seen", set())
    added = False
    for upload in files:
        if upload is None or (name, upload.file_id) in seen:
            continue
        seen.add((name, upload.file_id))
        try:
            add_photo(folder, name, upload.getvalue(), Path(upload.name).suffix)
            added = True
        except InputError as error:
            st.session_state.setdefault("made_refused", []).append(f"{upload.name}: {error}")
    return added


def make_dataset_here() -> None:
    """The dataset's name, its classes, and for each class a camera and a file drop; the page below shows the
    counts and the samples as photos come in."""
    st.caption(
        "Name your classes, then add photos to each: take them with the webcam or drop files. "
        "Aim for at least 10 photos of each class, from different angles and backgrounds."
    )
    current = Path(current_config().data)
    default = current.name if current.parent.resolve() == made_root().resolve() else "my-photos"
    try:
        folder = made_folder(st.text_input("Dataset name", value=default, key="made_name", max_chars=60))
    except InputError as error:
        st.error(str(error))
        st.stop()
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    new_class = left.text_input("New class", key="made_new_class", placeholder="for example: thumbs up", max_chars=60)
    if right.button("Add class", key="made_add_class") and new_class.strip():
        try:
            add_class(folder, new_class)
        except InputError as error:
            st.error(str(error))
    classes = classes_of(folder)
    if not classes:
        st.info("Add the first class to start.")
        st.stop()
    for refused in st.session_state.pop("made_refused", []):
        st.error(refused)
    tabs = st.tabs([f"{name} ({count})" for name, count in classes.items()])
    added = False
    for tab, name in zip(tabs, classes, strict=True):
        with tab:
            camera, files = st.columns(2)
            shot = camera.camera_input(f"Take a photo of {name}", key=f"made_camera_{name}")
            dropped = files.file_uploader(
                f"Or add photos of {name}", type=PHOTO_TYPES, accept_multiple_files=True, key=f"made_files_{name}"
            )
            added = _add(folder, name, [shot, *(dropped or [])]) or added
    set_setting("data", str(folder))
    if added or st.session_state.get("made_refused"):
        st.rerun()  # the counts in the tabs, and the summary below, include the new photos
