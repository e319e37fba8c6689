"""Read-only links and the dashboard's password: what opens, and everything that must not."""

import base64
import json
import os
import stat

import pytest

from core.sharing import links as sharing
from core.sharing.links import ShareRefused


def _payload(token: str) -> dict:
    text = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def _encode(claims: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).rstrip(b"=").decode()


def test_a_link_opens_its_run_and_the_secret_is_the_owners_alone(isolated_workspace):
    token = sharing.make_link("run-a", "the board")
    link = sharing.open_link(token)
    assert (link.run, link.note, link.active) == ("run-a", "the board", True)
    secret = isolated_workspace / "data" / "share-secret"
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert sharing.open_link(sharing.make_link("run-a")).link != link.link  # every link is its own


def test_an_altered_token_cannot_reach_another_run():
    token = sharing.make_link("run-a")
    claims = _payload(token)
    sharing.make_link("run-b")
    forged = _encode({**claims, "run": "run-b"}) + "." + token.split(".")[1]
    with pytest.raises(ShareRefused, match="not valid: it was changed"):
        sharing.open_link(forged)


@pytest.mark.parametrize(
    "token",
    ["", "no-dot", ".", "abc.", ".abc", "x" * 2000, "eyJydW4iOiJhIn0.c2lnbmF0dXJl", "%%%.???"],
)
def test_a_forged_or_broken_token_is_refused_in_words(token):
    sharing.make_link("run-a")
    with pytest.raises(ShareRefused) as refused:
        sharing.open_link(token)
    assert "Ask" in str(refused.value)


def test_a_token_signed_by_another_server_is_refused(isolated_workspace, monkeypatch):
    token = sharing.make_link("run-a")
    monkeypatch.setenv("STUDIO_DATA", str(isolated_workspace / "other-server"))
    sharing.make_link("run-a")  # the other server has its own secret and its own links
    with pytest.raises(ShareRefused, match="made by another server"):
        sharing.open_link(token)


def test_a_revoked_link_is_refused_and_the_others_still_open():
    first, second = sharing.make_link("run-a"), sharing.make_link("run-a")
    sharing.revoke(sharing.open_link(first).link)
    with pytest.raises(ShareRefused, match="turned off"):
        sharing.open_link(first)
    assert sharing.open_link(second).run == "run-a"
    assert [link.active for link in sharing.links_for("run-a")] == [True, False]  # newest first


def test_a_deleted_runs_links_stop_opening():
    token = sharing.make_link("run-a")
    sharing.forget_run("run-a")
    with pytest.raises(ShareRefused, match="no longer exists"):
        sharing.open_link(token)


def test_the_password_is_compared_whole_and_the_dashboard_is_open_without_one(monkeypatch):
    assert sharing.password_matches("correct horse", "correct horse")
    for wrong in ("", "correct hors", "correct horse ", "Correct horse", "correct horse" * 50):
        assert not sharing.password_matches(wrong, "correct horse")
    monkeypatch.delenv("STUDIO_PASSWORD", raising=False)
    assert sharing.configured_password() is None
    assert sharing.configured_password("from secrets") == "from secrets"
    monkeypatch.setenv("STUDIO_PASSWORD", "from env")
    assert sharing.configured_password("from secrets") == "from env"
