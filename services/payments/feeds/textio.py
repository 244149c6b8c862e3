"""Bytes in, lines out: peeking at a stream, encodings, bounded line reading."""
from __future__ import annotations

import codecs
import io
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from services.payments.feeds.errors import StatementError

HEAD_SIZE = 64 * 1024
MAX_LINE = 64 * 1024  # a longer "line" is not a statement, and must not eat the memory
# 64 KB parse as fast as 256 KB did, and the block, its decoded text and the next read
# held at once cost 2 MB less
BUFFER = 64 * 1024

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
    """(line number, text without end of line) for CRLF or LF files, one line in memory."""
    for first, block in line_blocks(reader, encoding):
        for offset, text in enumerate(block):
            yield first + offset, text.rstrip("\r")


def line_blocks(reader: io.BufferedReader, encoding: str,
                size: int = BUFFER) -> Iterator[tuple[int, list[str]]]:
    """(number of the first line, lines) for about ``size`` bytes at a time: each block is
    decoded with one call and split once, which is several times faster than a line at a
    time, and memory stays bounded by the block (and MAX_LINE).  The lines of a CRLF
    block come without their "\r"; those of a block that mixes line ends keep it (strip
    it); the line limit and the error for an undecodable byte are
    the same as reading a line at a time, and the lines before a bad one are given first.

    Splitting on b"\n" before decoding is safe for UTF-8, cp1251 and cp866: none of them
    uses that byte inside a character.
    """
    return _blocks(reader, encoding, size, _decoded)


def text_blocks(reader: io.BufferedReader, encoding: str,
                size: int = BUFFER) -> Iterator[tuple[int, str]]:
    """``line_blocks`` without the split: (number of the first line, the decoded text of
    whole lines, each ending with "\n" but the file's last one, which may not; a CRLF
    line keeps its "\r").  For a parser that finds its records in the text with compiled
    patterns and would only throw most of the line objects away; the same line limit and
    errors, raised after the text of the lines before the bad one."""
    return _blocks(reader, encoding, size, _decoded_text)


def _blocks(reader: io.BufferedReader, encoding: str, size: int,
            decode: Callable[[bytes, int, str, bool], tuple[Any, int, StatementError | None]],
            ) -> Iterator[tuple[int, Any]]:
    codecs.lookup(encoding)  # an unknown encoding fails here, not in the middle
    number = 1
    rest = b""
    while True:
        data = reader.read(size)
        if not data:
            break
        if rest:
            data = rest + data
        end = data.rfind(b"\n")
        if end < 0:
            rest = data
        else:
            rest = data[end + 1:]
            block, count, error = decode(data[:end + 1], number, encoding, True)
            if count:
                yield number, block
            if error is not None:
                raise error
            number += count
        if len(rest) > MAX_LINE:
            raise StatementError.at(f"line {number}", f"longer than {MAX_LINE} bytes",
                                    "statement.line.too_long", limit=MAX_LINE)
    if rest:
        block, count, error = decode(rest, number, encoding, False)
        if count:
            yield number, block
        if error is not None:
            raise error


def _decoded(data: bytes, number: int, encoding: str,
             terminated: bool) -> tuple[list[str], int, StatementError | None]:
    """Lines of ``data`` (ending with its newline when ``terminated``), how many, and the
    error of the first line that is too long or not ``encoding`` (the lines before it
    are returned, as reading a line at a time would have given them)."""
    if terminated:
        data = data[:-1]
    if not _lines_fit(data, len(data)):
        return _line_by_line(data, number, encoding, terminated)
    try:
        decoded = data.decode(encoding)
    except UnicodeDecodeError:
        return _line_by_line(data, number, encoding, terminated)
    # A CRLF file (every "\n" after a "\r") splits on "\r\n": the lines come without
    # the "\r", so the parsers' strip() finds nothing to cut and allocates nothing.
    newlines = decoded.count("\n")
    if decoded.count("\r\n") == newlines and (newlines or decoded.endswith("\r")):
        block = decoded.split("\r\n")
        if terminated and block[-1].endswith("\r"):  # its "\n" ended the data before
            block[-1] = block[-1][:-1]
    else:
        block = decoded.split("\n")
    if number == 1:
        block[0] = block[0].lstrip("\ufeff")
    return block, len(block), None


def _decoded_text(data: bytes, number: int, encoding: str,
                  terminated: bool) -> tuple[str, int, StatementError | None]:
    """``_decoded`` for ``text_blocks``: the text, its number of lines and the error."""
    if _lines_fit(data, len(data) - terminated):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            pass
        else:
            count = data.count(b"\n") + (not terminated)
            return (text.lstrip("\ufeff") if number == 1 else text), count, None
    block, count, error = _line_by_line(data[:-1] if terminated else data, number, encoding,
                                        terminated)
    ended = terminated or error is not None  # the lines before a bad one had their "\n"
    return "\n".join(block) + ("\n" if ended and block else ""), count, error


def _lines_fit(data: bytes, size: int) -> bool:
    """Whether every b"\n"-separated line of ``data[:size]`` is within MAX_LINE with its
    newline (the last one may have none: it is held to the same limit, and a line that
    only the exact count would let through goes to ``_line_by_line``, which counts).  A
    few searches a limit apart rather than a look at every line: the line that starts at
    ``start`` fits when a newline is near enough, and so does every line that ends at or
    before the last such newline."""
    limit = MAX_LINE - 1
    start = 0
    while size - start > limit:
        newline = data.rfind(b"\n", start, start + limit + 1)
        if newline < 0:
            return False
        start = newline + 1
    return True


def _line_by_line(data: bytes, number: int, encoding: str,
                  terminated: bool) -> tuple[list[str], int, StatementError | None]:
    """The slow path that finds which line is too long or not ``encoding``."""
    raws = data.split(b"\n")
    block: list[str] = []
    for index, raw in enumerate(raws):
        line = number + index
        counted = len(raw) + (1 if terminated or index < len(raws) - 1 else 0)
        if counted > MAX_LINE:
            return block, len(block), StatementError.at(
                f"line {line}", f"longer than {MAX_LINE} bytes", "statement.line.too_long",
                limit=MAX_LINE)
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as err:
            return block, len(block), StatementError.at(
                f"line {line}", f"byte {raw[err.start]:#04x} is not valid {encoding}; the "
                "file mixes encodings", "statement.line.encoding",
                byte=f"{raw[err.start]:#04x}", encoding=encoding)
        block.append(text.lstrip("\ufeff") if line == 1 else text)
    return block, len(block), None
