"""Widgets made from the settings' declarations (`core/network/config.py`), and the recipe picker.

`setting_input("head_epochs")` draws the right widget for a setting (a toggle, a choice,
a number, a slider or a text box) with its label, help and bounds as declared, starting
at the value chosen so far, and records the new choice. Its widget key is the setting's
name, so applying a recipe resets exactly the widgets of the settings a recipe decides.
"""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from app_pages.shared import current_config, set_config, set_setting
from app_pages.task_views import task_result
from core.base.errors import InputError
from core.base.settings import SettingInfo, get_value, parse_text
from core.base.tasks import Task
from core.network.config import SETTINGS
from core.network.freezing import UnfreezeKind, UnfreezePlan


def setting_input(name: str, container=None, *, label: str | None = None, disabled: bool = False) -> Any:
    """Draw the widget for setting `name` in `container` (the page by default) and return the choice."""
    container = container or st
    info = SETTINGS[name]
    meta = info.declaration
    value = get_value(current_config(), name)
    common = {"label": label or meta.label, "help": meta.help or None, "key": info.widget_key, "disabled": disabled}
    if info.kind is bool:
        chosen = container.toggle(value=bool(value), **common)
    elif meta.choices is not None:
        keys = list(meta.choices)
        chosen = container.selectbox(options=keys, index=keys.index(value), format_func=meta.choices.get, **common)
    elif info.kind in (int, float):
        chosen = _number(container, info, info.kind(value), common)
    else:
        chosen = _text(container, info, value, common)
    set_setting(name, chosen)
    return chosen


def widget_bounds(info: SettingInfo, value: float) -> tuple[float, float]:
    """The widget's range: the declared bounds (an open bound moved in by one step), widened to hold
    `value`, so any value the config accepts (set on the CLI, say) opens without an error."""
    meta = info.declaration
    step = meta.step or (10.0 ** -int(re.search(r"\.(\d+)f", meta.format).group(1)) if meta.format else 1)
    low = meta.low + step if meta.above_low else meta.low
    high = meta.high - step if meta.below_high else meta.high
    return info.kind(min(low, value)), info.kind(max(high, value))


def _number(container, info: SettingInfo, value, common: dict):
    meta = info.declaration
    low, high = widget_bounds(info, value)
    step = info.kind(meta.step) if meta.step else None
    if meta.widget == "slider":
        return container.slider(min_value=low, max_value=high, value=value, step=step, **common)
    return container.number_input(min_value=low, max_value=high, value=value, step=step, format=meta.format, **common)


def _text(container, info: SettingInfo, value, common: dict):
    """A text box for settings typed as text (hidden layers "256,128"); a bad entry keeps the last good value."""
    meta = info.declaration
    shown = meta.show(value) if meta.show else str(value)
    text = container.text_input(value=shown, **common)
    try:
        return parse_text(info, text)
    except InputError as error:
        container.error(str(error))
        return value


def dataset_summary(report) -> None:
    """Photos per class and split as a bar chart, the counts, every warning, and each file left out with why."""
    import pandas as pd
    import plotly.express as px

    left, right = st.columns([3, 2])
    rows = [{"class": c, "split": split, "images": n} for c, row in report.counts().items() for split, n in row.items()]
    if rows:
        figure = px.bar(pd.DataFrame(rows), x="class", y="images", color="split", title="Photos per class", height=320)
        left.plotly_chart(figure, key="class_counts")
    right.metric("Usable photos", sum(report.class_totals().values()))
    right.metric("Classes", len(report.class_names))
    right.metric("Left out", len(report.skipped))
    right.caption(f"Formats: {', '.join(f'{k} {v}' for k, v in report.formats().items()) or '-'}")
    for warning in report.warnings:
        st.warning(warning)
    if report.skipped:
        with st.expander(f"{len(report.skipped)} file(s) left out, and why"):
            rows = [{"file": report.relative(s.path), "reason": s.reason} for s in report.skipped]
            st.dataframe(pd.DataFrame(rows), key="skipped")


def recipe_picker(where: str, slot) -> None:
    """One-click presets: a known recipe (or the tool's default) fills the settings it decides.

    Drawn into `slot` (a container near the top of the page) after the page's own settings
    widgets have run, so it shows whether the settings as they are now match a recipe.
    """
    from core.network.recipes import RECIPE_FIELDS, RECIPES, matching_recipe

    config = current_config()
    in_use = matching_recipe(config)
    if st.session_state.get(f"recipe_{where}_matched", in_use) != in_use:
        st.session_state[f"recipe_{where}"] = in_use  # the settings changed: show what they match now
    st.session_state[f"recipe_{where}_matched"] = in_use
    with slot.container(border=True):
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        key = left.selectbox(
            "Recipe",
            list(RECIPES),
            index=list(RECIPES).index(in_use) if in_use else None,
            format_func=lambda k: RECIPES[k].title,
            placeholder="Your own settings",
            key=f"recipe_{where}",
        )
        chosen = RECIPES.get(key)
        if right.button("Use this recipe", key=f"use_recipe_{where}", disabled=chosen is None or key == in_use):
            set_config(chosen.config(config))
            for widget in [k for k in st.session_state if str(k).split(".")[0] in RECIPE_FIELDS]:
                del st.session_state[widget]  # they show the recipe's values instead of keeping their own
            st.toast(f"Settings from '{chosen.title}'. You can change any of them.")
            st.rerun()
        if chosen:
            applied = "" if key == in_use else " Press **Use this recipe** to apply it."
            st.caption(f"**{chosen.in_words}**{applied}")
            with st.expander("Details for specialists"):
                st.caption(f"{chosen.what} {chosen.source}")
        else:
            st.caption("The settings no longer match a recipe: they are your own. Choose a recipe to start from one.")


PLAN_KINDS = {
    "auto": "Recommended",
    "none": "Train the head only",
    "top": "Unfreeze the top N layers",
    "block": "Unfreeze from a block",
    "from": "Freeze the first N layers",
    "all": "Unfreeze everything",
    "layers": "Pick layers",
}


def unfreeze_input(spec, rows: list[dict]) -> UnfreezePlan:
    """The phase-2 plan: a quick choice with its number or block (a plan this network cannot follow is
    kept as it is, for the page to say so), or layers ticked in the table."""
    plan = current_config().unfreeze
    kinds = list(PLAN_KINDS)
    index = kinds.index(plan.kind)
    kind = UnfreezeKind(
        st.radio("Quick choice", kinds, index, format_func=PLAN_KINDS.get, horizontal=True, key="unfreeze.kind")
    )
    same = plan.kind is kind
    if kind in (UnfreezeKind.TOP, UnfreezeKind.FROM):
        start = plan.count if same else {UnfreezeKind.TOP: 20, UnfreezeKind.FROM: 5}[kind]
        count = st.number_input("N", 0, max(len(rows), start), start, key=f"unfreeze.{kind}")
        plan = UnfreezePlan(kind, count=int(count))
    elif kind is UnfreezeKind.BLOCK:
        blocks = list(dict.fromkeys(row["block"] for row in rows))
        start = plan.block if same else spec.recommended_unfreeze
        index = blocks.index(start) if start in blocks else None
        block = st.selectbox("Block", blocks, index=index, placeholder="Choose a block", key="unfreeze.block")
        plan = UnfreezePlan(kind, block=block) if block else plan
    elif kind is UnfreezeKind.LAYERS and not same:  # the table of layers starts from the recommended plan
        recommended = UnfreezePlan().mask(spec, [row["name"] for row in rows])
        plan = UnfreezePlan(kind, layers=tuple(i for i, on in enumerate(recommended) if on))
    elif kind is not UnfreezeKind.LAYERS:
        plan = UnfreezePlan(kind)
    return plan


def weights_upload(spec, image_size: int) -> None:
    """Missing ImageNet weights on an offline machine: the ready networks, and a place to upload the file."""
    from core.network.weights import install_staged_weights, stage_uploaded_weights
    from core.training.preflight import missing_weights_details, ready_networks

    ready = ", ".join(s.label for s in ready_networks(image_size)) or "none"
    st.warning(
        f"The ImageNet weights for {spec.label} are not on this machine, and it cannot download them. Networks "
        f"ready here: {ready}. Or upload the weights file for {spec.label} below."
    )
    with st.expander("For administrators"):
        st.caption(missing_weights_details(spec, image_size))
    upload = st.file_uploader(f"Weights file for {spec.label} (.h5)", type=["h5"], key=f"weights_upload_{spec.key}")
    if upload is None:
        return
    incoming = stage_uploaded_weights(spec, image_size, upload.getvalue())
    result, error = task_result(Task.CHECK_WEIGHTS, {"backbone": spec.key, "path": str(incoming)}, "Checking the file")
    if error:
        incoming.unlink(missing_ok=True)
        st.error(error)
        return
    install_staged_weights(incoming, spec, image_size)
    st.success(f"The weights for {spec.label} are on this machine now.")
    st.rerun()
