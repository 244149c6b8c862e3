"""Signing in: the limiter counts every failure whatever the client sends, trusts
X-Forwarded-For only behind configured proxies, leaks nothing by timing, refuses
cross-site sign-in forms and redirects only within the site."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from gateway.models import LoginAttempt
from tests.service.gateway.conftest import PASSWORD


def failures(gateway_db) -> int:
    gateway_db.expire_all()
    return gateway_db.scalar(select(func.count()).select_from(LoginAttempt))


@pytest.mark.parametrize("username,headers", [
    ("anna", {"X-Forwarded-For": "1" * 200}),
    ("a" * 500, {}),
    ("anna", {"X-Forwarded-For": "\x00" * 3}),
])
def test_a_failed_sign_in_is_counted_whatever_the_name_and_headers(client, add_user, gateway_db,
                                                                   username, headers):
    add_user("anna")
    for attempt in range(5):
        response = client.post("/login", data={"username": username, "password": "x"},
                               headers=headers)
        assert response.status_code == 401, (attempt, response.status_code)
    assert failures(gateway_db) == 5
    blocked = client.post("/login", data={"username": username, "password": "x"},
                          headers=headers)
    assert blocked.status_code == 429


def test_a_name_with_nul_is_refused_naming_the_field_never_a_500(client):
    response = client.post("/login", data={"username": "an\x00na", "password": "x"})
    assert response.status_code == 422


def test_the_limiter_key_takes_any_input():
    from gateway.auth import limiter_key

    assert limiter_key("An\x00na\x1f ", 100) == "anna"
    assert limiter_key("\x00" * 3, 100) == "-"
    assert len(limiter_key("x" * 500, 100)) == 100


def test_rotating_x_forwarded_for_does_not_escape_the_address_limit(client, gateway_db):
    for n in range(20):  # 20 = four times the per-name limit: the per-address ceiling
        client.post("/login", data={"username": f"guess{n}", "password": "x"},
                    headers={"X-Forwarded-For": f"10.0.0.{n}"})
    blocked = client.post("/login", data={"username": "another", "password": "x"},
                          headers={"X-Forwarded-For": "10.9.9.9"})
    assert blocked.status_code == 429
    gateway_db.expire_all()
    assert set(gateway_db.scalars(select(LoginAttempt.address))) == {"127.0.0.1"}


def test_x_forwarded_for_counts_only_behind_a_configured_proxy(make_app, gateway_db):
    proxied = make_app(TRUSTED_PROXIES=1).test_client()
    proxied.post("/login", data={"username": "x", "password": "x"},
                 headers={"X-Forwarded-For": "203.0.113.7"})
    gateway_db.expire_all()
    assert list(gateway_db.scalars(select(LoginAttempt.address))) == ["203.0.113.7"]


def test_an_unknown_name_takes_as_long_as_a_wrong_password(client, add_user):
    add_user("anna")

    def duration(username: str) -> float:
        started = time.perf_counter()
        client.post("/login", data={"username": username, "password": "wrong"})
        return time.perf_counter() - started

    known = min(duration("anna") for _ in range(3))
    unknown = min(duration(f"nobody{n}") for n in range(3))
    assert unknown > known * 0.5, (known, unknown)


def test_a_sign_in_form_posted_from_another_site_is_refused(client, add_user):
    add_user("anna")
    forged = client.post("/login", data={"username": "anna", "password": PASSWORD},
                         headers={"Origin": "https://evil.example"})
    assert forged.status_code == 400 and "crm_session" not in forged.headers.get("Set-Cookie", "")
    cross = client.post("/login", data={"username": "anna", "password": PASSWORD},
                        headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 400
    same = client.post("/login", data={"username": "anna", "password": PASSWORD},
                       headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 302


@pytest.mark.parametrize("target", ["/%09/evil.example", "//evil.example", "\\\\evil.example",
                                    "/\\evil.example", "https://evil.example/x",
                                    "javascript:alert(1)", "/\r\n/evil.example",
                                    " //evil.example", "evil.example"])
def test_after_sign_in_only_same_site_paths_are_followed(client, add_user, target):
    add_user("anna")
    from urllib.parse import quote, unquote

    response = client.post(f"/login?next={quote(unquote(target), safe='')}",
                           data={"username": "anna", "password": PASSWORD})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith("//") and "\\" not in location
    assert "evil" not in location and "javascript" not in location


def test_a_same_site_next_path_is_followed(client, add_user):
    add_user("anna")
    response = client.post("/login?next=/clients/5?tab=history",
                           data={"username": "anna", "password": PASSWORD})
    assert response.headers["Location"] == "/clients/5?tab=history"


def test_request_id_is_echoed_only_when_short_and_plain(client):
    assert client.get("/login", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] \
        == "abc-123"
    for sent in ("x" * 65, "a b", "<script>"):
        echoed = client.get("/login", headers={"X-Request-Id": sent}).headers["X-Request-Id"]
        assert echoed != sent and len(echoed) <= 64


def test_pages_say_which_referrer_to_send_and_forbid_inline_script(client):
    response = client.get("/login")
    assert response.headers["Referrer-Policy"] == "same-origin"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
