"""Who gets in: the owner's own computer, people signed in with the password, and read-only links.

The dashboard is closed by default. Without a password it serves its full pages only to the
computer it runs on (a loopback address, or `STUDIO_OWNER_ADDRESSES`); anyone else gets a
read-only link's run or nothing. With a password everyone signs in, and stays signed in for
`SESSION_HOURS` in that browser through a cookie signed with the server's secret, so a reload,
a new tab or a pasted link does not ask again. Changing the password signs everyone out.

Password guesses are limited across every session of the server, per address and overall
(`GuessLimiter`), so opening more tabs or websockets buys no more guesses. Nothing here imports
Streamlit.
"""

from __future__ import annotations

import binascii
import collections
import enum
import fcntl
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from core.base.files import data_home, write_atomic
from core.sharing.links import _decode, _encode, password_matches, server_secret

SESSION_COOKIE = "studio_session"
SESSION_HOURS = 12
OWNER_ADDRESSES_ENV = "STUDIO_OWNER_ADDRESSES"
PUBLIC_URL_ENV = "STUDIO_PUBLIC_URL"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


class Door(enum.Enum):
    """What a visitor without a read-only link gets."""

    DASHBOARD = "dashboard"
    SIGN_IN = "sign in"
    CLOSED = "closed"


def is_owner_address(address: str | None) -> bool:
    """Whether a connection from `address` is the computer the dashboard runs on.

    `None` is how Streamlit reports a loopback connection. `STUDIO_OWNER_ADDRESSES` (a comma
    list) replaces the loopback rule, for an owner who works from another fixed address.
    """
    address = address if isinstance(address, str) else None  # a test harness's stand-in reads as loopback
    configured = os.environ.get(OWNER_ADDRESSES_ENV)
    if configured is not None:
        allowed = {part.strip() for part in configured.split(",") if part.strip()}
        return (address or "127.0.0.1") in allowed
    if address is None:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def door(address: str | None, password_set: bool, signed_in: bool) -> Door:
    """The full dashboard for a signed-in person, or for the owner's computer when there is no password."""
    if password_set:
        return Door.DASHBOARD if signed_in else Door.SIGN_IN
    return Door.DASHBOARD if is_owner_address(address) else Door.CLOSED


CLOSED_MESSAGE = (
    "This dashboard is open only on the computer it runs on. To let other computers in, the person who runs "
    "it sets a password (see “Running it for a team” in the README); a read-only link to one run opens without one."
)


# --- Sessions: a signed cookie ----------------------------------------------------------------


def _session_key(password: str) -> bytes:
    """The key sessions are signed with: the server's secret and the password, so a new password ends them all."""
    return hmac.new(server_secret(), b"session:" + hashlib.sha256(password.encode()).digest(), hashlib.sha256).digest()


def _signed_out_path() -> Path:
    return data_home() / "signed-out.json"


def _signed_out() -> dict[str, float]:
    try:
        rows = json.loads(_signed_out_path().read_text())
        return {str(key): float(value) for key, value in rows.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def new_session(password: str, now: float | None = None, hours: float = SESSION_HOURS) -> str:
    """A token for the session cookie, valid for `hours`."""
    now = time.time() if now is None else now
    claims = {"id": secrets.token_urlsafe(12), "exp": int(now + hours * 3600)}
    payload = _encode(json.dumps(claims, separators=(",", ":")).encode())
    signature = _encode(hmac.new(_session_key(password), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def _claims(token: str, password: str) -> dict | None:
    if not isinstance(token, str):
        return None
    payload, dot, signature = token.partition(".")
    if not dot or len(token) > 400:
        return None
    expected = _encode(hmac.new(_session_key(password), payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    try:
        claims = json.loads(_decode(payload))
        return {"id": str(claims["id"]), "exp": float(claims["exp"])}
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None


def session_valid(token: str | None, password: str, now: float | None = None) -> bool:
    """Whether a cookie's token was signed here for this password, has not expired and was not signed out."""
    claims = _claims(token or "", password)
    now = time.time() if now is None else now
    return claims is not None and claims["exp"] > now and claims["id"] not in _signed_out()


def end_session(token: str | None, password: str) -> None:
    """Sign a session out for good: its token is refused from now on, whoever still holds it."""
    claims = _claims(token or "", password)
    if claims is None:
        return
    path = _signed_out_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        now = time.time()
        kept = {key: expiry for key, expiry in _signed_out().items() if expiry > now}  # expired ones are refused anyway
        kept[claims["id"]] = claims["exp"]
        write_atomic(path, json.dumps(kept))


def cookie_script(token: str | None, secure: bool, hours: float = SESSION_HOURS) -> str:
    """The script that keeps (or, with no token, removes) the session cookie in the browser."""
    age = int(hours * 3600) if token else 0
    value = token or ""
    flags = "; Path=/; SameSite=Strict" + ("; Secure" if secure else "")
    quoted = json.dumps(f"{SESSION_COOKIE}={value}; Max-Age={age}{flags}").replace("<", "\\u003c")  # no </script>
    return f"<script>document.cookie = {quoted};</script>"


# --- Password guesses, across every session -----------------------------------------------------


class GuessLimiter:
    """At most `per_address` wrong passwords a minute from one address, and `overall` from everyone.

    Kept in the server process, so every tab and websocket of every visitor counts against the
    same limits. While the overall limit is reached nobody's guess is heard, the right password
    included, for at most a minute: the price of a guesser getting nowhere.
    """

    def __init__(
        self, per_address: int = 5, overall: int = 20, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ):
        self.per_address, self.overall, self.window, self.clock = per_address, overall, window, clock
        self._lock = threading.Lock()
        self._failures: collections.deque[tuple[float, str]] = collections.deque()

    def _forget_old(self, now: float) -> None:
        while self._failures and self._failures[0][0] <= now - self.window:
            self._failures.popleft()

    def wait_for(self, address: str | None) -> float:
        """Seconds before a guess from `address` is heard (0: now)."""
        with self._lock:
            now = self.clock()
            self._forget_old(now)
            mine = [when for when, who in self._failures if who == (address or "")]
            waits = [0.0]
            if len(mine) >= self.per_address:
                waits.append(mine[-self.per_address] + self.window - now)
            if len(self._failures) >= self.overall:
                waits.append(self._failures[-self.overall][0] + self.window - now)
            return max(waits)

    def failed(self, address: str | None) -> None:
        with self._lock:
            self._failures.append((self.clock(), address or ""))


LIMITER = GuessLimiter()


def check_password(given: str, expected: str, address: str | None, limiter: GuessLimiter | None = None) -> str | None:
    """None when `given` is right and may be tried now; else what to tell the person.

    A guess made while its address (or the whole server) is over the limit is not even compared.
    """
    limiter = limiter or LIMITER
    address = address if isinstance(address, str) else None
    wait = limiter.wait_for(address)
    if wait > 0:
        return (
            f"Too many wrong passwords were tried. Wait {max(1, round(wait))} s, then try again, or ask the person "
            "who runs this dashboard."
        )
    if password_matches(given, expected):
        return None
    limiter.failed(address)
    return "That password is not right. Check it, or ask the person who runs this dashboard."


# --- The address a link is given with -----------------------------------------------------------


def link_base(browser_url: str | None, listen_address: str | None, port: int, base_path: str = "") -> tuple[str, str]:
    """The address to put in a link for someone else, and a caveat to say beside it ("" when none).

    `STUDIO_PUBLIC_URL` wins; else the address the person's browser used, unless that is this
    computer's own name (a colleague's `localhost` is their computer), when the server's host
    name is used if the server listens beyond this computer.
    """
    base = base_path.strip("/")
    tail = f"/{base}/" if base else "/"
    public = os.environ.get(PUBLIC_URL_ENV, "").strip().rstrip("/")
    if public:
        return f"{public}{tail}", ""
    parts = urlsplit(browser_url or f"http://localhost:{port}")
    if (parts.hostname or "localhost") not in LOOPBACK_NAMES:
        return f"{parts.scheme}://{parts.netloc}{tail}", ""
    if (listen_address or "").strip() in LOOPBACK_NAMES:
        return (
            f"{parts.scheme}://{parts.netloc}{tail}",
            "This link opens only on this computer: the dashboard is closed to other computers until it has a "
            f"password (README, “Running it for a team”). Set {PUBLIC_URL_ENV} to the address colleagues use.",
        )
    host = socket.gethostname() or socket.getfqdn()
    return (
        f"{parts.scheme}://{host}:{parts.port or port}{tail}",
        f"Made with this server's name, {host}; if colleagues reach it by another address, set {PUBLIC_URL_ENV}.",
    )
