"""API writes with an Idempotency-Key run once per user and key; HTML forms submitted twice
do nothing the second time; services answer a repeated call from their own record."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from gateway.models import IdempotentRequest, User, WebSession
from services.clients.service import ClientsService
from tests.service.gateway.conftest import PASSWORD, api_token


def headers(token: str, key: str | None = None) -> dict[str, str]:
    sent = {"Authorization": f"Bearer {token}"}
    if key:
        sent["Idempotency-Key"] = key
    return sent


def users(gateway_db) -> int:
    gateway_db.expire_all()
    return gateway_db.scalar(select(func.count()).select_from(User))


def test_the_same_key_and_body_gets_the_stored_response_and_writes_once(client, add_user,
                                                                       gateway_db):
    add_user("root", roles=["admin"])
    token = api_token(client, "root")
    new = {"username": "petr", "full_name": "Пётр", "password": "long-enough-pass",
           "roles": ["manager"]}
    first = client.post("/api/v1/admin/users", json=new, headers=headers(token, "k-1"))
    again = client.post("/api/v1/admin/users", json=new, headers=headers(token, "k-1"))
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert users(gateway_db) == 2
    other = client.post("/api/v1/admin/users", json={**new, "username": "oleg"},
                        headers=headers(token, "k-1"))
    assert other.status_code == 422 and other.get_json()["error"]["field"] == "Idempotency-Key"
    assert users(gateway_db) == 2


def test_keys_belong_to_one_user_and_a_failed_write_can_be_retried(client, add_user,
                                                                  gateway_db):
    add_user("root", roles=["admin"])
    add_user("boss", roles=["admin"])
    root, boss = api_token(client, "root"), api_token(client, "boss")
    bad = client.post("/api/v1/admin/users", json={"username": "x"}, headers=headers(root, "k"))
    assert bad.status_code == 422
    again = client.post("/api/v1/admin/users", json={"username": "x"}, headers=headers(root, "k"))
    assert again.status_code == 422 and "Idempotent-Replayed" in again.headers
    new = {"username": "vera", "full_name": "Вера", "password": "long-enough-pass",
           "roles": ["manager"]}
    assert client.post("/api/v1/admin/users", json=new,
                       headers=headers(boss, "k")).status_code == 201


def test_a_repeat_while_the_first_runs_is_a_conflict_until_it_finishes(client, add_user,
                                                                      gateway_db):
    root = add_user("root", roles=["admin"])
    token = api_token(client, "root")
    new = {"username": "petr", "full_name": "Пётр", "password": "long-enough-pass",
           "roles": ["manager"]}
    client.post("/api/v1/admin/users", json=new, headers=headers(token, "slow"))
    gateway_db.execute(text("UPDATE idempotent_requests SET status = NULL, body = NULL "
                            "WHERE user_id = :u"), {"u": root.id})
    gateway_db.commit()
    running = client.post("/api/v1/admin/users", json=new, headers=headers(token, "slow"))
    assert running.status_code == 409
    assert users(gateway_db) == 2


def test_a_key_is_kept_a_day(client, add_user, gateway_db):
    root = add_user("root", roles=["admin"])
    token = api_token(client, "root")
    client.delete("/api/v1/admin/users/999/tokens", headers=headers(token, "old"))
    gateway_db.execute(text("UPDATE idempotent_requests SET created_at = :t WHERE user_id = :u"),
                       {"t": datetime.now(UTC) - timedelta(hours=25), "u": root.id})
    gateway_db.commit()
    later = client.post("/api/v1/admin/users", json={"username": "z"},
                        headers=headers(token, "old"))
    assert later.status_code == 422 and later.get_json()["error"]["field"] != "Idempotency-Key"


def test_a_retry_after_the_gateway_died_mid_write_is_answered_by_the_service(
        start_service, make_app, add_user, gateway_db, session_of):
    start_service(ClientsService)
    client = make_app(IDEMPOTENCY_LEASE_SECONDS=5).test_client()
    anna = add_user("anna")
    token = api_token(client, "anna")
    new = {"name": "ООО «Один раз»", "kind": "person"}
    first = client.post("/api/v1/clients", json=new, headers=headers(token, "crash"))
    assert first.status_code == 201, first.get_data(as_text=True)
    # as if the gateway was killed after the service committed, before keeping the answer
    gateway_db.execute(text("UPDATE idempotent_requests SET status = NULL, body = NULL, "
                            "created_at = :t WHERE user_id = :u"),
                       {"t": datetime.now(UTC) - timedelta(seconds=6), "u": anna.id})
    gateway_db.commit()
    retry = client.post("/api/v1/clients", json=new, headers=headers(token, "crash"))
    assert retry.status_code == 201 and retry.get_json()["id"] == first.get_json()["id"]
    clients = session_of("clients")
    assert clients.scalar(text("SELECT count(*) FROM clients WHERE name = :n"),
                          {"n": new["name"]}) == 1
    gateway_db.expire_all()
    assert gateway_db.scalar(select(IdempotentRequest.status)) == 201


def test_a_form_submitted_twice_does_nothing_the_second_time(client, add_user, gateway_db):
    add_user("root", roles=["admin"])
    client.post("/login", data={"username": "root", "password": PASSWORD})
    page = client.get("/profile").get_data(as_text=True)
    assert 'name="form_token"' in page
    csrf = gateway_db.scalars(select(WebSession.csrf_token)).one()
    form = {"csrf_token": csrf, "form_token": "t-123", "username": "petr", "full_name": "Пётр",
            "password": "long-enough-pass", "roles": "manager", "active": "1"}
    first = client.post("/admin/users", data=form)
    second = client.post("/admin/users", data=form, headers={"Referer": "http://localhost/admin"})
    assert first.status_code == 302 and second.status_code == 303
    assert second.headers["Location"] == "/admin"
    assert users(gateway_db) == 2
    third = client.post("/admin/users", data={**form, "form_token": "t-456",
                                              "username": "oleg"})
    assert third.status_code == 302 and users(gateway_db) == 3
