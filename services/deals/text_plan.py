"""How a text filter (``q``, ``client``) reaches the deals: which index finds them.

The trigram index ``ix_deals_search`` reads the whole posting list of every trigram a
fragment has, and every deal's text shares the common ones ("Сделка", "Клиент", "ООО"):
"Клиент 12345" read seven lists of a million entries each to find 55 deals (20 ms at
1,000,000 deals).  So the fragment's three-letter windows are looked up first in a
sample of the deals' texts that ANALYZE already keeps (``pg_stats`` of the index's
expression, its most common values and histogram; migration 0b5e7d2c9a14 makes it 500
values).  When one of them is rare there, the index is asked for the rarest windows only
(short lists) and the whole fragment is checked on each deal they find.  Otherwise (every
window common, a fragment too short for a window, no sample yet) the planner chooses as
before with the whole fragment: a common fragment's page walks the ordered index by
itself, and it is the exact counts of a common fragment (the board's) that must read
its every match.

Only the index's part changes: every plan checks the whole fragment with the same ILIKE
on every deal it returns, so the deals, their order and the counts are those of the
ILIKE alone (tests/service/deals/test_deals_text_filter_plans.py compares them)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text as sql
from sqlalchemy.orm import Session

# a window found in at most this share of the sample is rare: its posting list is a
# fiftieth of a common trigram's at most, and the lists of the rarest windows together
# leave few deals to check
RARE_SHARE = 0.02
WINDOWS = 3  # the rarest windows asked of the index: their lists are intersected
# ... the rarest one rare, the others no more common than this
SIDE_SHARE = 0.05
WHOLE_SHARE = 0.002  # ... and the whole fragment in no more than one text of 500
SAMPLE_SECONDS = 300.0  # the sample is read again after this (ANALYZE refreshes it)
# pg_trgm's trigrams are made of letters and digits; Greek sigma lowers by context
# under ICU, so a window holding it might not be found where the whole fragment is
NOT_IN_WINDOWS = set("Σσς")


@dataclass(frozen=True)
class Sample:
    """Texts of the sample with the share of the deals each stands for."""
    texts: list[tuple[str, float]]

    def share(self, fragment: str) -> float:
        wanted = fragment.lower()
        return sum(weight for value, weight in self.texts if wanted in value)


@dataclass(frozen=True)
class TextPlan:
    # the parts of the fragment the index is asked for (none: the whole fragment)
    windows: tuple[str, ...] = ()


def windows_of(fragment: str) -> list[str]:
    """Every three-character run of letters or digits in the fragment, once each."""
    found: list[str] = []
    for start in range(len(fragment) - 2):
        part = fragment[start:start + 3]
        if all(c.isalnum() and c not in NOT_IN_WINDOWS for c in part) and part not in found:
            found.append(part)
    return found


def choose(fragment: str, sample: Sample | None) -> TextPlan:
    """The plan for one fragment (pure: the sample decides)."""
    if sample is None or not fragment:
        return TextPlan()
    shares = sorted((sample.share(w), n, w) for n, w in enumerate(windows_of(fragment)))
    asked = tuple(w for share, _, w in shares[:WINDOWS] if share <= SIDE_SHARE)
    # worth it when the fragment is rare as a whole (its pages then come off the few
    # deals found, however the planner counts the second test) and the index skips a
    # common window; else the whole fragment asks no more of the index than its windows
    if (shares and shares[0][0] <= RARE_SHARE and shares[-1][0] > SIDE_SHARE
            and sample.share(fragment) <= WHOLE_SHARE):
        return TextPlan(asked)
    return TextPlan()


_samples: dict[str, tuple[float, Sample | None]] = {}

STATS = sql("""
    SELECT most_common_vals::text::text[], most_common_freqs, histogram_bounds::text::text[]
    FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'ix_deals_search'
      AND attname = 'expr'""")


def sample(db: Session) -> Sample | None:
    """The deals' text sample, read at most once per SAMPLE_SECONDS per database."""
    key = str(db.get_bind().engine.url)
    now = time.monotonic()
    cached = _samples.get(key)
    if cached is not None and now - cached[0] < SAMPLE_SECONDS:
        return cached[1]
    found = _read_sample(db.execute(STATS).first())
    _samples[key] = (now, found)
    return found


def _read_sample(row: Any) -> Sample | None:
    if row is None:
        return None
    common, freqs, bounds = row
    texts = [(v.lower(), float(f)) for v, f in zip(common or [], freqs or [], strict=True)]
    rest = 1.0 - sum(f for _, f in texts)
    if bounds:
        texts += [(v.lower(), rest / len(bounds)) for v in bounds]
    if len(texts) < 100:  # too few to tell rare from common: leave it to the planner
        return None
    return Sample(texts)


def plan(db: Session, fragment: str) -> TextPlan:
    return choose(fragment, sample(db))
