"""Links to many records of one kind on a page, built once per page.

``url_for`` walks the URL map on every call: a kanban page links each of its 140 cards
three times, and those calls were a fifth of the page's rendering time.  A route whose only
variable is an integer id is the same text around the id for every record, so the page
asks ``url_for`` once and puts each id between the two parts."""
from __future__ import annotations

from typing import Any

from flask import url_for

# any integer works; one this long cannot be mistaken for part of the route's fixed text
_MARKER = 918273645


def id_url(endpoint: str, key: str) -> tuple[str, str]:
    """``(before, after)`` such that ``url_for(endpoint, **{key: n}) == before + str(n) +
    after`` for every integer ``n`` (the int converter writes ``str(n)``)."""
    values: dict[str, Any] = {key: _MARKER}
    url = url_for(endpoint, **values)
    before, found, after = url.partition(str(_MARKER))
    if not found or str(_MARKER) in after:
        raise ValueError(f"{endpoint} does not take {key} as a plain integer")
    return before, after
