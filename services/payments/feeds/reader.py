"""Which format a file is in, and the one entry point that parses any of them."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from services.payments.feeds import camt, mt940, onec
from services.payments.feeds.errors import StatementError
from services.payments.feeds.model import StatementInfo, Transaction
from services.payments.feeds.textio import detect_encoding, peek

ONE_C, CAMT053, MT940 = "1c", "camt053", "mt940"
_MT940_TAG = re.compile(rb"(?m)^(?:\{1:.*?\{4:)?\r?\n?:20:")
_MT940_ACCOUNT = re.compile(rb"(?m)^:25:")


def detect_format(head: bytes) -> str:
    """The format of a file from its first bytes (a few KB are enough): "1c", "camt053"
    or "mt940".

    Raises StatementError for anything else, including camt.052/054, which look alike but
    are not statements.
    """
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if start[:20].lower() == b"1cclientbankexchange":
        return ONE_C
    if start.startswith(b"<"):
        if b"BkToCstmrStmt" in head:
            return CAMT053
        raise StatementError.at("", "an XML file that is not an ISO 20022 camt.053 statement "
                                "(no BkToCstmrStmt)", "statement.not_camt053")
    if _MT940_TAG.search(start) and _MT940_ACCOUNT.search(start):
        return MT940
    raise StatementError.at("", "not a bank statement: expected 1CClientBankExchange, "
                            "camt.053 XML or MT940", "statement.not_statement")


def parse_statement(stream: BinaryIO, filename: str = "") -> Iterator[Transaction | StatementInfo]:
    """Records of a bank statement file, read as a stream.

    Yields each Transaction as soon as it is read, and a StatementInfo after the records
    of each statement in the file (one for 1C, one per camt ``Stmt`` / MT940 message).
    The format is detected here, so an unknown file fails at the call; a broken one fails
    with StatementError while iterating, possibly after some records were yielded: treat
    an import as all-or-nothing.  ``filename`` only labels errors.
    """
    head, reader = peek(stream)
    try:
        kind = detect_format(head)
    except StatementError as err:
        raise _labelled(err, filename) from None
    if kind == CAMT053:
        records = camt.parse(reader)
    elif kind == ONE_C:
        records = onec.parse(reader, detect_encoding(head))
    else:
        records = mt940.parse(reader, detect_encoding(head))
    return _labelling(records, filename)


def _labelling(records: Iterator[Transaction | StatementInfo],
               filename: str) -> Iterator[Transaction | StatementInfo]:
    try:
        yield from records
    except StatementError as err:
        raise _labelled(err, filename) from None


def _labelled(err: StatementError, filename: str) -> StatementError:
    if filename:
        err.details["file"] = filename
    return err
