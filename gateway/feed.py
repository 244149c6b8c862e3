"""The deal feed (D8): comments, reminders, calls and receipts merged in time order, and
the files attached to comments.

Files live on a volume (``FILES_DIR``, default var/files) under a random 32-hex key; the
deals service keeps only their metadata.  A file is checked before it is trusted: its size
is limited, and it is called an image only when its bytes say so (a browser is never told
``image/*`` for an HTML file renamed .png)."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from services.kit.errors import ValidationError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MAX_FILE = 20 * 1024 * 1024

# The leading bytes of the image formats a browser shows inline.
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))


def sniff_image(head: bytes) -> str | None:
    """The image type the bytes really are, or None (SVG is not an image here: it can
    carry scripts)."""
    for magic, content_type in _IMAGE_MAGIC:
        if head.startswith(magic):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def files_dir(config: dict[str, Any]) -> Path:
    return Path(config.get("FILES_DIR") or os.environ.get("FILES_DIR") or ROOT / "var" / "files")


def max_file_bytes(config: dict[str, Any]) -> int:
    return int(config.get("MAX_FILE_BYTES") or os.environ.get("MAX_FILE_BYTES")
               or DEFAULT_MAX_FILE)


@dataclass(frozen=True)
class StoredFile:
    key: str
    name: str
    size: int
    content_type: str

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "size": self.size,
                "content_type": self.content_type}


def _path(folder: Path, key: str) -> Path:
    if len(key) != 32 or any(c not in "0123456789abcdef" for c in key):
        raise ValidationError("Это не сохранённый файл.", field="file", key="file.name")
    return folder / key[:2] / key


def store(stream: IO[bytes], filename: str, folder: Path, limit: int,
          field: str = "files") -> StoredFile:
    """Copy an upload to the volume, refusing it past ``limit`` bytes (nothing is left
    behind); images get their type from their bytes, anything else is a download."""
    name = os.path.basename((filename or "").replace("\\", "/")).strip()[:255] or "file"
    key = secrets.token_hex(16)
    target = _path(folder, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    size, head = 0, b""
    partial = target.with_suffix(".part")
    try:
        with open(partial, "wb") as out:
            while chunk := stream.read(64 * 1024):
                if not head:
                    head = chunk[:16]
                size += len(chunk)
                if size > limit:
                    raise ValidationError(f"Файл «{name}» больше {limit // (1024 * 1024)} МБ.",
                                          field=field, key="file.too_large_mb",
                                          params={"name": name, "max": limit // (1024 * 1024)})
                out.write(chunk)
        if size == 0:
            raise ValidationError(f"Файл «{name}» пустой.", field=field, key="file.empty_named",
                                  params={"name": name})
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return StoredFile(key, name, size, sniff_image(head) or "application/octet-stream")


def open_stored(folder: Path, key: str) -> Path:
    path = _path(folder, key)
    if not path.is_file():
        raise FileNotFoundError(key)
    return path


def remove_stored(folder: Path, keys: list[str]) -> None:
    """Undo uploads whose comment was refused, so no orphan stays on the volume."""
    for key in keys:
        _path(folder, key).unlink(missing_ok=True)


# ------------------------------------------------------------------------------- feed

def _entry(kind: str, at: Any, item: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "at": str(at or ""), "item": item}


def merge_feed(calls: list[dict[str, Any]] | None, receipts: list[dict[str, Any]] | None,
               entries: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Newest first.  ``entries`` are the deal's own feed lines (comments, completed
    reminders, receipts it heard of); a receipt payments also lists is shown once, as
    payments has it now."""
    live = {r.get("id") for r in receipts or []}
    feed = []
    for e in entries or []:
        if e.get("kind") == "receipt":
            if e.get("data", {}).get("receipt_id") in live:
                continue
            e = {**e["data"], "id": e["data"].get("receipt_id"), "created_at": e["created_at"]}
            feed.append(_entry("receipt", e["created_at"], e))
            continue
        feed.append(_entry(e.get("kind", "comment"), e.get("created_at"), e))
    feed += [_entry("call", c.get("started_at"), c) for c in calls or []]
    feed += [_entry("receipt", r.get("created_at") or r.get("received_on"), r)
             for r in receipts or []]
    return sorted(feed, key=lambda e: e["at"], reverse=True)
