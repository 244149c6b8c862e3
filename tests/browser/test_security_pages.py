"""Text people typed stays text: a client named like markup shows literally, nothing it
holds runs, and the merge button still asks before merging."""
from __future__ import annotations

import random

import pytest
from playwright.sync_api import Page, expect

from tests.support.stack import Stack
from tests.unit.clients.vectors import make_inn10

pytestmark = pytest.mark.browser

HOSTILE = 'ООО "Кавычки" \' onmouseover="window.hacked=1" </script><script>window.hacked=2</script>'


def test_a_client_named_like_markup_shows_literally_and_merge_still_asks(
        stack: Stack, login, page: Page):
    phone = f"+7916{random.randrange(10**7):07d}"
    survivor = stack.ok("POST", "/clients", json={
        "name": "ООО «Остаётся»", "inn": make_inn10(f"77{random.randrange(10**7):07d}"),
        "contacts": [{"name": "Олег", "phones": [phone]}]})
    hostile = stack.ok("POST", "/clients", json={
        "name": HOSTILE, "inn": make_inn10(f"77{random.randrange(10**7):07d}"),
        "contacts": [{"name": "Олег", "phones": [phone]}]})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    dialogs: list[str] = []

    def dismiss(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    login("anna")
    response = page.goto(f"{stack.url}/clients/{survivor['id']}")
    assert response is not None and "script-src 'self'" in \
        response.headers["content-security-policy"]
    duplicate = page.locator("#panel-duplicates li").filter(has_text="Кавычки")
    expect(duplicate.locator("a")).to_have_text(HOSTILE)
    duplicate.locator("a").hover()
    page.locator(f"#panel-duplicates form input[value='{hostile['id']}']").locator(
        "xpath=..").locator("button").click()
    assert len(dialogs) == 1 and HOSTILE in dialogs[0]
    assert page.evaluate("window.hacked") is None
    assert page.url.endswith(f"/clients/{survivor['id']}")
    still_there = stack.ok("GET", f"/clients/{hostile['id']}")
    assert still_there.get("merged_into") in (None, "") and still_there["name"] == HOSTILE
    assert not [e for e in errors if "Content Security Policy" in e], errors
