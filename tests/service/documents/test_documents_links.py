"""The client's link: views, approval, decline, signature by a one-time code sent by
e-mail through notifications, expiry and revocation."""
from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest

from services.kit.errors import Conflict, NotFound, ValidationError
from tests.service.documents.conftest import MANAGER, template_id
from tests.support.infra import wait_until

BROWSER = {"ip": "203.0.113.9", "user_agent": "Mozilla/5.0 (X11; Linux) Test"}


@pytest.fixture
def contract(deal: dict[str, Any], rpc: Any) -> dict[str, Any]:
    rpc.call("notifications", "set_recipient", MANAGER, {"email": "anna@crm.test"})
    return rpc.call("documents", "generate_document", deal["id"],
                    template_id(rpc, "contract"), MANAGER)


def feed_actions(rpc: Any, deal_id: int) -> list[str]:
    return [e["data"]["action"] for e in rpc.call("deals", "deal_page", deal_id)["feed"]
            if e["kind"] == "document"]


def test_every_view_is_recorded_published_and_told_to_the_manager(contract, rpc, spy, smtp):
    events = spy("documents", "document_viewed")
    first = rpc.call("documents", "open_link", contract["token"], BROWSER)
    rpc.call("documents", "open_link", contract["token"], BROWSER)

    assert first["state"] == "active" and "Договор №" in first["html"]
    views = [e["data"] for e in events.wait_for("document_viewed", 2)]
    assert [(v["views"], v["first"]) for v in views] == [(1, True), (2, False)]
    wait_until(lambda: feed_actions(rpc, contract["deal_id"]).count("viewed") == 2)
    mail = smtp.wait_for_messages(2)
    assert all(m["To"] == "anna@crm.test" for m in mail)
    assert "Клиент открыл документ" in str(mail[0]["Subject"])
    document = rpc.call("documents", "get_document", contract["id"])
    assert document["status"] == "viewed" and document["views"] == 2
    assert document["actions"][0]["ip"] == "203.0.113.9"


def test_a_contract_is_signed_with_the_code_from_the_contacts_mail(contract, rpc, smtp, spy):
    events = spy("documents", "document_signed")
    sent = rpc.call("documents", "request_sign_code", contract["token"], BROWSER)
    assert sent["channel"] == "email" and "@" not in sent["address"][:2]
    [mail] = smtp.wait_for_messages(1)
    assert mail["To"] == "petr@romashka.test"
    code = re.search(r"\b(\d{6})\b", mail.get_body().get_content()).group(1)

    with pytest.raises(ValidationError) as caught:
        rpc.call("documents", "sign", contract["token"], "000000" if code != "000000"
                 else "111111", BROWSER)
    assert caught.value.details["field"] == "code"
    signed = rpc.call("documents", "sign", contract["token"], code, BROWSER)

    assert signed["signed"] and signed["status"] == "signed"
    pdf = base64.b64decode(rpc.call("documents", "link_pdf", contract["token"])["content_b64"])
    document = rpc.call("documents", "get_document", contract["id"])
    assert document["signature"]["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert document["signature"]["ip"] == "203.0.113.9"
    assert document["signature"]["signer"] == "Пётр Сидоров"
    assert events.wait_for("document_signed")[0]["data"]["sha256"] == document["pdf_sha256"]
    wait_until(lambda: "signed" in feed_actions(rpc, contract["deal_id"]))
    with pytest.raises(Conflict):
        rpc.call("documents", "sign", contract["token"], code, BROWSER)


def test_a_template_change_after_signing_does_not_alter_the_signed_pdf(contract, rpc, smtp):
    rpc.call("documents", "request_sign_code", contract["token"], BROWSER)
    code = re.search(r"\b(\d{6})\b", smtp.wait_for_messages(1)[0].get_body().get_content())
    rpc.call("documents", "sign", contract["token"], code.group(1), BROWSER)
    before = rpc.call("documents", "link_pdf", contract["token"])["content_b64"]
    template = rpc.call("documents", "get_template", contract["template_id"])
    rpc.call("documents", "save_template", {**template, "body": "<p>Другой</p>"}, MANAGER)
    assert rpc.call("documents", "link_pdf", contract["token"])["content_b64"] == before


def test_decline_needs_a_comment_and_reaches_the_feed(contract, rpc):
    with pytest.raises(ValidationError) as caught:
        rpc.call("documents", "decline", contract["token"], "  ", BROWSER)
    assert caught.value.details["field"] == "comment"
    rpc.call("documents", "decline", contract["token"], "Дорого", BROWSER)
    wait_until(lambda: "declined" in feed_actions(rpc, contract["deal_id"]))
    with pytest.raises(Conflict):
        rpc.call("documents", "approve", contract["token"], BROWSER)


def test_a_revoked_or_expired_link_shows_its_state_only_and_a_wrong_token_is_not_found(
        contract, rpc):
    rpc.call("documents", "revoke_link", contract["id"], MANAGER)
    revoked = rpc.call("documents", "open_link", contract["token"], BROWSER)
    assert revoked["state"] == "revoked" and "html" not in revoked
    assert revoked["manager_id"] == MANAGER
    with pytest.raises(Conflict):
        rpc.call("documents", "approve", contract["token"], BROWSER)
    renewed = rpc.call("documents", "set_link_expiry", contract["id"], "2099-01-01", MANAGER)
    assert renewed["link_state"] == "active"
    assert rpc.call("documents", "open_link", contract["token"], BROWSER)["state"] == "active"
    token = contract["token"]
    # A token may itself end in "x": change its last character to one it does not have.
    wrong = token[:-1] + ("y" if token.endswith("x") else "x")
    with pytest.raises(NotFound):
        rpc.call("documents", "open_link", wrong, BROWSER)
    with pytest.raises(ValidationError):
        rpc.call("documents", "set_link_expiry", contract["id"], "2001-01-01", MANAGER)
