"""Sign in: the dashboard is closed with a password (`STUDIO_PASSWORD` or Streamlit's secrets)."""

import time

import streamlit as st

from app_pages.shared import dashboard_password
from core.sharing import password_matches

_, middle, _ = st.columns([1, 2, 1])  # a narrow form, not one stretched across a wide screen
middle.title("Fine-Tune Studio")
middle.markdown("This dashboard is private. Sign in with the password of the person who runs it.")
with middle.form("sign_in"):
    given = st.text_input("Password", type="password", key="password_given")
    if st.form_submit_button("Sign in", type="primary"):
        expected = dashboard_password()
        if expected is None or password_matches(given, expected):
            st.session_state["signed_in"] = True
            st.rerun()
        time.sleep(1.0)  # a guess a second, at most, per tab
        st.error("That password is not right. Check it, or ask the person who runs this dashboard.")
middle.caption("Were you sent a link to one run? Open that link itself: it needs no password.")
