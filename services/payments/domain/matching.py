"""Which open planned payment an incoming bank transaction pays: pure rules, no SQL.

Rules, strongest first; the first one that applies decides:

a. payer INN is the client's and the amount equals what is outstanding -> confident;
b. the purpose names the invoice/contract and the amount equals -> confident when the
   INN agrees or nothing contradicts it, doubtful when another INN paid;
c. weaker evidence (same INN near the due date, a named document with another amount,
   the same amount near the due date when the file has no INN) -> doubtful;
otherwise unmatched.  Two equally good candidates are never confident: a person picks.

The service first asks ``candidate_query`` what to fetch (indexed lookups, no scan),
then calls ``match_transaction`` with the open planned payments it found.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Final, Literal

from services.payments.feeds.model import Transaction

Kind = Literal["confident", "doubtful", "unmatched"]
CONFIDENT: Final = "confident"
DOUBTFUL: Final = "doubtful"
UNMATCHED: Final = "unmatched"
WINDOW_DAYS = 30
MAX_PURPOSE = 2000  # 1C allows 210 characters, camt 140 per Ustrd; the rest is not text

# --- document numbers in the purpose text --------------------------------------------

_DATE = r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{2,4}\s*(?:г\.?|года)?"
# longest spelling first: "No." must not be read as "N" followed by a number "o."
_MARK = r"(?:№+|No\.?(?![a-z])|Nr\.?(?![a-z])|N(?![a-zа-яё])|#)"
# starts with a letter or digit, may hold / - . _ inside ("15/2024", "Д-15", "2026-117"),
# at most 40 characters; atomic, so "18026,52" is not cut back to "1802" to dodge the
# amount check
_NUMBER = r"(?>[0-9A-Za-zА-Яа-яЁё](?:[0-9A-Za-zА-Яа-яЁё/_.-]{0,38}[0-9A-Za-zА-Яа-яЁё])?)"
_INVOICE_WORDS = (r"сч[её]т(?:ам|ах|ов|ом|у|а|е)?(?:[\s-]*(?:фактур|оферт)[а-яё]*)?"
                  r"|сч?/ф|сч\.?|инвойс[а-яё]*|invoice|inv\.?|bill")
_CONTRACT_WORDS = (r"договор(?:ам|ах|ов|ом|у|а|е)?|дог\.?|д-р[ауе]?|контракт(?:ом|у|а|е)?"
                   r"|contract|agreement")
_KEYWORD = re.compile(rf"(?<!\w)(?:(?P<invoice>{_INVOICE_WORDS})|(?P<contract>{_CONTRACT_WORDS}))"
                      r"(?!\w)", re.IGNORECASE)
# Where a keyword can begin: one of the keywords' first letters at the start of a word
# (the look-behind after it says what ``(?<!\w)`` says before it).  A pattern that opens
# with a character class is scanned for quickly; ``_KEYWORD``, which opens with a
# look-behind, is tried at every position of the text.  Trying it only where this finds a
# start gives the same matches several times faster (``_keywords``).
_KEYWORD_START = re.compile(r"[сиibдкca](?<!\w.)", re.IGNORECASE)
# "расчетный счет 40702810...", "лицевой счет", "корр. счет" are accounts, not invoices
_ACCOUNT_BEFORE = re.compile(r"(?:расч[её]тн|лицев|корр?|р/)\w*\.?\s*$", re.IGNORECASE)
_ACCOUNT_NUMBER = re.compile(r"[0-9]{20}")
# Filler words between the keyword and a marked number: "по договору поставки № 15",
# "по счету на оплату № 1024".  Without a № mark a following number is not trusted
# ("по счету за март 2024").
_FILLER = r"(?:(?!(?:no|nr|от)\b)[^\W\d_]{2,15}\.?\s+){1,3}"
_AFTER = re.compile(
    rf"\s*[.:]?\s*(?:от\s*{_DATE}\s*)?(?P<fill>{_FILLER})?(?P<mark>{_MARK}\s*[.:]?\s*)?"
    rf"(?P<number>{_NUMBER})", re.IGNORECASE)
# "№ 12, 13 и 14": more numbers of the same kind, starting with a digit (not the next
# "сч.1025", which is a keyword match of its own) and not an amount ("1024, 18026,52").
_MORE = re.compile(rf"(?:,\s+|;\s*|\s+(?:и|and)\s+)(?:{_MARK}\s*)?(?P<number>(?=[0-9]){_NUMBER})"
                   r"(?![,.][0-9])", re.IGNORECASE)
_LOOKS_LIKE_DATE = re.compile(_DATE)
_LOOKS_LIKE_AMOUNT = re.compile(r"[0-9]+[.,][0-9]{2}")


def extract_document_numbers(purpose: str) -> dict[str, list[str]]:
    """Invoice and contract numbers a payment purpose refers to, as written.

    ``{"invoice_numbers": ["1024"], "contract_numbers": ["15/2024"]}`` for
    "Оплата по счету N 1024 от 01.01.23 по договору 15/2024".
    """
    found: dict[str, list[str]] = {"invoice_numbers": [], "contract_numbers": []}
    purpose = purpose[:MAX_PURPOSE]
    for keyword in _keywords(purpose):
        if _ACCOUNT_BEFORE.search(purpose, max(0, keyword.start() - 20), keyword.start()):
            continue
        kind = "invoice_numbers" if keyword["invoice"] else "contract_numbers"
        for number in _numbers_after(purpose, keyword.end()):
            if number not in found[kind]:
                found[kind].append(number)
    return found


def _keywords(text: str) -> Iterator[re.Match[str]]:
    """What ``_KEYWORD.finditer(text)`` finds: each match, left to right, none inside the
    one before it."""
    end = 0
    for start in _KEYWORD_START.finditer(text):
        position = start.start()
        if position < end:
            continue
        keyword = _KEYWORD.match(text, position)
        if keyword is not None:
            end = keyword.end()
            yield keyword


def _numbers_after(text: str, position: int) -> list[str]:
    first = _AFTER.match(text, position)
    if not first or (first["fill"] and not first["mark"]) or not _plausible(first["number"]):
        return []
    numbers = [first["number"]]
    end = first.end()
    while (more := _MORE.match(text, end)) and _plausible(more["number"]):
        numbers.append(more["number"])
        end = more.end()
    return numbers


def _plausible(number: str) -> bool:
    return (any(c.isdigit() for c in number) and not _LOOKS_LIKE_DATE.fullmatch(number)
            and not _LOOKS_LIKE_AMOUNT.fullmatch(number)
            and not _ACCOUNT_NUMBER.fullmatch(number))


# Pure and called for every candidate of every transaction.  The caches stay small: a
# statement's numbers and INNs are mostly distinct, and 65,536 entries of each held about
# 30 MB for as long as the service ran (an import's memory grew with its file).  What
# they save is the repeats within one transaction (its INN is asked for by every rule):
# 512 entries do that as fast as 4,096 (13.3-14.0 us a transaction for its keys and
# INNs either way), and the 4,096 of each held 1.8 MB once a large statement had filled
# them.
CACHED = 512


@lru_cache(maxsize=CACHED)
def canonical_number(number: str) -> str:
    """The form numbers are compared (and should be stored and indexed) in: case, spaces,
    "№", Ё/Е and leading zeros of a purely numeric number do not matter."""
    text = re.sub(r"[\s№#]", "", number).upper().replace("Ё", "Е").strip(".-/_")
    return (text.lstrip("0") or text) if text.isdigit() else text


@lru_cache(maxsize=CACHED)
def canonical_inn(inn: str) -> str:
    """Digits of an INN; "" for none.  Banks write 0 or 0000000000 for "unknown", and two
    unknowns must not look like the same company."""
    # most are digits already (the whole-string test is the per-character one, at once)
    digits = inn if inn.isdigit() else "".join(c for c in inn if c.isdigit())
    return "" if not digits.strip("0") else digits


# --- inputs and outputs ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """An open planned payment as the matcher needs it."""

    id: int
    deal_id: int
    client_inn: str
    amount_outstanding: Decimal
    due_date: date
    currency: str = "RUB"
    invoice_numbers: tuple[str, ...] = ()
    contract_numbers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # accept lists from the caller; keep the instance immutable
        object.__setattr__(self, "invoice_numbers", tuple(self.invoice_numbers))
        object.__setattr__(self, "contract_numbers", tuple(self.contract_numbers))


@dataclass(frozen=True)
class MatchResult:
    kind: Kind
    payment_id: int | None = None
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)
    candidates: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class CandidateQuery:
    """What to fetch: open planned payments in ``currency`` where
    ``client_inn = payer_inn`` OR an invoice/contract number is in the lists OR
    (``amount_outstanding = amount`` AND ``due_date BETWEEN due_from AND due_to``).
    Each branch is one indexed lookup; together they cover every rule."""

    payer_inn: str | None
    amount: Decimal
    currency: str
    invoice_numbers: tuple[str, ...]
    contract_numbers: tuple[str, ...]
    due_from: date
    due_to: date


def candidate_query(tx: Transaction, window_days: int = WINDOW_DAYS) -> CandidateQuery | None:
    """Lookup keys for the candidates of ``tx``; None when it is not a client payment."""
    if _not_matchable(tx):
        return None
    numbers = extract_document_numbers(tx.purpose)
    return CandidateQuery(
        payer_inn=canonical_inn(tx.payer_inn) or None, amount=tx.amount, currency=tx.currency,
        invoice_numbers=tuple(dict.fromkeys(map(canonical_number, numbers["invoice_numbers"]))),
        contract_numbers=tuple(dict.fromkeys(map(canonical_number,
                                                 numbers["contract_numbers"]))),
        due_from=tx.date - timedelta(days=window_days),
        due_to=tx.date + timedelta(days=window_days))


# --- the rules -----------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    candidate: Candidate
    inn: bool
    amount: bool
    partial: bool
    number: str
    in_window: bool

    @property
    def weight(self) -> float:
        """Orders doubtful candidates; never turns one into a confident match."""
        return round(0.3 * self.inn + 0.3 * self.amount + 0.25 * bool(self.number)
                     + 0.1 * self.in_window + 0.05 * self.partial, 2)

    def reasons(self, tx: Transaction) -> list[str]:
        c = self.candidate
        found = []
        if self.inn:
            found.append(f"payer INN {canonical_inn(tx.payer_inn)} is the client's")
        if self.amount:
            found.append(f"amount {tx.amount} equals the outstanding {c.amount_outstanding}")
        elif self.partial:
            found.append(f"amount {tx.amount} is part of the outstanding "
                         f"{c.amount_outstanding}")
        if self.number:
            found.append(f"the purpose names {self.number}")
        if self.in_window:
            found.append(f"paid {abs((tx.date - c.due_date).days)} days from the due date "
                         f"{c.due_date.isoformat()}")
        return found


def match_transaction(tx: Transaction, candidates: Iterable[Candidate], *,
                      window_days: int = WINDOW_DAYS) -> MatchResult:
    """Decide which of ``candidates`` (open planned payments) ``tx`` pays."""
    refusal = _not_matchable(tx)
    if refusal:
        return MatchResult(UNMATCHED, reasons=[refusal])
    return decide(tx, _evidence(tx, candidates, window_days))


def decide(tx: Transaction, evidence: list[Evidence]) -> MatchResult:
    """The rules over evidence already worked out (``match_transaction`` works it out from
    candidates; a statement import works it out for a whole batch in SQL).  Only the
    evidence a rule can use matters: with any INN-and-amount hit, those hits alone; else
    with any named-and-amount hit, those alone; else every hit: a named document, the
    INN near the due date, or (no INN in the file) the amount near the due date."""
    refusal = _not_matchable(tx)
    if refusal:
        return MatchResult(UNMATCHED, reasons=[refusal])
    for rule in (_rule_inn_and_amount, _rule_number_and_amount, _rule_weak):
        result = rule(tx, evidence)
        if result is not None:
            return result
    return MatchResult(UNMATCHED, reasons=["no open planned payment fits the payer INN, "
                                           "amount or the documents named in the purpose"])


def _not_matchable(tx: Transaction) -> str:
    if tx.direction != "credit":
        return "outgoing payment"
    if tx.reversal:
        return "a bank reversal, not a client payment"
    if tx.amount <= 0:
        return "zero amount"
    return ""


def _evidence(tx: Transaction, candidates: Iterable[Candidate],
              window_days: int) -> list[Evidence]:
    numbers = extract_document_numbers(tx.purpose)
    invoices = {canonical_number(n) for n in numbers["invoice_numbers"]}
    contracts = {canonical_number(n) for n in numbers["contract_numbers"]}
    payer = canonical_inn(tx.payer_inn)
    found = []
    for c in candidates:
        if c.amount_outstanding <= 0 or c.currency != tx.currency:
            continue  # paid or cancelled, or another currency: cannot be this money
        found.append(Evidence(
            candidate=c, inn=bool(payer) and canonical_inn(c.client_inn) == payer,
            amount=tx.amount == c.amount_outstanding,
            partial=tx.amount < c.amount_outstanding,
            number=_named(c, invoices, contracts),
            in_window=abs((tx.date - c.due_date).days) <= window_days))
    return found


def _named(c: Candidate, invoices: set[str], contracts: set[str]) -> str:
    for number in c.invoice_numbers:
        if canonical_number(number) in invoices:
            return f"invoice {number}"
    for number in c.contract_numbers:
        if canonical_number(number) in contracts:
            return f"contract {number}"
    return ""


def _rule_inn_and_amount(tx: Transaction, evidence: list[Evidence]) -> MatchResult | None:
    hits = [e for e in evidence if e.inn and e.amount]
    if not hits:
        return None
    named = [e for e in hits if e.number]
    if len(hits) == 1:
        return _confident(tx, hits[0], 0.99 if named else 0.95)
    if len(named) == 1:  # equal instalments of one client: the purpose says which
        return _confident(tx, named[0], 0.97)
    return _ambiguous(tx, named or hits, "planned payments of this client have this amount")


def _rule_number_and_amount(tx: Transaction, evidence: list[Evidence]) -> MatchResult | None:
    hits = [e for e in evidence if e.number and e.amount]
    if not hits:
        return None  # (with the INN too it was rule a)
    if len(hits) > 1:
        return _ambiguous(tx, hits, "planned payments are named in the purpose with this amount")
    hit = hits[0]
    if not canonical_inn(tx.payer_inn):
        return _confident(tx, hit, 0.9, "the file gives no payer INN")
    # Someone else paid: a parent company, a factor, or a mistake.  A person confirms.
    return _doubtful(tx, [hit], 0.75, f"paid by INN {canonical_inn(tx.payer_inn)}, not the "
                     f"client's {canonical_inn(hit.candidate.client_inn) or '(none)'}")


def _rule_weak(tx: Transaction, evidence: list[Evidence]) -> MatchResult | None:
    no_inn = not canonical_inn(tx.payer_inn)
    hits = [e for e in evidence
            if e.number or (e.in_window and (e.inn or (e.amount and no_inn)))]
    if not hits:
        return None
    return _doubtful(tx, hits, min(max(e.weight for e in hits), 0.7))


def _order(hits: list[Evidence]) -> list[Evidence]:
    return sorted(hits, key=lambda e: (-e.weight, e.candidate.due_date, e.candidate.id))


def _confident(tx: Transaction, hit: Evidence, score: float, *extra: str) -> MatchResult:
    return MatchResult(CONFIDENT, hit.candidate.id, score, [*hit.reasons(tx), *extra],
                       [hit.candidate.id])


def _ambiguous(tx: Transaction, hits: list[Evidence], what: str) -> MatchResult:
    ordered = _order(hits)
    return MatchResult(DOUBTFUL, None, 0.6, [f"{len(hits)} {what}; choose one",
                                             *ordered[0].reasons(tx)],
                       [e.candidate.id for e in ordered])


def _doubtful(tx: Transaction, hits: list[Evidence], score: float, *extra: str) -> MatchResult:
    ordered = _order(hits)
    best = ordered[0]
    tie = len(ordered) > 1 and ordered[1].weight == best.weight
    reasons = [*best.reasons(tx), *extra]
    if tie:
        reasons.insert(0, f"{len(ordered)} planned payments fit equally well; choose one")
    return MatchResult(DOUBTFUL, None if tie else best.candidate.id, score, reasons,
                       [e.candidate.id for e in ordered])
