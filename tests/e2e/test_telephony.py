"""Telephony through the running CRM: calls from a live AMI session and signed cloud-PBX
webhooks land in the deal feed; recordings are fetched from the PBX and played with
seeking (HTTP Range); an unknown caller becomes a client and a deal in one step."""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.support.notify_standins import CommsStack, comms_stack
from tests.support.pbx_standins import fixture_frames_renumbered, make_wav
from tests.support.stack import Stack, wait_for, web_session

pytestmark = pytest.mark.e2e

RECORDING = ("/monitor/2023/11/14/"
             "in-74951234567-79161234567-20231114-221320-1700000000.41.wav")


@pytest.fixture(scope="module")
def comms(pytestconfig: Any) -> CommsStack:
    return comms_stack(pytestconfig)


def client_with_contact(stack: Stack, name: str, phone: str) -> dict:
    client = stack.ok("POST", "/clients", json={"kind": "person", "name": name})
    stack.ok("POST", f"/clients/{client['id']}/contacts", json={"name": name, "phones": [phone]})
    return client


def feed_call(stack: Stack, deal_id: int, stored: bool = False) -> dict | None:
    for entry in stack.ok("GET", f"/deals/{deal_id}")["feed"]:
        call = entry["item"]
        if entry["kind"] == "call" and (not stored or call["recording_status"] == "stored"):
            return call
    return None


def test_an_ami_call_reaches_the_deal_feed_and_its_recording_plays_with_seeking(comms):
    stack = comms.stack
    client = client_with_contact(stack, "Пётр Сидоров", "+7 916 123-45-67")
    deal = stack.ok("POST", "/deals", json={"name": "Телефония", "client_id": client["id"]})
    wav = make_wav(seconds=1.0)
    comms.pbx.files[RECORDING] = wav
    wait_for(lambda: comms.ami.connections, message="the AMI session")
    comms.ami.push(fixture_frames_renumbered("inbound_answered_recorded", "1"))

    call = wait_for(lambda: feed_call(stack, deal["id"], stored=True),
                    message="the call with its recording in the deal feed")
    assert (call["direction"], call["outcome"], call["duration_seconds"]) == (
        "inbound", "answered", 65)
    assert call["other_e164"] == "+79161234567" and call["client_id"] == client["id"]
    assert call["recording_url"] == f"/calls/{call['id']}/recording"

    web = web_session(stack)
    url = stack.url + call["recording_url"]
    whole = web.get(url, timeout=10)
    assert whole.status_code == 200 and whole.content == wav
    assert whole.headers["Content-Type"] == "audio/wav"
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert "private" in whole.headers["Cache-Control"]
    middle = web.get(url, headers={"Range": "bytes=1000-1999"}, timeout=10)
    assert middle.status_code == 206 and middle.content == wav[1000:2000]
    assert middle.headers["Content-Range"] == f"bytes 1000-1999/{len(wav)}"
    tail = web.get(url, headers={"Range": "bytes=-44"}, timeout=10)
    assert tail.status_code == 206 and tail.content == wav[-44:]
    beyond = web.get(url, headers={"Range": f"bytes={len(wav) + 10}-"}, timeout=10)
    assert beyond.status_code == 416
    assert requests.get(url, allow_redirects=False, timeout=10).status_code == 302  # signed out
    assert web.get(f"{stack.url}/calls/999999/recording", timeout=10).status_code == 404


def _mango(event: dict[str, Any], salt: str = CommsStack.MANGO[1]) -> dict[str, str]:
    raw = json.dumps(event, separators=(",", ":"))
    key = CommsStack.MANGO[0]
    return {"vpbx_api_key": key, "json": raw,
            "sign": hashlib.sha256(f"{key}{raw}{salt}".encode()).hexdigest()}


def test_mango_webhooks_are_verified_logged_and_repeats_change_nothing(comms):
    stack = comms.stack
    client = client_with_contact(stack, "Анна Облачная", "+7 903 200-30-40")
    deal = stack.ok("POST", "/deals", json={"name": "Облачная АТС", "client_id": client["id"]})
    now = int(datetime.now(UTC).timestamp())
    summary = {"entry_id": "e2e-mango-1", "call_direction": 1,
               "from": {"number": "79032003040"}, "to": {"extension": "102"},
               "line_number": "74950000000", "create_time": now - 60, "talk_time": now - 50,
               "end_time": now, "entry_result": 1, "disconnect_reason": 1110}
    hook = f"{stack.url}/api/v1/webhooks/mango"

    accepted = requests.post(f"{hook}/events/summary", data=_mango(summary), timeout=10)
    repeated = requests.post(f"{hook}/events/summary", data=_mango(summary), timeout=10)
    forged = requests.post(f"{hook}/events/summary", data=_mango(summary, salt="guess"),
                           timeout=10)
    garbage = requests.post(f"{hook}/events/summary",
                            data=_mango({"entry_id": "x", "call_direction": 5}), timeout=10)
    comms.pbx.mango["e2e-rec-1"] = make_wav(seconds=0.2)
    requests.post(f"{hook}/events/record/added",
                  data=_mango({"entry_id": "e2e-mango-1", "recording_id": "e2e-rec-1"}),
                  timeout=10).raise_for_status()

    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert repeated.status_code == 200 and repeated.json()["status"] == "duplicate"
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "forbidden"
    assert garbage.status_code == 422
    assert garbage.json()["error"]["field"] == "json.call_direction"
    call = wait_for(lambda: feed_call(stack, deal["id"], stored=True),
                    message="the Mango call with its recording")
    assert call["id"] == accepted.json()["call_id"] and call["duration_seconds"] == 50
    refused = stack.ok("GET", "/telephony/webhooks?outcome=refused", user="admin")
    assert any(w["provider"] == "mango" and w["event"] == "events/summary" for w in refused)
    assert stack.api("GET", "/telephony/webhooks").status_code == 403  # anna is no admin


def test_zadarma_echo_check_and_signed_notifications(comms):
    import base64
    import hmac

    stack = comms.stack
    hook = f"{stack.url}/api/v1/webhooks/zadarma"
    echo = requests.get(hook, params={"zd_echo": "check-42"}, timeout=10)
    assert echo.status_code == 200 and echo.text == "check-42"

    start = {"event": "NOTIFY_START", "call_start": "2026-03-02 12:00:00",
             "pbx_call_id": "in_e2e_1", "caller_id": "79035550011", "called_did": "74951112233"}

    def signed(form: dict[str, str], secret: str = CommsStack.ZADARMA[1]) -> str:
        text = "".join(form[k] for k in ("caller_id", "called_did", "call_start"))
        digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).hexdigest()
        return base64.b64encode(digest.encode()).decode()

    ok = requests.post(hook, data=start, headers={"Signature": signed(start)}, timeout=10)
    bad = requests.post(hook, data=start, headers={"Signature": signed(start, "x")}, timeout=10)
    end = {**start, "event": "NOTIFY_END", "duration": "0", "disposition": "no answer",
           "is_recorded": "0"}
    requests.post(hook, data=end, headers={"Signature": signed(end)},
                  timeout=10).raise_for_status()

    assert ok.status_code == 200 and ok.json()["status"] == "accepted"
    assert bad.status_code == 403
    missed = wait_for(lambda: next((c for c in stack.ok("GET", "/calls?unknown=1")
                                    if c["provider_call_id"] == "in_e2e_1"), None))
    assert (missed["outcome"], missed["our_line"]) == ("missed", "74951112233")
    assert missed["started_at"] == "2026-03-02T09:00:00+00:00"  # Moscow time in the form


def test_an_unknown_caller_becomes_a_client_with_a_deal_in_one_step(comms):
    stack = comms.stack
    started = datetime.now(UTC) - timedelta(minutes=3)
    call = stack.ok("POST", "/calls", json={
        "direction": "inbound", "from": "8 (926) 111-22-33", "to": "+74950000000",
        "started_at": started.isoformat(), "ended_at": (started + timedelta(seconds=30))
        .isoformat(), "call_id": "e2e-unknown-1"})
    assert call["contact_id"] is None
    web = web_session(stack)
    page = web.get(f"{stack.url}/calls?unknown=1", timeout=10).text
    assert f'action="/calls/{call["id"]}/create-client#create-client-{call["id"]}"' in page

    made = stack.ok("POST", f"/calls/{call['id']}/client",
                    json={"client_name": "Игорь Новиков", "deal_name": "Первый звонок"})
    assert made["client"]["kind"] == "person" and made["client"]["name"] == "Игорь Новиков"
    assert made["contact"]["phones"] == ["+79261112233"]
    assert made["call"]["client_id"] == made["client"]["id"]
    assert made["call"]["deal_ids"] == [made["deal"]["id"]]
    assert feed_call(stack, made["deal"]["id"])["id"] == call["id"]
    again = stack.api("POST", f"/calls/{call['id']}/client", json={})
    assert again.status_code == 409
    assert all(c["id"] != call["id"] for c in stack.ok("GET", "/calls?unknown=1"))
