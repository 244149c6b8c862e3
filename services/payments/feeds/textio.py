"""Bytes in, lines out: peeking at a stream, encodings, bounded line reading."""
from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from typing import BinaryIO

from services.payments.feeds.errors import StatementError

HEAD_SIZE = 64 * 1024
MAX_LINE = 64 * 1024  # a longer "line" is not a statement, and must not eat the memory
BUFFER = 256 * 1024

# The word "Кодировка" as each single-byte encoding writes it.
KODIROVKA = {enc: "Кодировка".encode(enc) for enc in ("cp1251", "cp866")}


class _Prefixed(io.RawIOBase):
    """Serves already-read head bytes, then the rest of the stream: lets us sniff a
    non-seekable upload and still read it from its first byte."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n


def peek(stream: BinaryIO, size: int = HEAD_SIZE) -> tuple[bytes, io.BufferedReader]:
    """The first ``size`` bytes and a reader that still starts at byte 0."""
    head = b""
    while len(head) < size:  # read() may return less than asked before the end
        chunk = stream.read(size - len(head))
        if not chunk:
            break
        head += chunk
    return head, io.BufferedReader(_Prefixed(head, stream), BUFFER)


def detect_encoding(head: bytes) -> str:
    """utf-8, cp1251 or cp866, decided from the bytes: files declare ``Кодировка=Windows``
    and are UTF-8 in the wild, and the key itself is Cyrillic anyway."""
    try:  # a BOM is valid UTF-8 too; lines() drops it from the first line
        # final=False: the head may end in the middle of a multi-byte character
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    for encoding, word in KODIROVKA.items():
        if word in head:
            return encoding
    return _by_letter_frequency(head)


def _by_letter_frequency(head: bytes) -> str:
    # cp866 puts А-Я and а-п at 0x80-0xAF, where cp1251 has rare punctuation;
    # cp1251 puts А-Я at 0xC0-0xDF and р-я at 0xF0-0xFF: box drawing and Ёё in cp866.
    dos = sum(head.count(bytes([b])) for b in range(0x80, 0xB0))
    windows = sum(head.count(bytes([b])) for b in [*range(0xC0, 0xE0), *range(0xF0, 0x100)])
    return "cp866" if dos > windows else "cp1251"


def lines(reader: io.BufferedReader, encoding: str) -> Iterator[tuple[int, str]]:
    """(line number, text without end of line) for CRLF or LF files, one line in memory.

    Splitting on b"\\n" before decoding is safe for UTF-8, cp1251 and cp866: none of them
    uses that byte inside a character.
    """
    decode = codecs.getdecoder(encoding)
    number = 0
    while True:
        raw = reader.readline(MAX_LINE + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE:
            raise StatementError.at(f"line {number}", f"longer than {MAX_LINE} bytes")
        try:
            text = decode(raw)[0]
        except UnicodeDecodeError as err:
            raise StatementError.at(f"line {number}", f"byte {raw[err.start]:#04x} is not "
                                    f"valid {encoding}; the file mixes encodings") from None
        if number == 1:
            text = text.lstrip("\ufeff")
        yield number, text.rstrip("\r\n")
