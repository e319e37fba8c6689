"""Fine-Tune Studio: the dashboard's entry point (navigation and the shared sidebar).

The pages live in `app_pages/`, not `pages/`: Streamlit treats a folder named `pages`
beside the entry script as a legacy multipage app until a session has run
`st.navigation`, which showed a fresh server's first visitor a raw file list
(docs/architecture.md).
"""

import streamlit as st

from app_pages.shared import sidebar

st.set_page_config(page_title="Fine-Tune Studio", page_icon=":material/model_training:", layout="wide")
navigation = st.navigation(
    [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/data.py", title="Data", icon=":material/photo_library:"),
        st.Page("app_pages/model.py", title="Model", icon=":material/neurology:"),
        st.Page("app_pages/train.py", title="Train", icon=":material/monitoring:"),
        st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
    ]
)
sidebar()
navigation.run()
