"""The board's cards and table rows (deals/_cards.html, deals/_rows.html): written with
what the whole list shares worked out once (links, translations, "move to" lists), each
still says what it said when every card asked for its own."""
from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask, g, render_template, request, url_for
from markupsafe import escape

from gateway.app import create_app
from gateway.deal_cards import AWAITED, fill_probabilities
from gateway.i18n import translate
from gateway.urls import id_url

STATUSES = [{"code": "new", "name": "Новая", "kind": "open", "color": "#111"},
            {"code": "talk", "name": "Переговоры <b>", "kind": "open", "color": "#222"},
            {"code": "won", "name": "Выиграна", "kind": "won", "color": "#333"},
            {"code": "lost", "name": "Проиграна", "kind": "lost", "color": "#444"}]
HOSTILE = '<script>alert(1)</script>"\'& {name}'
MANAGERS = {7: "Анна <i>"}


def deal(deal_id: int, status: str, **fields: Any) -> dict[str, Any]:
    return {"id": deal_id, "version": deal_id + 1, "name": f"Сделка {deal_id}",
            "client_id": 40 + deal_id, "client_name": None, "manager_id": 7,
            "status": status, "next_reminder_at": None, "amount": "1500.5",
            "planned_close_on": None, "created_at": "2026-01-02T03:04:05+00:00", **fields}


@pytest.fixture(scope="module")
def app() -> Flask:
    return create_app({"DB_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
                       "AMQP_URI": "amqp://guest:guest@127.0.0.1:1//"})


def render(app: Flask, path: str, name: str, **context: Any) -> str:
    with app.test_request_context(path):
        g.user = SimpleNamespace(id=7, roles=["manager"], full_name="Анна", lang="ru")
        g.web_session = SimpleNamespace(csrf_token="tok&<")
        g.lang = "ru"
        g.t = lambda key, **params: translate("ru", key, **params)
        return render_template(name, managers=MANAGERS, **context)


def cards(html: str) -> dict[int, str]:
    return {int(m.group(1)): m.group(0) for m in
            re.finditer(r'<article class="deal-card" data-id="(\d+)".*?</article>', html, re.S)}


def options(card: str) -> list[str]:
    return re.findall(r'<option value="([^"]*)"', card)


def test_a_list_link_is_url_for_around_the_id(app: Flask) -> None:
    with app.test_request_context("/deals"):
        for endpoint in ("deals.page", "deals.move"):
            before, after = id_url(endpoint, "deal_id")
            for deal_id in (1, 9, 10, 123456789, 918273645):
                assert before + str(deal_id) + after == url_for(endpoint, deal_id=deal_id)


def test_each_card_links_its_own_deal_and_lists_the_other_statuses(app: Flask) -> None:
    deals = [deal(1, "new"), deal(2, "talk", name=HOSTILE, client_name="ООО <b>"),
             deal(3, "won", next_reminder_at="2020-01-01T10:00:00+00:00"),
             deal(4, "gone", manager_id=99, client_name="")]
    html = render(app, "/deals?mode=kanban&q=a%26b", "deals/_cards.html", deals=deals,
                  statuses=STATUSES, next_after=4,
                  probabilities={"2": {"title": "Оценка <x>", "shown": 40, "manual": None}})
    found = cards(html)
    assert list(found) == [1, 2, 3, 4]
    with app.test_request_context("/deals"):
        for deal_id, card in found.items():
            assert f'href="{url_for("deals.page", deal_id=deal_id)}"' in card
            assert f'data-href="{url_for("deals.page", deal_id=deal_id)}"' in card
            assert f'action="{url_for("deals.move", deal_id=deal_id)}"' in card
            assert f'name="version" value="{deal_id + 1}"' in card
            assert 'name="csrf_token" value="tok&amp;&lt;"' in card
            # the page it came from, filters and all: the move lands back on it
            assert 'name="back" value="/deals?mode=kanban&amp;q=a%26b"' in card
    # never its own status, never "lost" (its reason is asked in the board's dialog)
    assert options(found[1]) == ["talk", "won"]
    assert options(found[2]) == ["new", "won"]
    assert options(found[3]) == ["new", "talk"]
    assert options(found[4]) == ["new", "talk", "won"]  # a status the list does not know
    assert "Переговоры &lt;b&gt;</option>" in found[1]
    # the deal's own text escaped wherever it goes, the translation around it kept
    assert f">{escape(HOSTILE)}</a>" in found[2] and "<script>" not in html
    assert f'aria-label="Переместить «{escape(HOSTILE)}» в другой статус"' in found[2]
    assert ">ООО &lt;b&gt;<" in found[2] and ">#44<" in found[4] and ">#41<" in found[1]
    assert ">Анна &lt;i&gt;<" in found[1] and '"deal-manager">—<' in found[4]
    assert 'class="no-tasks chip">Нет задач<' in found[1]
    assert 'class="deal-task overdue">01.01.2020 13:00<' in found[3]
    assert 'title="Оценка &lt;x&gt;"' in found[2] and ">40 %<" in found[2]
    assert "deal-prob" not in found[1]
    assert html.endswith('<div class="page-end" data-next="4"></div>')


def test_cards_of_a_further_page_move_back_to_the_board(app: Flask) -> None:
    html = render(app, "/deals/more?column=new&after=5", "deals/_cards.html",
                  deals=[deal(5, "new")], statuses=STATUSES, next_after=None,
                  probabilities={})
    with app.test_request_context("/deals"):
        assert f'name="back" value="{url_for("deals.index")}"' in cards(html)[5]
    # without the statuses there is no "move to" form at all
    bare = render(app, "/deals/more?column=new", "deals/_cards.html", deals=[deal(5, "new")],
                  statuses=[], next_after=None, probabilities=None)
    assert "move-to" not in bare and 'data-id="5"' in bare


def test_each_row_links_its_deal_and_marks_a_passed_planned_date(app: Flask) -> None:
    deals = [deal(1, "new", planned_close_on="2020-01-01", name=HOSTILE),
             deal(2, "won", planned_close_on="2020-01-01"),
             deal(3, "new", planned_close_on="2999-01-01",
                  next_reminder_at="2999-01-01T10:00:00+00:00")]
    html = render(app, "/deals/more", "deals/_rows.html", deals=deals,
                  statuses={s["code"]: s for s in STATUSES}, next_after=None)
    rows = {int(m.group(1)): m.group(0) for m in
            re.finditer(r'<tr class="deal-row" data-id="(\d+)".*?</tr>', html, re.S)}
    with app.test_request_context("/deals"):
        for deal_id, row in rows.items():
            assert f'<a href="{url_for("deals.page", deal_id=deal_id)}">' in row
    assert f">{escape(HOSTILE)}</a>" in rows[1]
    assert 'class="overdue-date">01.01.2020<' in rows[1]  # open and passed
    assert 'class="">01.01.2020<' in rows[2]  # closed: nothing is late
    assert 'class="">01.01.2999<' in rows[3] and "Нет задач" in rows[1]
    assert "Нет задач" not in rows[3] and "01.01.2999 13:00" in rows[3]


# The card as the template wrote it before gateway/deal_cards.py (deals/_card.html, one
# include per card): the reference the Python writer must match character for character.
REFERENCE = """{% for d in deals %}
<article class="deal-card" data-id="{{ d.id }}" data-version="{{ d.version }}" data-href="{{ url_for('deals.page', deal_id=d.id) }}">
  <a class="deal-name" href="{{ url_for('deals.page', deal_id=d.id) }}">{{ d.name }}</a>
  <div class="deal-client">{{ d.client_name or '#' ~ d.client_id }}</div>
  <div class="deal-meta">
    <span class="deal-manager">{{ managers.get(d.manager_id, '—') }}</span>
    {% if d.next_reminder_at %}<span class="deal-task{{ ' overdue' if d.next_reminder_at | past }}">{{ d.next_reminder_at | datetime }}</span>
    {% else %}<span class="no-tasks chip">{{ t('no_tasks') }}</span>{% endif %}
  </div>
  <div class="deal-amount num">{{ d.amount | money }}</div>
  {% set prob = (probabilities or {}).get(d.id | string) %}{% if prob %}<div class="deal-prob chip" title="{{ prob.title }}" aria-label="{{ prob.title }}">{{ prob.shown }} %{% if prob.manual is not none %} ✎{% endif %}</div>{% endif %}
  {% if statuses %}
  <details class="move-to">
    <summary aria-label="{{ t('move_to_named', name=d.name) }}">{{ t('move_to') }}</summary>
    <form method="post" action="{{ url_for('deals.move', deal_id=d.id) }}" class="inline">
      <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
      <input type="hidden" name="version" value="{{ d.version }}">
      <input type="hidden" name="back" value="{{ request.full_path if request.endpoint == 'deals.index' else url_for('deals.index') }}">
      <select name="status" aria-label="{{ t('status') }}">{% for s in statuses if s.code != d.status and s.kind != 'lost' %}<option value="{{ s.code }}">{{ s.name }}</option>{% endfor %}</select>
      <button type="submit" class="small">{{ t('move') }}</button>
    </form>
  </details>
  {% endif %}
</article>{% endfor %}
<div class="page-end" data-next="{{ next_after or '' }}"></div>"""  # noqa: E501


def varied_deals() -> list[dict[str, Any]]:
    names = ["Сделка", HOSTILE, "{name} {0} }{", "  пробелы  ", ""]
    clients = [None, "", "ООО «Ромашка» & <Co>", "Клиент 1"]
    reminders = [None, "", "2020-01-01T10:00:00+00:00", "2999-05-05T10:00:00", "2031-01-01"]
    amounts = ["1234567.5", None, "0", "-12.345", "oops"]
    codes = ["new", "talk", "won", "lost", "gone"]
    return [deal(i, codes[i % 5], name=names[i % 5], client_name=clients[i % 4],
                 manager_id=[7, 99, None][i % 3], next_reminder_at=reminders[i % 5],
                 amount=amounts[(i // 2) % 5]) for i in range(1, 61)]


@pytest.mark.parametrize("path", ["/deals?mode=kanban&q=%3Cx%3E%26", "/deals/more?column=new"])
@pytest.mark.parametrize("with_statuses", [True, False])
def test_the_cards_read_as_the_template_wrote_them(app: Flask, path: str,
                                                   with_statuses: bool) -> None:
    deals = varied_deals()
    probabilities = {str(d["id"]): {"title": f"Оценка <{d['id']}> & «x»", "shown": d["id"],
                                    "manual": [None, 30][d["id"] % 2]}
                     for d in deals if d["id"] % 3}
    context = {"deals": deals, "statuses": STATUSES if with_statuses else [],
               "probabilities": probabilities, "next_after": 60}
    written = render(app, path, "deals/_cards.html", **context)
    with app.test_request_context(path):
        g.user = SimpleNamespace(id=7, roles=["manager"], full_name="Анна", lang="ru")
        g.web_session = SimpleNamespace(csrf_token="tok&<")
        g.lang = "ru"
        g.t = lambda key, **params: translate("ru", key, **params)
        reference = app.jinja_env.from_string(REFERENCE).render(
            managers=MANAGERS, csrf_token="tok&<", t=g.t, request=request, **context)
    assert written == reference
    # the board writes its cards before analytics answers, with a mark where each chip
    # goes: filled in after, the page says the same, character for character
    awaited = render(app, path, "deals/_cards.html", **{**context, "probabilities": AWAITED})
    assert "<!--probability:" in awaited
    assert fill_probabilities(awaited, probabilities) == reference


def test_a_deal_named_like_a_chip_mark_stays_its_own_text(app: Flask) -> None:
    forged = deal(5, "new", name="<!--probability:5-->", client_name="<!--probability:6-->")
    awaited = render(app, "/deals", "deals/_cards.html", deals=[forged], statuses=STATUSES,
                     probabilities=AWAITED, next_after=None)
    filled = fill_probabilities(awaited, {"5": {"title": "t", "shown": 40, "manual": None}})
    assert filled.count('class="deal-prob chip"') == 1  # the card's own slot, nothing else
    assert "&lt;!--probability:5--&gt;" in filled and "&lt;!--probability:6--&gt;" in filled


# The table row as deals/_row.html wrote it (one include per row), the reference again.
REFERENCE_ROWS = """{% for d in deals %}<tr class="deal-row" data-id="{{ d.id }}" data-href="{{ url_for('deals.page', deal_id=d.id) }}">
  <td><a href="{{ url_for('deals.page', deal_id=d.id) }}">{{ d.name }}</a></td>
  <td>{{ d.client_name or '#' ~ d.client_id }}</td>
  <td>{% set s = statuses.get(d.status) %}{% if s %}<span class="status" style="border-color: {{ s.color }}">{{ s.name }}</span>{% endif %}</td>
  <td>{{ managers.get(d.manager_id, '—') }}</td>
  <td>{% if d.next_reminder_at %}<span class="deal-task{{ ' overdue' if d.next_reminder_at | past }}">{{ d.next_reminder_at | datetime }}</span>{% else %}<span class="no-tasks chip">{{ t('no_tasks') }}</span>{% endif %}</td>
  <td>{% if d.planned_close_on %}<span class="{{ 'overdue-date' if s and s.kind == 'open' and d.planned_close_on < local_now().date().isoformat() }}">{{ d.planned_close_on | date }}</span>{% endif %}</td>
  <td>{{ d.created_at | date }}</td>
  <td class="num">{{ d.amount | money }}</td>
</tr>{% endfor %}
<tr class="page-end" data-next="{{ next_after or '' }}"><td colspan="8"></td></tr>"""  # noqa: E501


def test_the_rows_read_as_the_template_wrote_them(app: Flask) -> None:
    deals = varied_deals()
    for i, d in enumerate(deals):
        d["planned_close_on"] = [None, "2020-01-01", "2999-12-31", ""][i % 4]
        d["created_at"] = ["2026-01-02T23:30:00+00:00", "2026-01-02", None][i % 3]
    statuses = {s["code"]: {**s, "color": f"#{s['code']}<&>"} for s in STATUSES}
    context = {"deals": deals, "statuses": statuses, "next_after": "x&y"}
    written = render(app, "/deals/more", "deals/_rows.html", **context)
    with app.test_request_context("/deals/more"):
        g.user = SimpleNamespace(id=7, roles=["manager"], full_name="Анна", lang="ru")
        g.lang = "ru"
        g.t = lambda key, **params: translate("ru", key, **params)
        reference = app.jinja_env.from_string(REFERENCE_ROWS).render(
            managers=MANAGERS, t=g.t, **context)
    assert written == reference
