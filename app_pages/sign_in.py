"""Sign in: the dashboard is closed with a password (`STUDIO_PASSWORD` or Streamlit's secrets).

A right password keeps this browser signed in for `core.sharing.access.SESSION_HOURS` (a signed cookie),
so a reload, a new tab or a pasted link does not ask again; guesses are limited server-wide.
"""

import time

import streamlit as st

from app_pages.session_views import dashboard_password, keep_cookie
from core.sharing import access

keep_cookie()  # after "Sign out", the browser forgets its cookie here
_, middle, _ = st.columns([1, 2, 1])  # a narrow form, not one stretched across a wide screen
middle.title("Fine-Tune Studio")
middle.markdown("This dashboard is private. Sign in with the password of the person who runs it.")
with middle.form("sign_in"):
    given = st.text_input("Password", type="password", key="password_given")
    if st.form_submit_button("Sign in", type="primary"):
        expected = dashboard_password() or ""
        refusal = access.check_password(given, expected, st.context.ip_address)
        if refusal is None:
            token = access.new_session(expected)
            st.session_state.update(signed_in=True, session_token=token, cookie=token)
            st.rerun()
        time.sleep(1.0)  # a wrong guess costs its tab a second too
        st.error(refusal)
middle.caption(
    f"You stay signed in on this browser for {access.SESSION_HOURS} hours, until you sign out. "
    "Were you sent a link to one run? Open that link itself: it needs no password."
)
