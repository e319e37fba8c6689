"""Parts of the Train page: the learning-rate finder, and where this server's runs train."""

from __future__ import annotations

import streamlit as st

from app_pages.shared import current_config
from app_pages.task_views import task_result
from core.base.processes import cluster_address
from core.base.tasks import Task
from core.network.distribute import placement_details
from core.results import charts
from core.runs.directory import list_runs


def find_learning_rate() -> None:
    """The button that sweeps phase 1's learning rate, the curve, and a button to use the suggestion."""
    if st.button("Find a good learning rate", key="find_lr", help="Tries rates from 0.000001 to 1 on the new head"):
        st.session_state["lr_find_for"] = current_config().to_dict()
    if not st.session_state.get("lr_find_for"):
        return
    message = "Trying learning rates on the new head; the photos are prepared as for training"
    result, error = task_result(Task.LR_FIND, {"config": st.session_state["lr_find_for"]}, message)
    if error:
        st.error(f"No learning rate could be suggested: {error}")
        st.session_state.pop("lr_find_for")
        return
    st.plotly_chart(charts.learning_rate_sweep(result), key="lr_sweep")
    st.caption(result.get("message", ""))
    suggestion = result.get("suggestion")
    if suggestion and st.button(f"Use {suggestion:g}", key="use_lr"):
        st.session_state["draft"] = current_config().replace(head_learning_rate=float(suggestion))
        st.session_state.pop("head_learning_rate", None)
        st.session_state.pop("lr_find_for", None)
        st.rerun()


def where_runs_train() -> str:
    """Where this server sends runs, and the devices its last run trained on (read from that run)."""
    address = cluster_address()
    if address:
        text = f"Runs are sent to the Ray cluster at {address} (STUDIO_RAY_ADDRESS), each asking for its GPUs."
    else:
        text = "Runs train on this server, one at a time (STUDIO_RAY_ADDRESS sends them to a Ray cluster)."
    last = next(((run, status) for run in list_runs() if (status := run.raw_status()).placement), None)
    if last:
        run, status = last
        text += f' The last run ("{run.title()}") trained on {placement_details(status.placement, status.node)}.'
    return text
