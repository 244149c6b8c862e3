"""A questionnaire from a deal: the draft is kept, the submission lands on the deal's feed
and the manager is e-mailed "Клиент заполнил анкету"; the link is read-only afterwards."""
from __future__ import annotations

from typing import Any

import pytest

from services.kit.errors import Conflict, NotFound, ValidationError
from tests.service.documents.conftest import MANAGER, template_id
from tests.support.infra import wait_until


def test_a_filled_questionnaire_reaches_the_deal_and_its_manager(deal, rpc, smtp, spy):
    rpc.call("notifications", "set_recipient", MANAGER, {"email": "anna@crm.test"})
    [brief] = rpc.call("documents", "list_questionnaire_templates")
    made = rpc.call("documents", "create_questionnaire", deal["id"], brief["id"], MANAGER)
    token = made["token"]
    assert made["status"] == "new" and len(token) >= 32

    rpc.call("documents", "save_questionnaire_draft", token,
             {"company": "Ромашка", "users": "не знаю"})
    opened = rpc.call("documents", "open_questionnaire", token)
    assert opened["status"] == "draft" and opened["draft"] == {"company": "Ромашка"}
    with pytest.raises(ValidationError) as caught:
        rpc.call("documents", "submit_questionnaire", token, {"company": "Ромашка"})
    assert caught.value.details["field"] == "answers.goal"

    events = spy("documents", "questionnaire_filled")
    rpc.call("documents", "submit_questionnaire", token, {
        "company": "Ромашка", "goal": "Учёт сделок", "users": "25",
        "channels": ["E-mail", "Телефон"]})
    [event] = events.wait_for("questionnaire_filled")
    assert event["data"]["deal_id"] == deal["id"] and "token" not in event["data"]
    wait_until(lambda: [e for e in rpc.call("deals", "deal_page", deal["id"])["feed"]
                        if e["kind"] == "questionnaire"])
    line = next(e for e in rpc.call("deals", "deal_page", deal["id"])["feed"]
                if e["kind"] == "questionnaire")
    assert {"label": "Какую задачу нужно решить?", "text": "Учёт сделок"} in \
        line["data"]["answers"]
    [mail] = smtp.wait_for_messages(1)
    assert mail["To"] == "anna@crm.test"
    assert "Клиент заполнил анкету" in str(mail["Subject"])
    with pytest.raises(Conflict):
        rpc.call("documents", "save_questionnaire_draft", token, {"company": "Другая"})
    [listed] = rpc.call("documents", "list_questionnaires", deal["id"])
    assert listed["status"] == "submitted" and listed["answers"]["users"] == "25"


def test_a_wrong_questionnaire_token_is_not_found(stack, rpc):
    with pytest.raises(NotFound):
        rpc.call("documents", "open_questionnaire", "x" * 32)


def test_an_admin_builds_a_questionnaire_template(stack, rpc: Any):
    saved = rpc.call("documents", "save_questionnaire_template", {
        "name": "Анкета поставки", "fields": [
            {"key": "volume", "label": "Объём", "kind": "number", "required": True,
             "help": "в тоннах"},
            {"key": "kind", "label": "Вид", "kind": "choice", "options": ["А", "Б"]}]}, 1)
    assert [f["key"] for f in saved["fields"]] == ["volume", "kind"]
    assert saved["fields"][0]["help"] == "в тоннах"


def test_the_deal_pages_panel_is_the_four_lists_in_one_answer(deal, rpc):
    """``deal_documents`` reads the four lists in one transaction; what it answers is what
    each list's own call answers."""
    rpc.call("documents", "generate_document", deal["id"], template_id(rpc, "invoice"),
             MANAGER)
    [brief] = rpc.call("documents", "list_questionnaire_templates")
    rpc.call("documents", "create_questionnaire", deal["id"], brief["id"], MANAGER)
    panel = rpc.call("documents", "deal_documents", deal["id"])
    assert panel == {
        "documents": rpc.call("documents", "list_documents", deal["id"]),
        "templates": rpc.call("documents", "list_templates"),
        "questionnaires": rpc.call("documents", "list_questionnaires", deal["id"]),
        "questionnaire_templates": rpc.call("documents", "list_questionnaire_templates")}
    assert len(panel["documents"]) == 1 and len(panel["questionnaires"]) == 1
    assert panel["templates"] and panel["questionnaire_templates"]
