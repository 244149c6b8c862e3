"""The deals service's reference lists (statuses, process types with their stages, loss
reasons) kept in the gateway between pages.

Every deal page shows them, and they change rarely: the gateway sends deals the revision it
holds (``deal_page(..., reference_revision=n)``) and deals leaves the lists out when that
is still the current one.  The number is bumped by a trigger in the same transaction as
the change, so a page never shows a list older than the deal it shows — no event to wait
for and no time-to-live to tune.  One cache per application (tests run several against
different deals databases in one process)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from flask import current_app

LISTS = ("statuses", "types", "loss_reasons")
KEPT = 4  # a few revisions: a page sent under the previous one still finds its lists


class ReferenceLists:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_revision: OrderedDict[int, dict[str, Any]] = OrderedDict()

    def latest(self) -> int | None:
        """The newest revision held (None: nothing yet, deals sends the lists)."""
        with self._lock:
            return max(self._by_revision, default=None)

    def complete(self, deal: dict[str, Any]) -> bool:
        """Keep the lists a deal page brought, or put the held ones into a page that came
        without them; False when the page's revision is no longer held (ask again)."""
        revision = deal.get("reference_revision")
        if not isinstance(revision, int):
            return all(name in deal for name in LISTS)
        with self._lock:
            if all(name in deal for name in LISTS):
                self._by_revision[revision] = {name: deal[name] for name in LISTS}
                while len(self._by_revision) > KEPT:
                    self._by_revision.popitem(last=False)
                return True
            held = self._by_revision.get(revision)
        if held is None:
            return False
        # the outer lists are copied (cheap); their items are shared and only read
        deal.update({name: list(items) for name, items in held.items()})
        return True


def reference_lists() -> ReferenceLists:
    found = current_app.extensions.get("reference_lists")
    if found is None:
        found = current_app.extensions.setdefault("reference_lists", ReferenceLists())
    return found  # type: ignore[no-any-return]


def lists_of(answer: dict[str, Any]) -> dict[str, Any]:
    """The lists for an answer to ``reference_lists(latest())`` — or the ``reference`` a
    board page's call brought (``board``/``search_deals`` with ``reference``) — asked once
    more, in full, if its revision is no longer held."""
    if not reference_lists().complete(answer):
        from gateway.remote import remote  # remote imports flask's app context helpers

        answer = remote("deals", "reference_lists")
        reference_lists().complete(answer)
    return answer
