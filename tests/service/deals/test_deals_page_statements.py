"""A deal read that shows its contacts (``get_deal``, ``deal_page``) loads them in the
deal's own statement: the same answer as loading them when first touched, one statement
fewer."""
from __future__ import annotations

from typing import Any

from sqlalchemy import event

from services.deals import store
from services.deals.schemas import deal_dict
from tests.service.deals.test_deals_panels import new_deal


def read(session: Any, deal_id: int, contacts: bool) -> tuple[dict[str, Any], int]:
    statements: list[str] = []
    bind = session.get_bind()

    def count(*_: Any) -> None:
        statements.append("one")

    event.listen(bind, "before_cursor_execute", count)
    try:
        answer = deal_dict(store.find_deal(session, deal_id, contacts=contacts))
    finally:
        event.remove(bind, "before_cursor_execute", count)
        session.rollback()
        session.expunge_all()
    return answer, len(statements)


def test_contacts_loaded_with_the_deal_equal_those_loaded_when_touched(deals, directory,
                                                                      session_of):
    many = new_deal(deals, directory)  # two contacts
    for name in ("Ольга", "Иван", "Анна"):
        deals.call("deals", "add_deal_contact", many["id"], {"name": name,
                                                              "phones": ["+79030000000"]},
                   user_id=7)
    none = new_deal(deals, directory, client=directory.client("ООО «Пусто»"))
    session = session_of("deals")
    for deal in (many, none):
        touched, two = read(session, deal["id"], contacts=False)
        joined, one = read(session, deal["id"], contacts=True)
        assert joined == touched
        assert (one, two) == (1, 2)
    assert len(read(session, many["id"], contacts=True)[0]["contacts"]) == 5
    assert deals.call("deals", "get_deal", many["id"])["contacts"] == \
        deals.call("deals", "deal_page", many["id"])["contacts"]
