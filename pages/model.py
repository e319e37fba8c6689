"""Model: the pretrained network, its weights, and which of its layers learn in phase 2."""

from pathlib import Path

import pandas as pd
import streamlit as st

from core.backbones import BACKBONES
from core.config import AUTO_SIZE
from core.weights import describe_missing, find_local_imagenet
from pages.shared import (
    current_config,
    image_size_plan,
    labelled_select,
    load_report,
    next_step,
    recipe_picker,
    require_app,
    set_choice,
    task_result,
)

require_app("pages/model.py")
st.title("2. Model")
recipe_slot = st.container()
config = current_config()

catalogue = pd.DataFrame(
    [
        {
            "network": s.label,
            "key": s.key,
            "weights (M)": round(s.params / 1e6, 1),
            "MB": round(s.size_mb),
            "input px": s.default_size,
            "good for": s.hint,
        }
        for s in BACKBONES.values()
    ]
)
keys = list(BACKBONES)
key = st.selectbox(
    "Pretrained network",
    keys,
    index=keys.index(config.backbone),
    format_func=lambda k: f"{BACKBONES[k].label}: {BACKBONES[k].hint}",
    key="backbone",
)
spec = BACKBONES[key]
with st.expander("Compare all networks"):
    st.dataframe(catalogue, hide_index=True, key="catalogue")
sizes = {96, 128, 160, 192, 224, 299, spec.default_size, spec.native_size, config.image_size} - {AUTO_SIZE}
chosen_size = st.select_slider(
    "Image size (pixels)",
    options=[AUTO_SIZE, *sorted(sizes)],
    value=config.image_size if config.backbone == key else AUTO_SIZE,
    format_func=lambda n: "Auto" if n == AUTO_SIZE else str(n),
    key="image_size",
    help=(
        f"Auto: {spec.native_size} px when the photos are at least that large (more detail, about twice "
        f"the training time of {spec.default_size} px), else {spec.default_size} px."
    ),
)
set_choice(backbone=key, image_size=chosen_size)
size, size_text = image_size_plan(current_config())
if chosen_size == AUTO_SIZE:
    st.caption(f"Images will be {size_text}.")
if size < spec.min_size:
    st.error(f"{spec.label} needs images of at least {spec.min_size} px.")
    st.stop()

st.subheader("Starting weights")
options = ["ImageNet (recommended)", "A weights file on this server", "Random (no pretraining)"]
chosen = {"imagenet": 0, "none": 2}.get(config.weights, 1)
weights_kind = st.radio("Start from", options, index=chosen, key="weights_kind")
if weights_kind == options[0]:
    set_choice(weights="imagenet")
    local = find_local_imagenet(spec, size)
    if local:
        st.success(f"ImageNet weights are on this machine ({local.name}).")
    else:
        st.warning(
            describe_missing(spec, size).replace("could not be downloaded (is it offline?)", "are not downloaded yet")
            + " With internet, they are downloaded when training starts."
        )
elif weights_kind == options[1]:
    path = st.text_input(
        "Path to a .h5 weights file",
        value="" if config.weights in ("imagenet", "none") else config.weights,
        key="weights_path",
    )
    if path and not Path(path).is_file():
        st.error(f"{path} is not a file.")
    elif path:
        set_choice(weights=path)
else:
    set_choice(weights="none")
    st.warning("Random weights: the network starts knowing nothing about photos. Expect much lower accuracy.")


st.subheader("What learns in phase 2")
st.caption(
    "Phase 1 trains only a new head on top of the frozen network. Phase 2 then fine-tunes the layers chosen here."
)
layers, error = task_result("layers", {"backbone": key, "image_size": size}, "Reading the network's layers")
if error:
    st.error(f"The network's layers could not be read: {error}")
    st.stop()
rows, features = layers["rows"], layers["features"]
names = [r["name"] for r in rows]
blocks = list(dict.fromkeys(r["block"] for r in rows))
plans = {
    "auto": "Recommended",
    "none": "Train the head only",
    "top": "Unfreeze the top N layers",
    "block": "Unfreeze from a block",
    "from": "Freeze the first N layers",
    "all": "Unfreeze everything",
    "layers": "Pick layers",
}
current_kind, _, current_value = config.unfreeze.partition(":")
plan = st.radio(
    "Quick choice",
    list(plans),
    index=list(plans).index(current_kind) if current_kind in plans else 0,
    format_func=plans.get,
    horizontal=True,
    key="unfreeze_plan",
)
if plan == "auto":
    unfreeze = "auto"
    st.caption(f"From block {spec.recommended_unfreeze} to the end.")
elif plan in ("none", "all"):
    unfreeze = plan
elif plan == "top":
    start = int(current_value) if current_kind == "top" else 20
    unfreeze = f"top:{st.number_input('N', 1, len(rows), min(start, len(rows)), key='top_n')}"
elif plan == "from":
    start = int(current_value) if current_kind == "from" else 5
    unfreeze = f"from:{st.number_input('N', 0, len(rows) - 1, min(start, len(rows) - 1), key='first_n')}"
elif plan == "block":
    start = current_value if current_kind == "block" and current_value in blocks else spec.recommended_unfreeze
    unfreeze = f"block:{st.selectbox('Block', blocks, index=blocks.index(start), key='from_block')}"
else:
    unfreeze = config.unfreeze if current_kind == "layers" else "auto"  # the table starts from the current plan
mask = spec.unfreeze_mask(names, unfreeze)
for row, unfrozen in zip(rows, mask, strict=True):
    row["trainable_in_finetune"] = unfrozen and not row["is_batch_norm"] and row["params"] > 0
LAYER_COLUMNS = {
    "index": "#",
    "name": "layer",
    "kind": "type",
    "params": st.column_config.NumberColumn("weights", format="localized"),
    "trainable_in_finetune": st.column_config.CheckboxColumn("learns in phase 2"),
    "is_batch_norm": st.column_config.CheckboxColumn("BatchNormalization (always frozen)"),
}
table = pd.DataFrame(rows)[["index", "block", "name", "kind", "params", "trainable_in_finetune", "is_batch_norm"]]
if plan == "layers":
    edited = st.data_editor(
        table,
        column_config=LAYER_COLUMNS,
        disabled=["index", "block", "name", "kind", "params", "is_batch_norm"],
        hide_index=True,
        key="layer_editor",
        height=360,
    )
    picked = edited[edited["trainable_in_finetune"] & ~edited["is_batch_norm"]]["index"].tolist()
    unfreeze = "layers:" + ",".join(str(i) for i in picked) if picked else "none"
    table = edited
else:
    st.dataframe(table, hide_index=True, key="layer_table", height=360, column_config=LAYER_COLUMNS)
st.caption(
    "BatchNormalization layers always stay frozen: updating their statistics on a small dataset "
    "ruins what the network learned on ImageNet."
)
set_choice(unfreeze=unfreeze)

st.subheader("The new head")
st.caption("What sits on top of the network and learns in both phases: pooling, optional hidden layers, dropout.")
poolings = {"avg": "Average (recommended)", "max": "Maximum", "flatten": "Flatten (keeps positions; many more weights)"}
one, two, three = st.columns(3)
pooling = labelled_select(one, "Pooling", poolings, config.pooling, key="pooling")
units_text = two.text_input(
    "Hidden layers (units, comma-separated)",
    ",".join(str(u) for u in config.head_units),
    placeholder="none, e.g. 256 or 1024,1024",
    key="head_units",
)
dropout = three.slider("Dropout", 0.0, 0.95, float(config.dropout), 0.05, key="dropout")
try:
    head_units = tuple(int(u) for u in units_text.replace(" ", "").split(",") if u)
    if any(not 1 <= u <= 65536 for u in head_units):
        raise ValueError
except ValueError:
    st.error("Hidden layers must be whole numbers from 1 to 65536, separated by commas (e.g. 256 or 1024,256).")
    head_units = config.head_units
set_choice(pooling=pooling, head_units=head_units, dropout=float(dropout))
recipe_picker("model", recipe_slot)

report, _ = load_report(config.data)
classes = len(report.class_names) if report else 2
width = features * (layers.get("grid", 1) if pooling == "flatten" else 1)
head = 0
for units in (*head_units, classes):
    head += width * units + units
    width = units
finetune = (
    int(table[table["trainable_in_finetune"] & ~table["is_batch_norm"]]["params"].sum()) if unfreeze != "none" else 0
)
left, right = st.columns(2)
left.metric("Weights trained in phase 1", f"{head:,}")
right.metric("Weights trained in phase 2", f"{head + finetune:,}")
next_step("pages/train.py", "Next: train →")
