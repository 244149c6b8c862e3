"""A person in Chromium: plays a call recording and seeks in it (the server answers
ranges), and turns an unknown caller into a client with a deal in one click."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.notify_standins import CommsStack, comms_stack
from tests.support.pbx_standins import fixture_frames_renumbered, make_wav
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.browser

RECORDING = ("/monitor/2023/11/14/"
             "in-74951234567-79161234567-20231114-221320-1700000000.41.wav")


@pytest.fixture(scope="module")
def comms(pytestconfig: Any) -> CommsStack:
    return comms_stack(pytestconfig)


@pytest.fixture(scope="module")
def stack(comms: CommsStack) -> Stack:
    """This module's pages run on the stack whose PBX is played by stand-ins."""
    return comms.stack


def test_a_recording_plays_in_the_page_and_seeking_uses_ranges(comms, stack, login, page):
    client = stack.ok("POST", "/clients", json={"kind": "person", "name": "Вера Звонкова"})
    stack.ok("POST", f"/clients/{client['id']}/contacts",
             json={"name": "Вера Звонкова", "phones": ["+7 916 765-43-21"]})
    # the same recorded call, from another number (the file name carries the number too)
    comms.pbx.files[RECORDING.replace("79161234567", "79167654321")] = make_wav(seconds=3.0)
    wait_for(lambda: comms.ami.connections, message="the AMI session")
    comms.ami.push(fixture_frames_renumbered("inbound_answered_recorded", "77",
                                             {"79161234567": "79167654321"}))
    call = wait_for(lambda: next((c for c in stack.ok("GET", f"/calls?client_id={client['id']}")
                                  if c["recording_status"] == "stored"), None),
                    message="the stored recording")

    ranges: list[str] = []
    page.on("request", lambda r: ranges.append(r.headers.get("range", ""))
            if r.url.endswith(call["recording_url"]) else None)
    login("anna")
    page.goto(f"{stack.url}/calls")
    player = page.locator(f'[data-call-id="{call["id"]}"] audio')
    expect(player).to_have_attribute("src", call["recording_url"])
    page.wait_for_function("a => a.readyState >= 1 && a.duration > 2.9",
                           arg=player.element_handle())
    # seekable over the whole length: the server answered byte ranges
    assert player.evaluate("a => a.seekable.length === 1 && a.seekable.end(0)") > 2.9
    player.evaluate("a => new Promise(done => { a.addEventListener('seeked', done, {once: true});"
                    " a.currentTime = 2.0; })")
    assert abs(player.evaluate("a => a.currentTime") - 2.0) < 0.1
    assert any(r.startswith("bytes=") for r in ranges)
    expect(page.locator(f'[data-call-id="{call["id"]}"] .call-number')).to_contain_text(
        "Вера Звонкова")


def test_an_unknown_caller_becomes_a_client_and_a_deal_in_one_click(stack, login, page):
    started = datetime.now(UTC) - timedelta(minutes=2)
    call = stack.ok("POST", "/calls", json={
        "direction": "inbound", "from": "+7 926 555-44-33", "to": "+74950000000",
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(seconds=20)).isoformat(), "call_id": "browser-t4"})
    login("anna")
    page.goto(f"{stack.url}/calls?unknown=1")
    row = page.locator(f'[data-call-id="{call["id"]}"]')
    row.locator("summary").click()
    row.locator("input[name=client_name]").fill("Семён Новый")
    row.locator("input[name=deal_name]").fill("Заявка по телефону")
    row.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/deals/\d+"))
    expect(page.locator("body")).to_contain_text("Заявка по телефону")
    deal_id = int(page.url.split("#")[0].rsplit("/", 1)[1].split("?")[0])
    attached = stack.ok("GET", f"/calls/{call['id']}")
    assert attached["deal_ids"] == [deal_id] and attached["contact_name"] == "Семён Новый"
