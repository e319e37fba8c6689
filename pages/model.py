"""Model: the pretrained network, its weights, and which of its layers learn in phase 2."""

from pathlib import Path

import pandas as pd
import streamlit as st

from core.backbones import BACKBONES
from core.weights import describe_missing, find_local_imagenet
from pages.shared import current_config, load_report, next_step, require_app, set_choice, task_result

require_app("pages/model.py")
st.title("2. Model")
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
size = st.select_slider(
    "Image size (pixels)",
    options=sorted({96, 128, 160, 192, 224, 299, spec.default_size}),
    value=config.image_size if config.backbone == key else spec.default_size,
    key="image_size",
)
if size < spec.min_size:
    st.error(f"{spec.label} needs images of at least {spec.min_size} px.")
    st.stop()
set_choice(backbone=key, image_size=size)

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
plans = ["Recommended", "Train the head only", "Unfreeze the top N layers", "Unfreeze from a block", "Pick layers"]
plan = st.radio("Quick choice", plans, horizontal=True, key="unfreeze_plan")
if plan == "Recommended":
    unfreeze = "auto"
    st.caption(f"From block {spec.recommended_unfreeze} to the end.")
elif plan == "Train the head only":
    unfreeze = "none"
elif plan == "Unfreeze the top N layers":
    unfreeze = f"top:{st.number_input('N', 1, len(rows), min(20, len(rows)), key='top_n')}"
elif plan == "Unfreeze from a block":
    unfreeze = f"block:{st.selectbox('Block', blocks, index=blocks.index(spec.recommended_unfreeze), key='from_block')}"
else:
    unfreeze = "auto"
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
if plan == "Pick layers":
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

report, _ = load_report(config.data)
classes = len(report.class_names) if report else 2
head = features * classes + classes
finetune = (
    int(table[table["trainable_in_finetune"] & ~table["is_batch_norm"]]["params"].sum()) if unfreeze != "none" else 0
)
left, right = st.columns(2)
left.metric("Weights trained in phase 1", f"{head:,}")
right.metric("Weights trained in phase 2", f"{head + finetune:,}")
next_step("pages/train.py", "Next: train →")
