"""Plotly figures of a run: training curves, the learning-rate sweep, the confusion matrix.

Built here, without Streamlit, so the dashboard and anything else that shows a run draw
the same figures from the same run-directory data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.training.monitor import RunProgress


def training_curve(progress: RunProgress, metric: str, title: str) -> go.Figure:
    """Per-batch training `metric`, per-epoch training and validation, and where phase 2 began."""
    figure = go.Figure()
    batches = pd.DataFrame(progress.batches)
    if not batches.empty and metric in batches:
        line = {"width": 1, "color": "#93c5fd"}
        figure.add_scatter(x=batches["step"], y=batches[metric], mode="lines", name="training (per batch)", line=line)
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
    if metric == "accuracy":
        figure.update_yaxes(tickformat=".0%", hoverformat=".1%")
    _whole_epochs(figure, len(progress.epochs))
    return figure


def _whole_epochs(figure: go.Figure, epochs: int) -> None:
    """Ticks at whole epochs when there are few (no "epoch 1.5" under a short run's curve)."""
    if 0 < epochs <= 20:
        figure.update_xaxes(tickmode="linear", tick0=0, dtick=1)


def learning_rate_sweep(result: dict) -> go.Figure:
    """The smoothed loss against the learning rate, with the suggestion marked."""
    figure = go.Figure()
    figure.add_scatter(x=result["rates"], y=result["losses"], mode="lines", name="loss (smoothed)")
    suggestion = result.get("suggestion")
    if suggestion:
        figure.add_vline(
            x=suggestion, line_dash="dash", line_color="#16a34a", annotation_text=f"suggested {suggestion:g}"
        )
    figure.update_xaxes(type="log", title="learning rate")
    figure.update_layout(height=260, margin={"t": 30, "b": 30}, yaxis_title="loss", showlegend=False)
    return figure


def confusion_matrix(evaluation: dict) -> go.Figure:
    """Each cell: the share of the true class's photos given that prediction, and their count."""
    names = evaluation["class_names"]
    counts = np.array(evaluation["confusion_matrix"])
    share = evaluation.get("confusion_shares")
    if share is None:  # evaluations written before the shares were stored
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure = px.imshow(
        share,
        x=names,
        y=names,
        zmin=0,
        zmax=1,
        color_continuous_scale="Blues",
        labels={"x": "predicted", "y": "true", "color": "share of row"},
        text_auto=".0%",
        aspect="auto",
    )
    figure.update_traces(customdata=counts, hovertemplate="true %{y}, predicted %{x}: %{customdata} photos (%{z:.0%})")
    figure.update_layout(title="Confusion matrix (rows: true class, columns: predicted)", height=380 + 20 * len(names))
    return figure


def compared_curves(curves: dict[str, pd.DataFrame]) -> go.Figure:
    """Validation accuracy per epoch of each run, overlaid (training accuracy dotted, in the same colour)."""
    figure = go.Figure()
    palette = px.colors.qualitative.Safe
    for k, (name, history) in enumerate(curves.items()):
        colour = palette[k % len(palette)]
        if "val_accuracy" in history and history["val_accuracy"].notna().any():
            figure.add_scatter(
                x=history["epoch"], y=history["val_accuracy"], mode="lines+markers", name=name, line={"color": colour}
            )
        if "accuracy" in history:
            figure.add_scatter(
                x=history["epoch"],
                y=history["accuracy"],
                mode="lines",
                name=f"{name} (training)",
                line={"color": colour, "dash": "dot", "width": 1},
                showlegend=False,
                hoverinfo="skip",
            )
    figure.update_layout(
        title="Validation accuracy per epoch (dotted: training accuracy)",
        height=360,
        margin={"t": 40, "b": 30},
        xaxis_title="epoch",
        legend={"orientation": "h", "y": -0.25},
    )
    figure.update_yaxes(tickformat=".0%", hoverformat=".1%")
    _whole_epochs(figure, max((len(history) for history in curves.values()), default=0))
    return figure


def compared_classes(per_class: pd.DataFrame) -> go.Figure:
    """Each class's share of test photos each run got right, as grouped bars (columns: runs)."""
    long = per_class.rename_axis("class").reset_index().melt(id_vars="class", var_name="run", value_name="right")
    figure = px.bar(
        long, x="class", y="right", color="run", barmode="group", color_discrete_sequence=px.colors.qualitative.Safe
    )
    figure.update_layout(
        title="Share of each class's test photos it got right",
        height=340,
        margin={"t": 40, "b": 30},
        legend={"orientation": "h", "y": -0.3, "title": None},
        yaxis_title=None,
    )
    figure.update_yaxes(tickformat=".0%", range=[0, 1])
    return figure


def class_learning_curves(curves: dict) -> go.Figure:
    """Each class's learning curve (`core.results.collect_next.learning_curves`): how often its photos were found with
    25 to 100% of them to learn from."""
    rows = [
        {"class": name, "share of its photos learned from": fraction, "found": recall}
        for name, values in curves["curves"].items()
        for fraction, recall in zip(curves["fractions"], values, strict=True)
    ]
    figure = px.line(
        pd.DataFrame(rows),
        x="share of its photos learned from",
        y="found",
        color="class",
        markers=True,
        color_discrete_sequence=px.colors.qualitative.Safe,
    )
    figure.update_layout(
        title="Each class's learning curve: still climbing at the right means more photos would help",
        height=340,
        margin={"t": 40, "b": 30},
        legend={"title": None},
    )
    figure.update_xaxes(tickformat=".0%")
    figure.update_yaxes(tickformat=".0%", title="its photos found")
    return figure
