"""Who gets in (`core.sharing.access`): the door, signed sessions, guesses limited server-wide, link addresses."""

import threading
import time

import pytest

from core.sharing import access


@pytest.mark.parametrize(
    ("address", "password", "signed_in", "expected"),
    [
        (None, False, False, access.Door.DASHBOARD),  # Streamlit's word for a loopback connection
        ("127.0.0.1", False, False, access.Door.DASHBOARD),
        ("::1", False, False, access.Door.DASHBOARD),
        ("10.0.0.7", False, False, access.Door.CLOSED),
        ("2001:db8::1", False, False, access.Door.CLOSED),
        ("not an address", False, False, access.Door.CLOSED),
        (None, True, False, access.Door.SIGN_IN),  # with a password, the owner signs in too
        ("10.0.0.7", True, False, access.Door.SIGN_IN),
        ("10.0.0.7", True, True, access.Door.DASHBOARD),
    ],
)
def test_the_door(address, password, signed_in, expected):
    assert access.door(address, password, signed_in) is expected


def test_owner_addresses_replace_the_loopback_rule(monkeypatch):
    monkeypatch.setenv(access.OWNER_ADDRESSES_ENV, "192.0.2.1, 192.0.2.2")
    assert access.door("192.0.2.2", False, False) is access.Door.DASHBOARD
    assert access.door(None, False, False) is access.Door.CLOSED  # loopback is no longer the owner


def test_a_session_is_signed_for_its_password_and_ends_when_signed_out_or_expired():
    token = access.new_session("correct horse")
    assert access.session_valid(token, "correct horse")
    assert not access.session_valid(token, "a new password")  # a new password signs everyone out
    assert not access.session_valid(token, "correct horse", now=time.time() + 13 * 3600)
    payload, signature = token.split(".")
    assert not access.session_valid(f"{payload}x.{signature}", "correct horse")  # altered
    assert not access.session_valid(f"{payload}.{signature[:-2]}", "correct horse")
    for junk in ("", ".", "a.b", "x" * 5000, None):
        assert not access.session_valid(junk, "correct horse")
    other = access.new_session("correct horse")
    access.end_session(token, "correct horse")
    assert not access.session_valid(token, "correct horse")
    assert access.session_valid(other, "correct horse")  # signing out ends that session only


def test_the_cookie_script_quotes_its_value_and_marks_https_secure():
    script = access.cookie_script("abc.def", secure=True)
    assert "studio_session=abc.def; Max-Age=43200; Path=/; SameSite=Strict; Secure" in script
    assert "Max-Age=0" in access.cookie_script(None, secure=False)
    assert "</script><script>" not in access.cookie_script('"</script><script>alert(1)', secure=False)[8:-9]


def test_guesses_are_limited_per_address_and_overall():
    now = [0.0]
    limiter = access.GuessLimiter(per_address=3, overall=5, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert access.check_password("wrong", "right", "10.0.0.1", limiter) == (
            "That password is not right. Check it, or ask the person who runs this dashboard."
        )
    refusal = access.check_password("right", "right", "10.0.0.1", limiter)  # not even compared
    assert refusal.startswith("Too many wrong passwords were tried. Wait 60 s")
    assert access.check_password("right", "right", "10.0.0.2", limiter) is None  # another address is heard
    access.check_password("wrong", "right", "10.0.0.2", limiter)
    access.check_password("wrong", "right", "10.0.0.3", limiter)
    assert access.check_password("right", "right", "10.0.0.4", limiter).startswith("Too many")  # overall
    now[0] = 61.0
    assert access.check_password("right", "right", "10.0.0.1", limiter) is None


def test_32_parallel_guessers_get_no_more_guesses_than_one():
    """The attack from the issue: 32 sessions guessing at once, over raw websockets, from one address."""
    limiter = access.GuessLimiter()
    heard = []

    def guesser(k: int) -> None:
        for attempt in range(20):
            if access.check_password(f"guess-{k}-{attempt}", "right", "203.0.113.9", limiter) is None or (
                not limiter.wait_for("203.0.113.9")
            ):
                heard.append(k)

    threads = [threading.Thread(target=guesser, args=(k,)) for k in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failures = len(limiter._failures)
    assert failures == limiter.per_address  # 640 tries, 5 compared in the minute
    assert access.check_password("right", "right", "203.0.113.9", limiter).startswith("Too many")


def test_a_link_uses_the_address_the_browser_used_or_the_public_one(monkeypatch):
    assert access.link_base("http://studio.lab:8501/evaluate", "0.0.0.0", 8501) == ("http://studio.lab:8501/", "")
    base, caveat = access.link_base("http://localhost:8501/", "127.0.0.1", 8501)
    assert base == "http://localhost:8501/" and "opens only on this computer" in caveat
    monkeypatch.setattr("socket.gethostname", lambda: "studio-box")
    base, caveat = access.link_base("http://localhost:8765/", None, 8765)  # listening beyond this computer
    assert base == "http://studio-box:8765/" and "STUDIO_PUBLIC_URL" in caveat
    monkeypatch.setenv(access.PUBLIC_URL_ENV, "https://studio.example.org/")
    assert access.link_base("http://localhost:8501/", "127.0.0.1", 8501, "tools") == (
        "https://studio.example.org/tools/",
        "",
    )
