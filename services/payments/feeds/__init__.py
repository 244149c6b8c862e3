"""Bank statement feeds: 1CClientBankExchange, camt.053 and MT940 into one record type.

Pure code (no I/O of its own, no database): the payments service hands it an uploaded
file and stores what comes out.

    for record in parse_statement(upload, "vypiska.txt"):
        if isinstance(record, Transaction) and record.is_incoming:
            ...  # de-duplicate on record.identity, then match
        elif isinstance(record, StatementInfo):
            ...  # show record.warnings
"""
from services.payments.feeds.errors import StatementError
from services.payments.feeds.model import CREDIT, DEBIT, AccountBalance, StatementInfo, Transaction
from services.payments.feeds.onec_writer import write_1c_statement
from services.payments.feeds.reader import CAMT053, MT940, ONE_C, detect_format, parse_statement

__all__ = ["AccountBalance", "CAMT053", "CREDIT", "DEBIT", "MT940", "ONE_C", "StatementError",
           "StatementInfo", "Transaction", "detect_format", "parse_statement",
           "write_1c_statement"]
