"""Talking to an IMAP mailbox (imap-tools over imaplib): open it, list what is new, read
one message without marking it, and mark it handled (seen, or moved) — the last only
after intake has committed the message's effect.  Also the cipher that keeps mailbox
passwords unreadable in the database."""
from __future__ import annotations

import base64
import hashlib
import re
import ssl
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from imap_tools import BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted

_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


class MailboxCipher:
    """Fernet (AES-128-CBC + HMAC) under a key derived from the service's secret: a
    database dump alone does not give the mailbox passwords away."""

    def __init__(self, secret: str) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(f"intake.mailbox:{secret}"
                                                      .encode()).digest())
        self.fernet = Fernet(key)

    def encrypt(self, password: str) -> str:
        return self.fernet.encrypt(password.encode()).decode()

    def decrypt(self, token: str) -> str | None:
        """None when the secret changed since the password was stored."""
        try:
            return self.fernet.decrypt(token.encode()).decode()
        except (InvalidToken, ValueError):
            return None


@dataclass(frozen=True)
class Account:
    host: str
    port: int
    security: str  # ssl / starttls / none
    login: str
    password: str
    folder: str
    move_to: str | None


class ImapError(Exception):
    """The server could not be reached, refused the login, or a command failed."""


def open_mailbox(account: Account, timeout: float) -> BaseMailBox:
    try:
        box: BaseMailBox
        if account.security == "ssl":
            box = MailBox(account.host, account.port, timeout=timeout,
                          ssl_context=ssl.create_default_context())
        elif account.security == "starttls":
            box = MailBoxStartTls(account.host, account.port, timeout=timeout,
                                  ssl_context=ssl.create_default_context())
        else:
            box = MailBoxUnencrypted(account.host, account.port, timeout=timeout)
        box.login(account.login, account.password, initial_folder=account.folder)
    except Exception as exc:  # imaplib, ssl and socket errors alike: the poll fails
        raise ImapError(f"{account.host}:{account.port}: {exc}") from exc
    return box


def _command(box: BaseMailBox, *args: Any) -> list[Any]:
    status, data = box.client.uid(*args)
    if status != "OK":
        raise ImapError(f"UID {args[0]} failed: {status} {data!r}")
    return list(data)


def folder_state(box: BaseMailBox, account: Account, last_uid: int | None
                 ) -> tuple[int, list[int], list[int]]:
    """(UIDVALIDITY, the UIDs above ``last_uid`` (none asked for on a first poll, when it
    is None), the unseen UIDs)."""
    try:
        validity = int(box.folder.status(account.folder, ["UIDVALIDITY"])["UIDVALIDITY"])
        above = [int(u) for u in box.uids(f"UID {last_uid + 1}:*")] if last_uid is not None \
            else []
        unseen = [int(u) for u in box.uids("UNSEEN")]
    except ImapError:
        raise
    except Exception as exc:
        raise ImapError(f"folder {account.folder}: {exc}") from exc
    return validity, above, unseen


def message_size(box: BaseMailBox, uid: int) -> int | None:
    for item in _command(box, "FETCH", str(uid), "(RFC822.SIZE)"):
        found = _SIZE.search(item if isinstance(item, bytes) else b"")
        if found:
            return int(found.group(1))
    return None


def fetch_raw(box: BaseMailBox, uid: int) -> bytes | None:
    """The message as sent, read with BODY.PEEK so the server does not mark it seen (a
    crash before intake commits leaves it as it was).  None: gone meanwhile."""
    for item in _command(box, "FETCH", str(uid), "(BODY.PEEK[])"):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None


def mark_done(box: BaseMailBox, account: Account, uid: int) -> None:
    """Seen (a plain STORE: imap-tools' flag() would also EXPUNGE the folder, deleting
    what a person marked deleted), or moved to ``move_to``."""
    try:
        if account.move_to:
            box.move(str(uid), account.move_to)
        else:
            _command(box, "STORE", str(uid), "+FLAGS.SILENT", r"(\Seen)")
    except ImapError:
        raise
    except Exception as exc:
        raise ImapError(f"marking {uid}: {exc}") from exc


def close(box: BaseMailBox) -> None:
    try:
        box.logout()
    except Exception:  # the connection is going away anyway
        box.client.shutdown()
