"""Where statement files live on disk: uploads the gateway stored, the inbox folder a bank
client drops files into, and what happens to a file after its import."""
from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path
from typing import BinaryIO

from services.kit.errors import ValidationError
from services.payments.feeds import detect_format
from services.payments.feeds.textio import HEAD_SIZE

_STORED_NAME = re.compile(r"[0-9a-f]{32}")


class Storage:
    """``<STATEMENTS_DIR>/uploads/<32 hex>``: files the gateway stored for an upload.
    ``<STATEMENTS_INBOX_DIR>``: where a bank client drops statements; taken files move to
    ``processing/``, then ``processed/`` or ``failed/`` (with ``<name>.error.txt``)."""

    def __init__(self, root: str | Path, inbox: str | Path | None = None) -> None:
        self.root = Path(root)
        self.uploads = self.root / "uploads"
        self.inbox = Path(inbox) if inbox else None

    def upload_path(self, stored_name: str) -> Path:
        if not isinstance(stored_name, str) or not _STORED_NAME.fullmatch(stored_name):
            raise ValidationError("Это не имя загруженного файла.", field="file", key="file.name")
        return self.uploads / stored_name

    def inbox_dir(self, part: str) -> Path:
        assert self.inbox is not None
        folder = self.inbox / part
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def job_path(self, kind: str, stored_name: str) -> Path:
        if kind == "inbox":
            assert self.inbox is not None
            return self.inbox_dir("processing") / Path(stored_name).name
        return self.upload_path(stored_name)

    def dispose(self, kind: str, stored_name: str, error: str | None) -> None:
        """After the import: an upload is deleted (its transactions are in the database);
        an inbox file moves to processed/ or failed/."""
        try:
            path = self.job_path(kind, stored_name)
        except ValidationError:
            return
        if not path.exists():
            return
        if kind != "inbox":
            path.unlink(missing_ok=True)
            return
        original = path.name.split("__", 1)[-1]
        target = self.inbox_dir("failed" if error else "processed") / free_name(
            self.inbox_dir("failed" if error else "processed"), original)
        os.replace(path, target)
        if error:
            target.with_name(target.name + ".error.txt").write_text(error + "\n",
                                                                    encoding="utf-8")


def free_name(folder: Path, name: str) -> str:
    if not (folder / name).exists():
        return name
    stem, dot, suffix = name.rpartition(".")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stem or suffix}-{stamp}-{uuid.uuid4().hex[:6]}{dot}{suffix if stem else ''}"


def sniff(path: Path, max_bytes: int) -> tuple[int, str]:
    """Size and format of a file, checked before anything trusts it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ValidationError("Загруженный файл пропал: загрузите его снова.", field="file",
                              key="file.gone") from None
    if size == 0:
        raise ValidationError("Файл пустой.", field="file", key="file.empty")
    if size > max_bytes:
        raise ValidationError(f"Файл — {size} байт, больше предела {max_bytes}.", field="file",
                              key="file.too_large", params={"size": size, "max": max_bytes})
    with path.open("rb") as handle:
        head = handle.read(HEAD_SIZE)
    return size, detect_format(head)


class CountingReader:
    """A binary stream that counts the bytes read through it (for progress)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data
