"""Fine-Tune Studio: the dashboard's entry point (navigation and the shared sidebar).

The pages live in `app_pages/`, not `pages/`: Streamlit treats a folder named `pages`
beside the entry script as a legacy multipage app until a session has run
`st.navigation`, which showed a fresh server's first visitor a raw file list
(docs/architecture.md).
"""

import streamlit as st

from app_pages.shared import PAGES, sidebar

st.set_page_config(page_title="Fine-Tune Studio", page_icon=":material/model_training:", layout="wide")
# The navigation is drawn by `sidebar()`, whose links keep the followed run in the URL (`?run=`);
# Streamlit's own would drop it on every page change.
navigation = st.navigation(
    [st.Page(page, title=title, icon=icon, default=page.endswith("home.py")) for page, title, icon in PAGES],
    position="hidden",
)
sidebar()
navigation.run()
