"""The page list, the tab's icon and the sidebar every page shares (drawn by `streamlit_app.py`)."""

from __future__ import annotations

import streamlit as st

from app_pages.session_views import dashboard_password, keep_cookie, sign_out
from app_pages.shared import current_config, current_run, run_named, run_params
from core.base.markup import md_literal
from core.data.sources import source_label
from core.network.backbones import BACKBONES
from core.training.evaluation import accuracy_label

PAGES = [
    ("app_pages/home.py", "Home", ":material/home:"),
    ("app_pages/data.py", "Data", ":material/photo_library:"),
    ("app_pages/model.py", "Model", ":material/neurology:"),
    ("app_pages/train.py", "Train", ":material/monitoring:"),
    ("app_pages/evaluate.py", "Evaluate", ":material/fact_check:"),
    ("app_pages/runs.py", "Runs", ":material/table_rows:"),
]


def _page_icon():
    """The tab's icon, drawn here: an icon named by emoji or Material name is fetched from Google's servers."""
    from PIL import Image, ImageDraw

    icon = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(icon)
    draw.rounded_rectangle((2, 2, 61, 61), radius=14, fill="#2563eb")
    for left, top in ((14, 36), (28, 24), (42, 14)):  # three rising bars: a model getting better
        draw.rounded_rectangle((left, top, left + 9, 50), radius=3, fill="white")
    return icon


PAGE_ICON = _page_icon()


# A sign that the page is working, on every page: Streamlit fades what a click is about to redraw
# (`data-stale`), with nothing else to see for seconds. Shown after a second, so the sidebar's
# and the live panel's own refreshes every second never flash it.
WORKING_SIGN = """<style>
body:has([data-stale="true"])::after {
  content: "Working…"; position: fixed; top: 14px; left: 50%; transform: translateX(-50%); z-index: 999999;
  background: #2563eb; color: #fff; padding: 6px 16px; border-radius: 999px; font: 600 14px sans-serif;
  box-shadow: 0 2px 8px rgba(0,0,0,.2); opacity: 0; animation: studio-working 0s linear 1s forwards;
}
@keyframes studio-working { to { opacity: 1; } }
</style>"""


def sidebar() -> None:
    """The pages (each link keeps the followed run), and where the project stands."""
    st.html(WORKING_SIGN)
    with st.sidebar:
        current_run()
        for page, title, icon in PAGES:
            st.page_link(page, label=title, icon=icon, query_params=run_params())
        st.divider()
        st.markdown("### Your project")
        project_summary()
        keep_cookie()
        if dashboard_password():
            st.button("Sign out", icon=":material/logout:", on_click=sign_out, key="sign_out")


@st.fragment(run_every=1.0)
def project_summary() -> None:
    """Refreshed on its own, so it shows choices the page below has just made and a run's live state."""
    config = current_config()
    st.markdown(f"**Photos:** {source_label(config.data)}")
    st.markdown(f"**Network:** {BACKBONES[config.backbone].label}")
    run = run_named(st.session_state.get("run_id"))
    if run is None:
        st.caption("No training run yet.")
        return
    status = run.status()
    st.markdown(f"**Run:** {md_literal(run.title())}")
    st.markdown(f"**State:** {status.state.label}")
    if status.state.active and status.epochs_total:
        st.progress(min(status.epoch / status.epochs_total, 1.0))
    if status.accuracy is not None:
        which = accuracy_label(status.accuracy_split)
        which = f"First model's {which.lower()}" if status.state.active else which
        st.markdown(f"**{which}:** {status.accuracy:.1%}")
