"""Signing in and out of a closed dashboard: the password, and the browser's session cookie (`core.sharing.access`)."""

from __future__ import annotations

import streamlit as st

from core.sharing import access
from core.sharing.links import configured_password


def dashboard_password() -> str | None:
    """The password that closes the dashboard: `STUDIO_PASSWORD`, else `password` in Streamlit's secrets."""
    try:
        secret = st.secrets.get("password")
    except Exception:  # noqa: BLE001 - no secrets file, or one that cannot be read: no password from there
        secret = None
    return configured_password(str(secret) if secret else None)


def remember_session(password: str) -> None:
    """Let in a browser whose session cookie is still good (signed here, not expired, not signed out)."""
    token = st.context.cookies.get(access.SESSION_COOKIE)
    if token and access.session_valid(token, password):
        st.session_state.update(signed_in=True, session_token=token)


def keep_cookie() -> None:
    """Write (after signing in) or remove (after signing out) the browser's session cookie, once."""
    if "cookie" in st.session_state:
        secure = (st.context.url or "").startswith("https:")
        st.html(access.cookie_script(st.session_state.pop("cookie"), secure), unsafe_allow_javascript=True)


def sign_out() -> None:
    password = dashboard_password()
    if password:
        access.end_session(st.session_state.get("session_token"), password)
    for key in ("signed_in", "session_token", "draft", "run_id"):
        st.session_state.pop(key, None)
    st.session_state["cookie"] = None
