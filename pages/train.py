"""Train: start a run, watch it live, stop it. The run directory is the truth; this page only reads it."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.config import BEST_NEEDS_VALIDATION, ConfigError
from core.monitor import RunProgress
from core.runs import list_runs, start_run
from pages.shared import (
    STATE_LABELS,
    current_config,
    current_run,
    data_label,
    follow_run,
    image_size_plan,
    labelled_select,
    next_step,
    recipe_picker,
    require_app,
    set_choice,
    task_result,
)

require_app("pages/train.py")
st.title("3. Train")
recipe_slot = st.container()
config = current_config()
st.caption(
    f"Photos: {data_label(config.data)} · Network: {config.backbone} at {image_size_plan(config)[1]} · "
    f"Weights: {config.weights if config.weights in ('imagenet', 'none') else 'file'}"
)


def show_lr_sweep(result: dict) -> None:
    """The loss against the learning rate, the suggestion marked, and a button to use it."""
    figure = go.Figure()
    figure.add_scatter(x=result["rates"], y=result["losses"], mode="lines", name="loss (smoothed)")
    suggestion = result.get("suggestion")
    if suggestion:
        figure.add_vline(
            x=suggestion, line_dash="dash", line_color="#16a34a", annotation_text=f"suggested {suggestion:g}"
        )
    figure.update_xaxes(type="log", title="learning rate")
    figure.update_layout(height=260, margin={"t": 30, "b": 30}, yaxis_title="loss", showlegend=False)
    st.plotly_chart(figure, key="lr_sweep")
    st.caption(result.get("message", ""))
    if suggestion and st.button(f"Use {suggestion:g}", key="use_lr"):
        set_choice(head_learning_rate=float(suggestion))
        st.session_state.pop("head_lr", None)
        st.session_state.pop("lr_find_for", None)
        st.rerun()


with st.expander("Training settings", expanded=st.session_state.get("lr_find_for") is not None):
    one, two = st.columns(2)
    with one:
        st.markdown("**Phase 1: new head, network frozen**")
        head_epochs = st.number_input("Head epochs", 0, 200, config.head_epochs, key="head_epochs")
        head_lr = st.number_input(
            "Head learning rate", 1e-6, 1.0, config.head_learning_rate, format="%.5f", key="head_lr"
        )
        if st.button("Find a good learning rate", key="find_lr", help="Tries rates from 0.000001 to 1 on the new head"):
            st.session_state["lr_find_for"] = current_config().to_dict()
        if st.session_state.get("lr_find_for"):
            result, error = task_result(
                "lr_find",
                {"config": st.session_state["lr_find_for"]},
                "Trying learning rates on the new head; the photos are prepared as for training",
            )
            if error:
                st.error(f"No learning rate could be suggested: {error}")
                st.session_state.pop("lr_find_for")
            else:
                show_lr_sweep(result)
    with two:
        st.markdown("**Phase 2: fine-tune the top of the network**")
        finetune_epochs = st.number_input("Fine-tune epochs", 0, 200, config.finetune_epochs, key="finetune_epochs")
        finetune_lr = st.number_input(
            "Fine-tune learning rate", 1e-7, 1.0, config.finetune_learning_rate, format="%.6f", key="finetune_lr"
        )
    optimizers = {"adam": "Adam", "rmsprop": "RMSprop", "sgd": "SGD with momentum 0.9"}
    left, right = st.columns(2)
    optimizer = labelled_select(left, "Optimizer (both phases)", optimizers, config.optimizer, key="optimizer")
    with right:
        batch = st.select_slider(
            "Batch size",
            sorted({4, 8, 16, 32, 64, 128, config.batch_size}),
            value=config.batch_size,
            key="batch_size",
        )
    left, right = st.columns(2)
    schedules = {True: "Cosine: warm up, then lower smoothly", False: "Lower it when progress stalls"}
    cosine = labelled_select(
        left,
        "Learning rate over each phase",
        schedules,
        config.cosine_decay,
        help="Cosine: phase 2 rises from a tenth of its rate to the full rate over its first epoch; then "
        "each phase's rate falls along a half cosine to a hundredth of it by the phase's last epoch.",
        key="lr_schedule",
    )
    with right:
        average = st.toggle(
            "Average the weights of the last steps",
            config.average_weights,
            help="Validates and keeps a moving average of the weights over about one epoch, so the "
            "accuracy moves less from one epoch to the next.",
            key="average_weights",
        )
    left, right = st.columns(2)
    patience = left.number_input(
        "Stop a phase early after this many epochs without improvement (0: never)",
        0,
        50,
        config.early_stopping_patience,
        key="patience",
    )
    keeps = {
        "auto": f"Auto: the most accurate with {BEST_NEEDS_VALIDATION}+ validation photos, else the final",
        "final": "The final model",
        "best": "The most accurate epoch on validation",
    }
    keep = labelled_select(
        right,
        "Model to keep when training finishes",
        keeps,
        config.keep,
        help="With few validation photos, the most accurate epoch is mostly luck: one photo moves the accuracy "
        "by several points. The final model, settled by the falling learning rate and the averaging, is then "
        "the better choice. A stopped run keeps its most accurate epoch.",
        key="keep",
    )
    weights = st.selectbox(
        "Class weights",
        ["auto", "on", "off"],
        ["auto", "on", "off"].index(config.class_weights),
        help="auto: even out classes only when they are unbalanced",
        key="class_weights",
    )
    seed = st.number_input("Seed (same seed, same result)", 0, 2**31 - 1, config.seed, key="seed")
    st.markdown("**Speed**")
    fast = st.toggle(
        "Fast mode: compute the frozen layers once and reuse their output in every epoch",
        config.feature_cache,
        help="The trained model is the same complete network either way. Off: every photo goes through "
        "the whole network in every epoch, as in a plain Keras script.",
        key="feature_cache",
    )
    views = st.number_input(
        "Versions of each training photo to prepare in fast mode (the original plus augmented copies)",
        1,
        32,
        config.feature_views,
        disabled=not fast or not config.augmentation.enabled,
        help="More versions give augmentation more variety, and take longer to prepare. With 1, "
        "augmentation is not used in fast mode.",
        key="feature_views",
    )
    set_choice(
        optimizer=optimizer,
        feature_cache=bool(fast),
        feature_views=int(views),
        head_epochs=int(head_epochs),
        head_learning_rate=float(head_lr),
        finetune_epochs=int(finetune_epochs),
        finetune_learning_rate=float(finetune_lr),
        batch_size=int(batch),
        early_stopping_patience=int(patience),
        cosine_decay=bool(cosine),
        average_weights=bool(average),
        keep=keep,
        class_weights=weights,
        seed=int(seed),
    )

recipe_picker("train", recipe_slot)

if st.button("Start training", type="primary", key="start"):
    try:
        follow_run(start_run(current_config()))
    except ConfigError as error:
        st.error(f"These settings cannot train: {error}")

run = current_run()
if run is None:
    st.info("No run yet. Press **Start training**: the defaults work.")
    st.stop()


def chart(progress: RunProgress, metric: str, title: str) -> go.Figure:
    figure = go.Figure()
    batches = pd.DataFrame(progress.batches)
    if not batches.empty and metric in batches:
        figure.add_scatter(
            x=batches["step"],
            y=batches[metric],
            mode="lines",
            name="training (per batch)",
            line={"width": 1, "color": "#93c5fd"},
        )
    epochs = pd.DataFrame(progress.epochs)
    for column, name, colour in ((metric, "training", "#2563eb"), (f"val_{metric}", "validation", "#f97316")):
        if not epochs.empty and column in epochs:
            figure.add_scatter(
                x=epochs["epoch"], y=epochs[column], mode="lines+markers", name=name, line={"color": colour}
            )
    for start in progress.phase_starts[1:]:
        figure.add_vline(x=start, line_dash="dash", line_color="#6b7280", annotation_text="phase 2")
    if not progress.has_curves:
        figure.add_annotation(
            text="The curve appears after the first batch", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5
        )
        figure.update_xaxes(showticklabels=False)
        figure.update_yaxes(showticklabels=False)
    figure.update_layout(
        title=title, height=300, margin={"t": 40, "b": 30}, xaxis_title="epoch", legend={"orientation": "h", "y": -0.3}
    )
    return figure


@st.fragment(run_every=1.0)
def live(run_id: str) -> None:
    """Polls the run directory; a reload or a second browser reads the same files."""
    from core.runs import RunDirectory, resume_run, runs_root

    run = RunDirectory(runs_root() / run_id)
    cache = st.session_state.setdefault("progress", {})
    progress, offset = cache.get(run_id, (RunProgress(), 0))
    events, offset = run.read_events(offset)
    progress.update(events)
    status = run.status()
    progress.apply_status(status)
    cache[run_id] = (progress, offset)
    state = status.get("state", "queued")
    st.markdown(f"### Run `{run_id}`: {STATE_LABELS.get(state, state)}")
    message = status.get("message", "")
    {"failed": st.error, "interrupted": st.warning, "succeeded": st.success}.get(state, st.info)(message)
    st.caption(status.get("feature_mode") or " ")  # which training mode, and why (same element in every state)
    # Every state draws the same elements (a progress bar, a Stop button, two charts), so a
    # fragment rerun updates them in place: nothing flickers and nothing stale lingers.
    active = state in ("running", "queued")
    st.progress(progress.fraction, text=progress.describe() if state == "running" else STATE_LABELS.get(state, state))
    if state == "interrupted" and run.can_resume():
        epoch = status.get("resume_point", {}).get("epochs_done", 0)
        if st.button(f"Resume (after epoch {epoch})", key=f"resume_{run_id}", type="primary"):
            resume_run(run)
            st.toast("Resuming: the run picks up from its last finished epoch.")
    elif st.button("Stop", key=f"stop_{run_id}", disabled=not active or run.stop_requested()):
        run.request_stop()
        st.toast("Stopping after the current batch...")
    left, right = st.columns(2)
    left.plotly_chart(chart(progress, "loss", "Loss (lower is better)"), key=f"loss_{run_id}")
    right.plotly_chart(chart(progress, "accuracy", "Accuracy"), key=f"accuracy_{run_id}")
    with st.empty():
        if state in ("succeeded", "stopped") and run.evaluation():
            next_step("pages/evaluate.py", "Next: see how good it is →")


live(run.id)

st.subheader("Past runs")
rows = []
for past in list_runs()[:50]:
    status = past.status()
    rows.append(
        {
            "run": past.id,
            "state": STATE_LABELS.get(status.get("state"), status.get("state")),
            "accuracy": status.get("accuracy"),
            "message": status.get("message", ""),
        }
    )
if rows:
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key="past_runs",
        column_config={"accuracy": st.column_config.NumberColumn(format="percent")},
    )
    choice = st.selectbox("Open a run", [r["run"] for r in rows], key="open_run")
    if st.button("Open", key="open"):
        follow_run(next(r for r in list_runs() if r.id == choice))
        st.rerun()
