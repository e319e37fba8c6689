"""Plotly figures of a run: training curves, the learning-rate sweep, the confusion matrix.

Built here, without Streamlit, so the dashboard and anything else that shows a run draw
the same figures from the same run-directory data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.monitor import RunProgress


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
    return figure


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
