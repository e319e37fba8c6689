"""Read-only links to one run, and the password that closes the full dashboard.

A share link carries a token: the run's id and a random link id, signed with HMAC-SHA256
under a secret this server makes on first use and keeps in its data folder
(`STUDIO_DATA/share-secret`, readable by its owner only). A token cannot be forged or
altered into another run without the secret, and each link is listed in `shares.json`,
so revoking it refuses the token from then on. Nothing here imports Streamlit.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from core.base.errors import InputError
from core.base.files import data_home, write_atomic


class ShareRefused(InputError):
    """A share link that does not open anything; the message says why in plain words."""


@dataclass(frozen=True)
class ShareLink:
    """One link handed out: which run it shows, when it was made, and whether it was revoked."""

    link: str
    run: str
    made: float
    note: str = ""
    revoked: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None


def _secret_path() -> Path:
    return data_home() / "share-secret"


def _links_path() -> Path:
    return data_home() / "shares.json"


def server_secret() -> bytes:
    """The signing secret: 32 random bytes made on first use, kept with owner-only permissions."""
    path = _secret_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:  # this process made the file: the first writer wins, a concurrent reader waits below
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_bytes(32).hex().encode())
            handle.flush()
            os.fsync(handle.fileno())
    for _ in range(100):
        text = path.read_text().strip()
        if len(text) == 64:
            return bytes.fromhex(text)
        time.sleep(0.01)  # another process is writing it
    raise RuntimeError(f"The share secret {path} is damaged: delete it (every share link made so far stops working).")


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(payload: str) -> str:
    return _encode(hmac.new(server_secret(), payload.encode(), hashlib.sha256).digest())


def _read_links() -> list[ShareLink]:
    try:
        rows = json.loads(_links_path().read_text())
        return [ShareLink(**row) for row in rows]
    except (OSError, ValueError, TypeError):
        return []


def _change_links(change) -> list[ShareLink]:
    """Apply `change(links) -> links` under a file lock, so two tabs never lose each other's link."""
    path = _links_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        links = change(_read_links())
        write_atomic(path, json.dumps([dataclasses.asdict(link) for link in links], indent=1))
    return links


def make_link(run_id: str, note: str = "") -> str:
    """A new signed token showing `run_id` only; it is listed (and revocable) from now on."""
    link = ShareLink(link=secrets.token_urlsafe(9), run=run_id, made=time.time(), note=note.strip()[:200])
    _change_links(lambda links: [*links, link])
    payload = _encode(json.dumps({"run": run_id, "link": link.link}, separators=(",", ":")).encode())
    return f"{payload}.{_signature(payload)}"


def links_for(run_id: str) -> list[ShareLink]:
    """The links made for `run_id`, newest first (revoked ones too, marked)."""
    return sorted((link for link in _read_links() if link.run == run_id), key=lambda link: link.made, reverse=True)


def revoke(link_id: str) -> None:
    """Refuse the link's token from now on (every tab that opened it is refused at its next step)."""
    now = time.time()
    _change_links(
        lambda links: [
            dataclasses.replace(link, revoked=now) if link.link == link_id and link.active else link for link in links
        ]
    )


def forget_run(run_id: str) -> None:
    """Drop every link to a run that was deleted."""
    _change_links(lambda links: [link for link in links if link.run != run_id])


def open_link(token: str) -> ShareLink:
    """The link a token stands for, checked: signed by this server, unaltered, not revoked.

    Raises:
        ShareRefused: in plain words, whatever is wrong with it.
    """
    payload, dot, signature = (token or "").strip().partition(".")
    if not dot or not payload or not signature or len(token) > 1000:
        raise ShareRefused("This share link is incomplete. Ask for the whole link again.")
    if not hmac.compare_digest(signature.encode(), _signature(payload).encode()):
        raise ShareRefused(
            "This share link is not valid: it was changed, or it was made by another server. Ask for a new link."
        )
    try:
        claims = json.loads(_decode(payload))
        run_id, link_id = str(claims["run"]), str(claims["link"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ShareRefused("This share link is not valid. Ask for a new link.") from None
    link = next((link for link in _read_links() if link.link == link_id and link.run == run_id), None)
    if link is None:
        raise ShareRefused("This share link no longer exists: the run was deleted. Ask for a new link.")
    if not link.active:
        raise ShareRefused("This share link was turned off by the person who shared it. Ask them for a new one.")
    return link


def configured_password(secrets_password: str | None = None) -> str | None:
    """The dashboard's password: `STUDIO_PASSWORD`, else Streamlit's secrets (`password`); None leaves it open."""
    password = os.environ.get("STUDIO_PASSWORD") or secrets_password
    return password or None


def password_matches(given: str, expected: str) -> bool:
    """Compared in constant time: digests of equal length, so neither content nor length leaks."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(),
        hashlib.sha256(expected.encode()).digest(),
    )
