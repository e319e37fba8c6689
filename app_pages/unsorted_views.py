"""Photos without labels (Data page): the followed run's model suggests a class for each, grouped by class with the
least certain first; the person adds them to the dataset, a class at once or photo by photo, and can take each back.
Their files are kept in the app's data folder; the dataset's own files are never touched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from app_pages.shared import PHOTO_TYPES, thumbnail
from app_pages.task_views import task_result
from core.base.markup import md_literal
from core.base.tasks import Task
from core.data.datasets import DatasetError
from core.data.decisions import decide, decisions_about, prune_unsorted, undo, unsorted_home
from core.data.images import ImageRejected
from core.data.uploads import extract_zip, store_upload
from core.runs.directory import RunDirectory

SHOWN_PER_CLASS = 24


def photos_without_labels(root: str, run: RunDirectory | None) -> None:
    """Upload photos nobody has sorted, see the class the model suggests for each, and add them to the dataset."""
    trained = run is not None and run.model_path.exists() and (run.dataset() or {}).get("root") == root
    if not trained or run is None:
        st.caption("Once a run has trained on these photos, its model can suggest a class for photos without labels.")
        return
    uploads = st.file_uploader(
        "Photos without labels, or a zip of them",
        type=[*PHOTO_TYPES, "zip"],
        accept_multiple_files=True,
        key="unsorted_upload",
    )
    if not uploads:
        return
    folder = unsorted_home() / hashlib.sha1("/".join(u.file_id for u in uploads).encode()).hexdigest()[:16]
    if not folder.exists():
        prune_unsorted(keep=folder)  # uploads from over a week ago that nobody added anything from
    limit = st.get_option("server.maxUploadSize") * 1024 * 1024
    try:
        for upload in uploads:
            stored = store_upload(upload.read, upload.name, folder / "files", max_bytes=limit)
            if stored.suffix == ".zip" and not (folder / stored.stem).exists():
                extract_zip(stored, folder / stored.stem)
    except DatasetError as error:
        st.error(str(error))
        return
    result, error = task_result(
        Task.SUGGEST, {"run_dir": str(run.path), "folder": str(folder)}, "Suggesting a class for each photo"
    )
    if error:
        st.error(f"No classes could be suggested: {error}")
        return
    _suggestions(root, result["suggestions"])


def _suggestions(root: str, suggestions: list[dict]) -> None:
    added = {d.path: d.to for d in decisions_about(root).values() if d.action == "add"}
    unread = [s for s in suggestions if s["error"]]
    if unread:
        st.warning(f"{len(unread)} file{'s' * (len(unread) != 1)} could not be read as photos and are left out.")
    groups: dict[str, list[dict]] = {}
    for suggestion in suggestions:
        if not suggestion["error"]:
            groups.setdefault(suggestion["suggested"], []).append(suggestion)
    st.caption("Grouped by the class the model suggests, the least certain first: those are worth a look.")
    for k, (name, group) in enumerate(groups.items()):
        waiting = [s for s in group if str(Path(s["path"]).resolve()) not in added]
        st.markdown(
            f"**{md_literal(name)}**: {len(group)} photo{'s' * (len(group) != 1)}, {len(group) - len(waiting)} added"
        )
        what = f"all {len(waiting)}" if len(waiting) > 1 else "the photo"
        if waiting and st.button(f"Add {what} as {md_literal(name)}", key=f"unsorted_all_{k}"):
            for suggestion in waiting:
                decide(root, suggestion["path"], "add", was="", to=name)
            st.rerun()
        columns = st.columns(6)
        for j, suggestion in enumerate(group[:SHOWN_PER_CLASS]):
            with columns[j % 6]:
                _photo(root, suggestion, added, f"{k}_{j}")


def _photo(root: str, suggestion: dict, added: dict[str, str], key: str) -> None:
    try:
        st.image(thumbnail(suggestion["path"], 120), width=120)
    except (OSError, ImageRejected):
        return
    odd = " · unlike every class" if suggestion["unlike_all"] else ""
    st.caption(f"{suggestion['confidence']:.0%} sure{odd}")
    if str(Path(suggestion["path"]).resolve()) in added:
        if st.button("Undo", key=f"unsorted_undo_{key}"):
            undo(root, suggestion["path"])
            st.rerun()
    elif st.button("Add", key=f"unsorted_add_{key}", help=f"Add this photo to {md_literal(suggestion['suggested'])}"):
        decide(root, suggestion["path"], "add", was="", to=suggestion["suggested"])
        st.rerun()
