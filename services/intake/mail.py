"""Reading one inbound message: who sent it, what it answers, its text, its HTML (to be
sanitised by intake) and its attachments.  Pure: bytes in, a dict out."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import message_from_bytes
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import default
from email.utils import getaddresses, make_msgid, parseaddr
from functools import lru_cache
from typing import Any

# Headers that tell an automatic message from a person's (domain.is_auto_reply).
AUTO_HEADERS = ("Auto-Submitted", "Precedence", "List-Id", "List-Unsubscribe",
                "X-Autoreply", "X-Autorespond")


class _RememberingRegistry(HeaderRegistry):
    """The standard header registry, remembering the headers it parsed lately.  Reading
    a message's body asks for its Content-Type nine times, and each ask parsed it anew
    (most of the 1.4 ms a message took); the same few Content-Type values come on every
    message.  A parsed header is immutable, so one can serve every message that has it."""

    def __init__(self) -> None:
        super().__init__()
        self._parsed = lru_cache(maxsize=1024)(super().__call__)

    def __call__(self, name: str, value: str) -> BaseHeader:
        return self._parsed(name, value)  # type: ignore[no-any-return]


POLICY = default.clone(header_factory=_RememberingRegistry())


class MalformedMail(ValueError):
    """The message cannot be read as mail (no sender, broken structure)."""


@dataclass
class Parsed:
    mail: dict[str, Any]
    files: list[tuple[str, bytes]] = field(default_factory=list)


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, IndexError):  # a header the parser cannot decode
        return ""
    return re.sub(r"\s+", " ", str(value or "")).strip()


def parse(raw: bytes, envelope_from: str = "", mailbox: str = "") -> Parsed:
    try:
        message = message_from_bytes(raw, policy=POLICY)
    except Exception as exc:  # the stdlib parser is lenient; this is truly broken input
        raise MalformedMail(f"unreadable message: {exc}") from exc
    assert isinstance(message, EmailMessage)
    name, address = parseaddr(_header(message, "From"))
    address = address or envelope_from
    if "@" not in address:
        raise MalformedMail("no sender address")
    message_id = _header(message, "Message-ID")
    if not re.fullmatch(r"<[^<>\s]+>", message_id):
        # A message without a usable id still needs one, to be recorded once.
        message_id = make_msgid(domain="intake.invalid")
    text = html = ""
    try:
        plain = message.get_body(preferencelist=("plain",))
        rich = message.get_body(preferencelist=("html",))
        text = plain.get_content() if plain is not None else ""
        html = rich.get_content() if rich is not None else ""
    except (LookupError, KeyError, ValueError) as exc:
        raise MalformedMail(f"unreadable body: {exc}") from exc
    files = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload:
            files.append((part.get_filename() or "file", payload))
    to = ", ".join(a for _, a in getaddresses([_header(message, "To")]) if a)
    return Parsed({
        "message_id": message_id, "from": address.lower(), "from_name": name,
        "to": to, "mailbox": mailbox, "subject": _header(message, "Subject"),
        "text": text, "html": html, "in_reply_to": _header(message, "In-Reply-To"),
        "references": _header(message, "References"),
        "headers": {h: _header(message, h) for h in AUTO_HEADERS if message.get(h)},
    }, files)
