"""The kanban's cards (D2) and the deals table's rows, written in Python rather than in a
template.

A kanban page shows 140 cards; written by Jinja each cost about 65 µs (an escape, a
Markup and a generator step per value, a context call per lookup) — 9 ms of a page whose
SQL takes 3–7 ms; a table row about 45 µs.  Written here with one ``str.format`` each it
is under 20 µs, and the text is the same, character for character: every value goes
through the same ``markupsafe.escape`` Jinja's autoescape uses, and
tests/unit/gateway/test_deal_cards.py renders them beside the templates they replace.
Only the cards and rows live here; the board around them is deals/index.html, the pages of
further ones deals/_cards.html and deals/_rows.html."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import g, request, url_for
from markupsafe import Markup, escape

from gateway.formatting import current_zone, format_date, format_datetime, is_past, money
from gateway.urls import id_url
from services.kit import clock

CARD = """
<article class="deal-card" data-id="{id}" data-version="{version}" data-href="{href}">
  <a class="deal-name" href="{href}">{name}</a>
  <div class="deal-client">{client}</div>
  <div class="deal-meta">
    <span class="deal-manager">{manager}</span>
    {task}
  </div>
  <div class="deal-amount num">{amount}</div>
  {probability}
  {move}
</article>"""
TASK = '<span class="deal-task{overdue}">{at}</span>\n    '
NO_TASK = '<span class="no-tasks chip">{no_tasks}</span>'
PROBABILITY = ('<div class="deal-prob chip" title="{title}" aria-label="{title}">'
               '{shown} %{manual}</div>')
# "move to": the keyboard's way across the board (every status but the card's own and the
# lost one, whose reason the board's dialog asks for)
MOVE = """
  <details class="move-to">
    <summary aria-label="{named}">{move_to}</summary>
    <form method="post" action="{action}" class="inline">
      <input type="hidden" name="csrf_token" value="{csrf}">
      <input type="hidden" name="version" value="{version}">
      <input type="hidden" name="back" value="{back}">
      <select name="status" aria-label="{status}">{options}</select>
      <button type="submit" class="small">{move}</button>
    </form>
  </details>
  """
OPTION = '<option value="{}">{}</option>'


# A card whose estimate is not in yet (the board's page asks analytics once the board is
# in and writes the cards meanwhile): this mark, replaced by ``fill_probabilities``.  A
# deal's own text cannot forge one: everything written from it is escaped ("<" -> "&lt;").
AWAITED = object()
PROBABILITY_SLOT = "<!--probability:{}-->"
_SLOT = re.compile(r"<!--probability:(\d+)-->")


def probability_chip(prob: Mapping[str, Any] | None) -> str:
    if not prob:
        return ""
    return PROBABILITY.format(title=escape(prob["title"]), shown=escape(prob["shown"]),
                              manual=" ✎" if prob["manual"] is not None else "")


def fill_probabilities(page: str, probabilities: Mapping[str, Mapping[str, Any]]) -> str:
    """The page with each card's mark replaced by its chip (none: no estimate)."""
    return _SLOT.sub(lambda m: probability_chip(probabilities.get(m[1])), page)


def move_options(statuses: list[dict[str, Any]]) -> dict[str | None, str]:
    """Each status's "move to" list (None: for a status the list does not know); once a
    request, not once a column (seven columns asked it seven times: 1.5 ms of a page)."""
    key = tuple((s["code"], s["name"], s["kind"]) for s in statuses)
    kept = g.get("move_options")
    if kept is not None and kept[0] == key:
        return kept[1]  # type: ignore[no-any-return]

    def without(code: str | None) -> str:
        return "".join(OPTION.format(escape(s["code"]), escape(s["name"])) for s in statuses
                       if s["code"] != code and s["kind"] != "lost")
    options = {code: without(code) for code in [*(s["code"] for s in statuses), None]}
    g.move_options = (key, options)
    return options


def kanban_cards(deals: Iterable[Mapping[str, Any]], statuses: list[dict[str, Any]] | None,
                 probabilities: Mapping[str, Mapping[str, Any]] | object | None,
                 managers: Mapping[int, str]) -> Markup:
    """``probabilities``: the cards' estimates by deal id, or ``AWAITED`` for a mark
    where each chip goes (``fill_probabilities``)."""
    t: Callable[..., str] = g.t
    awaited = probabilities is AWAITED
    page_before, page_after = id_url("deals.page", "deal_id")
    move_before, move_after = id_url("deals.move", "deal_id")
    zone = current_zone()
    no_task = NO_TASK.format(no_tasks=escape(t("no_tasks")))
    known: Mapping[str, Mapping[str, Any]] = {} if awaited or not probabilities \
        else probabilities  # type: ignore[assignment]
    shared: dict[str, Any] = {}
    if statuses:
        session = g.get("web_session")
        back = request.full_path if request.endpoint == "deals.index" else url_for("deals.index")
        shared = {"named": t("move_to_named"), "move_to": escape(t("move_to")),
                  "csrf": escape(session.csrf_token if session is not None else ""),
                  "back": escape(back), "status": escape(t("status")),
                  "move": escape(t("move")), "options": move_options(statuses)}
    written = []
    for d in deals:
        deal_id = escape(d["id"])
        version = escape(d["version"])
        reminder = d["next_reminder_at"]
        task = TASK.format(overdue=" overdue" if is_past(reminder) else "",
                           at=escape(format_datetime(reminder, zone))) if reminder else no_task
        probability = PROBABILITY_SLOT.format(int(d["id"])) if awaited \
            else probability_chip(known.get(str(d["id"])))
        move = ""
        if statuses:
            options = shared["options"]
            move = MOVE.format(named=escape(shared["named"].format(name=d["name"])),
                               move_to=shared["move_to"],
                               action=escape(f"{move_before}{d['id']}{move_after}"),
                               csrf=shared["csrf"], version=version, back=shared["back"],
                               status=shared["status"], move=shared["move"],
                               options=options.get(d["status"], options[None]))
        written.append(CARD.format(
            id=deal_id, version=version, href=escape(f"{page_before}{d['id']}{page_after}"),
            name=escape(d["name"]), client=escape(d["client_name"] or f"#{d['client_id']}"),
            manager=escape(managers.get(d["manager_id"], "—")), task=task,
            amount=escape(money(d["amount"])), probability=probability, move=move))
    return Markup("".join(written))


ROW = """<tr class="deal-row" data-id="{id}" data-href="{href}">
  <td><a href="{href}">{name}</a></td>
  <td>{client}</td>
  <td>{status}</td>
  <td>{manager}</td>
  <td>{task}</td>
  <td>{planned}</td>
  <td>{created}</td>
  <td class="num">{amount}</td>
</tr>"""
ROW_TASK = '<span class="deal-task{overdue}">{at}</span>'
STATUS = '<span class="status" style="border-color: {color}">{name}</span>'
PLANNED = '<span class="{late}">{on}</span>'


def table_rows(deals: Iterable[Mapping[str, Any]], statuses: Mapping[str, Mapping[str, Any]],
               managers: Mapping[int, str]) -> Markup:
    t: Callable[..., str] = g.t
    page_before, page_after = id_url("deals.page", "deal_id")
    zone = current_zone()
    no_task = NO_TASK.format(no_tasks=escape(t("no_tasks")))
    # a planned close date before today, of a deal still open, is late
    today = clock.now(zone).date().isoformat()
    written = []
    for d in deals:
        s = statuses.get(d["status"])
        reminder = d["next_reminder_at"]
        planned = d["planned_close_on"]
        written.append(ROW.format(
            id=escape(d["id"]), href=escape(f"{page_before}{d['id']}{page_after}"),
            name=escape(d["name"]), client=escape(d["client_name"] or f"#{d['client_id']}"),
            status=STATUS.format(color=escape(s["color"]), name=escape(s["name"])) if s else "",
            manager=escape(managers.get(d["manager_id"], "—")),
            task=ROW_TASK.format(overdue=" overdue" if is_past(reminder) else "",
                                 at=escape(format_datetime(reminder, zone)))
            if reminder else no_task,
            planned=PLANNED.format(
                late="overdue-date" if s and s["kind"] == "open" and planned < today else "",
                on=escape(format_date(planned, zone))) if planned else "",
            created=escape(format_date(d["created_at"], zone)),
            amount=escape(money(d["amount"]))))
    return Markup("".join(written))
