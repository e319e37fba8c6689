"""What leaves the dashboard about a run: its report, the run kept as one file, and read-only links."""

from __future__ import annotations

import datetime
from urllib.parse import urlencode

import streamlit as st

from core.results.report import build_report, report_name
from core.runs.directory import RunDirectory
from core.sharing import access
from core.sharing import links as sharing
from core.sharing.run_files import can_pack, pack_run, run_file_name


def say_download(key: str, words: str) -> None:
    """Remember, for the next view of the page, what a download button just gave (`said_download` shows it)."""
    st.session_state[f"gave_{key}"] = words


def said_download(key: str, place=st) -> None:
    """What the download button `key` gave, said on the page under it once it was clicked."""
    words = st.session_state.get(f"gave_{key}")
    if words:
        place.caption(f":material/download_done: {words}")


def report_download(run: RunDirectory, key: str = "download_report") -> None:
    """The report as one HTML file, made when clicked (it opens offline and prints cleanly)."""
    name = report_name(run)
    st.download_button(
        "Download the report (HTML)",
        data=lambda: build_report(run),
        file_name=name,
        mime="text/html",
        icon=":material/description:",
        key=key,
        on_click=say_download,
        args=(key, f"Downloaded {name}: one page that opens in any browser, offline, and prints cleanly."),
    )
    said_download(key)


def keep_as_file(run: RunDirectory, key: str) -> None:
    """The run as one file to open on another server (settings, history, results, model; not the photos)."""
    reason = can_pack(run)
    if reason:
        st.caption(reason)
        return
    st.download_button(
        "Keep this run as a file",
        data=lambda: pack_run(run),
        file_name=run_file_name(run),
        mime="application/zip",
        icon=":material/archive:",
        key=key,
        on_click=say_download,
        args=(
            key,
            f"Downloaded {run_file_name(run)}: its settings, history, results and model (not the photos). Open it "
            "on any Fine-Tune Studio server from the Runs page.",
        ),
        help="Settings, history, results and the model, not the photos. Open it on any Fine-Tune Studio server "
        "from the Runs page.",
    )
    said_download(key)


def link_address() -> tuple[str, str]:
    """The dashboard's address for someone else's browser, and a caveat to show beside a link ("" when none)."""
    return access.link_base(
        st.context.url,
        st.get_option("server.address"),
        int(st.get_option("server.port") or 8501),
        st.get_option("server.baseUrlPath") or "",
    )


def share_panel(run: RunDirectory) -> None:
    """Make a read-only link to this run, and turn off links already given."""
    st.caption(
        "A link that shows this run only: its results, curves, the report and trying it on a photo. Whoever opens "
        "it cannot train, change settings, see the data folders or any other run. Turn a link off at any time."
    )
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    note = left.text_input("Who is it for? (optional, shown only to you)", key=f"share_note_{run.id}", max_chars=200)
    if right.button("Make a read-only link", key=f"make_share_{run.id}", icon=":material/link:"):
        token = sharing.make_link(run.id, note)
        base, caveat = link_address()
        st.session_state[f"share_made_{run.id}"] = (f"{base}?{urlencode({'share': token})}", caveat)
    made = st.session_state.get(f"share_made_{run.id}")
    if made:
        st.code(made[0], language=None, wrap_lines=True)
        st.caption("Copy the link with the button at its right, and send it. " + made[1])
    links = [link for link in sharing.links_for(run.id) if link.active]
    for link in links:
        when = datetime.datetime.fromtimestamp(link.made).strftime("%d %b %H:%M")
        line, off = st.columns([4, 1], vertical_alignment="center")
        line.markdown(f"Link made {when}" + (f" for *{link.note}*" if link.note else ""))
        if off.button("Turn off", key=f"revoke_{link.link}"):
            sharing.revoke(link.link)
            st.session_state.pop(f"share_made_{run.id}", None)
            st.toast("That link no longer opens anything.")
            st.rerun()
