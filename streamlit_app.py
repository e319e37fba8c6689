"""Fine-Tune Studio: the dashboard's entry point (navigation and the shared sidebar).

The pages live in `app_pages/`, not `pages/`: Streamlit treats a folder named `pages`
beside the entry script as a legacy multipage app until a session has run
`st.navigation`, which showed a fresh server's first visitor a raw file list
(docs/architecture.md).
"""

from pathlib import Path

import streamlit as st

from app_pages.navigation import PAGE_ICON, PAGES, sidebar
from app_pages.session_views import dashboard_password, remember_session
from app_pages.shared import say_missing_run
from core.sharing import access

st.set_page_config(page_title="Fine-Tune Studio", page_icon=PAGE_ICON, layout="wide")


def only(page: str, title: str) -> None:
    """Serve `page` at every page's address (a link to /train shows it too, with no "page not found"),
    and nothing else: no sidebar, no other page."""
    paths = [Path(other).stem for other, _, _ in PAGES if not other.endswith("home.py")]
    pages = [st.Page(page, title=title, default=True)]
    pages += [st.Page(page, title=title, url_path=path) for path in paths]
    st.navigation(pages, position="hidden").run()
    st.stop()


# A read-only link (`?share=`) shows its one run and nothing else, whoever opens it. Everything
# else is closed until the person is let in (`core.sharing.access`): signed in with the password (a
# signed cookie keeps them in across reloads and tabs), or, with no password set, on the
# computer the dashboard runs on.
if "share" in st.query_params:
    only("app_pages/presentation.py", "Shared run")
password = dashboard_password()
if password and not st.session_state.get("signed_in"):
    remember_session(password)
match access.door(st.context.ip_address, bool(password), bool(st.session_state.get("signed_in"))):
    case access.Door.SIGN_IN:
        only("app_pages/sign_in.py", "Sign in")
    case access.Door.CLOSED:
        only("app_pages/closed.py", "Fine-Tune Studio")
# The navigation is drawn by `sidebar()`, whose links keep the followed run in the URL (`?run=`);
# Streamlit's own would drop it on every page change.
navigation = st.navigation(
    [st.Page(page, title=title, icon=icon, default=page.endswith("home.py")) for page, title, icon in PAGES],
    position="hidden",
)
sidebar()
say_missing_run()  # on every page: a link to a run that is not here is never silently replaced
navigation.run()
