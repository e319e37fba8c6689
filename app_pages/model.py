"""Model: the pretrained network, its weights, the new head, and which of the network's layers learn in phase 2."""

from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages.shared import current_config, image_size_plan, load_report, next_step, set_setting, weights_downloadable
from app_pages.task_views import task_result
from app_pages.widgets import recipe_picker, setting_input, unfreeze_input, weights_upload
from core.base.tasks import Task
from core.network.backbones import BACKBONES
from core.network.config import AUTO_SIZE, SETTINGS
from core.network.freezing import PlanError, UnfreezeKind, learning_layers, phase2_weights, plan_of_ticks
from core.network.weights import find_local_imagenet

st.title("2. Model")
recipe_slot = st.container()
key = setting_input("backbone")
spec = BACKBONES[key]
with st.expander("Compare all networks"):
    catalogue = [
        {
            "network": s.label,
            "parameters (millions)": round(s.params / 1e6, 1),
            "file size (MB)": round(s.size_mb),
            "photo size (px)": s.default_size,
            "good for": s.hint,
        }
        for s in BACKBONES.values()
    ]
    st.dataframe(pd.DataFrame(catalogue), hide_index=True, key="catalogue")

config = current_config()
size_setting = SETTINGS["image_size"].declaration
candidates = {96, 128, 160, 192, 224, 299, spec.default_size, spec.native_size, config.image_size} - {AUTO_SIZE}
sizes = [AUTO_SIZE, *sorted(s for s in candidates if size_setting.in_bounds(s) or s == config.image_size)]
chosen_size = st.select_slider(
    size_setting.label,
    options=sizes,
    value=config.image_size,
    format_func=lambda n: "Auto" if n == AUTO_SIZE else str(n),
    key="image_size",
    help=f"Auto: {spec.native_size} px when the photos are at least that large (more detail, about twice the "
    f"training time of {spec.default_size} px), else {spec.default_size} px.",
)
set_setting("image_size", chosen_size)
size, size_text = image_size_plan(current_config())
if chosen_size == AUTO_SIZE:
    st.caption(f"Images will be {size_text}.")
if size < spec.min_size:
    st.error(f"{spec.label} needs images of at least {spec.min_size} px.")
    st.stop()

st.subheader("Starting weights")
options = ["ImageNet (recommended)", "A weights file on this server", "Random (no pretraining)"]
weights_kind = st.radio("Start from", options, index={"imagenet": 0, "none": 2}.get(config.weights, 1), key="weights")
if weights_kind == options[0]:
    set_setting("weights", "imagenet")
    if find_local_imagenet(spec, size):
        st.success("The ImageNet weights are on this machine.")
    elif weights_downloadable():
        st.info("The ImageNet weights are downloaded when training starts (once; then kept on this machine).")
    else:
        weights_upload(spec, size)
elif weights_kind == options[1]:
    path = st.text_input(
        "Path to a .h5 weights file",
        value="" if config.weights in ("imagenet", "none") else config.weights,
        key="weights.path",
    )
    if path and not Path(path).is_file():
        st.error(f"{path} is not a file.")
    elif path:
        set_setting("weights", path)
else:
    set_setting("weights", "none")
    st.warning("Random weights: the network starts knowing nothing about photos. Expect much lower accuracy.")

st.subheader("The new head")
st.caption("What sits on top of the network and learns in both phases: pooling, optional hidden layers, dropout.")
one, two, three = st.columns(3)
setting_input("pooling", one)
setting_input("head_units", two)
setting_input("dropout", three)

st.subheader("What learns in phase 2")
st.caption(
    "Phase 1 trains only the new head on top of the frozen network. Phase 2 then fine-tunes the layers chosen here."
)
config = current_config()
report, _ = load_report(config.data)
network_args = {
    "backbone": key,
    "image_size": size,
    "pooling": config.pooling,
    "head_units": list(config.head_units),
    "classes": len(report.class_names) if report and len(report.class_names) >= 2 else 2,
}
network, error = task_result(Task.NETWORK, network_args, "Reading the network's layers")
if error:
    st.error(f"The network's layers could not be read: {error}")
    st.stop()
rows = network["rows"]
plan = unfreeze_input(spec, rows)
try:
    mask, followable = plan.mask(spec, [row["name"] for row in rows]), True
    st.caption(f"Phase 2 trains {plan.describe(spec)}.")
except PlanError as error:
    st.error(f"{error} Choose another plan: a run with this one would stop with this message.")
    mask, followable = [False] * len(rows), False
table = pd.DataFrame(rows)[["index", "block", "name", "kind", "params", "is_batch_norm"]]
table.insert(5, "learns", learning_layers(rows, mask))
columns = {
    "index": "#",
    "name": "layer",
    "kind": "type",
    "params": st.column_config.NumberColumn("weights", format="localized"),
    "learns": st.column_config.CheckboxColumn("learns in phase 2"),
    "is_batch_norm": st.column_config.CheckboxColumn("BatchNormalization (always frozen)"),
}
with st.expander(
    "Details for specialists: every layer of the network, and which learn in phase 2",
    expanded=plan.kind is UnfreezeKind.LAYERS,  # choosing layers one by one happens in the table
):
    if plan.kind is UnfreezeKind.LAYERS and followable:
        locked = ["index", "block", "name", "kind", "params", "is_batch_norm"]
        edited = st.data_editor(
            table, column_config=columns, disabled=locked, hide_index=True, key="unfreeze.layers", height=360
        )
        if edited["learns"].tolist() != table["learns"].tolist():  # a layer was ticked or unticked
            table = edited
            plan = plan_of_ticks(rows, table["learns"].tolist())
    else:
        st.dataframe(table, hide_index=True, key="layer_table", height=360, column_config=columns)
    st.caption(
        "BatchNormalization layers always stay frozen: updating their statistics on a small dataset "
        "ruins what the network learned on ImageNet."
    )
set_setting("unfreeze", plan)
recipe_picker("model", recipe_slot)

head = network["head_params"]
finetune = phase2_weights(rows, table["learns"].tolist(), plan)
left, right = st.columns(2)
left.metric("Weights trained in phase 1", f"{head:,}")
right.metric("Weights trained in phase 2", f"{head + finetune:,}")
next_step("app_pages/train.py", "Next: train →")
