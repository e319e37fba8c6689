"""The photo review on the Evaluate page: photos probably in the wrong class or unlike the rest, each with a
decision; the near-copies; and what to collect next."""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from app_pages.photo_views import heatmaps_of, not_shown, picture_of
from app_pages.shared import thumbnail
from app_pages.task_views import task_result
from core.base.markup import md_literal
from core.base.tasks import Task
from core.data.decisions import apply_choice, choice_of, choice_words, choices, decision_for, summary
from core.data.images import ImageRejected
from core.results import charts
from core.results.explain import heatmap_note
from core.results.review import review_summary, review_words
from core.runs.directory import RunDirectory


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
        "suspicious first. Each is judged by a classifier trained without that photo, so its own label cannot "
        "sway the verdict. Your decisions are kept beside the dataset (your files are never moved or deleted), can be "
        "taken back, and the next run uses them."
    )
    if not st.toggle("Review photos", key="review_on"):
        return
    result, error = task_result(
        Task.REVIEW, {"run_dir": str(run.path)}, "Judging each photo with a classifier trained without it"
    )
    if error:
        st.error(f"The photos to review could not be found: {error}")
        return
    st.caption(review_summary(result))
    done = summary(root)
    st.info(f"Decided so far: {done}. Train again to use them." if done else "No decisions yet.")
    overlays = {}
    if st.toggle("Show what the model looked at", key="review_heat"):
        paths = [photo["path"] for photo in result["photos"]]
        overlays = heatmaps_of(run, paths, [None] * len(paths)) or {}
        st.caption(heatmap_note(run))
    columns = st.columns(4)
    for k, photo in enumerate(result["photos"]):
        key = "review_" + hashlib.sha1(photo["path"].encode()).hexdigest()[:12]
        options = choices(names, photo["given"])
        current = choice_of(decision_for(root, photo["path"]))
        with columns[k % 4]:
            try:
                st.image(picture_of(overlays, photo["path"]), width=160)
            except (OSError, ImageRejected):
                continue
            st.caption(review_words(photo) + not_shown(overlays, photo["path"]))
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


def collect_next(run: RunDirectory) -> None:
    """Which classes would gain from more photos and which pair is mixed up most, on request (it takes seconds)."""
    if not st.toggle("Show which photos would help most", key="collect_on"):
        return
    result, error = task_result(Task.COLLECT, {"run_dir": str(run.path)}, "Drawing each class's learning curve")
    if error:
        st.info(f"No learning curves for this run: {error}")
        return
    for line in result["words"]:
        st.markdown(md_literal(line))
    if result["curves"]["curves"]:
        st.plotly_chart(charts.class_learning_curves(result["curves"]), key="collect_curves")
    else:
        st.caption("Each class needs at least 8 photos for its learning curve.")


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
