"""Bearer tokens answer to the user's current state: a deactivated user or a changed
password ends every token issued before; an administrator lists and revokes tokens."""
from __future__ import annotations

from gateway.models import WebSession
from tests.service.gateway.conftest import api_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_deactivating_a_user_ends_their_tokens_at_once(client, add_user):
    add_user("root", roles=["admin"])
    anna = add_user("anna")
    token = api_token(client, "anna")
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    admin = api_token(client, "root")
    changed = client.patch(f"/api/v1/admin/users/{anna.id}", json={"active": False},
                           headers=bearer(admin))
    assert changed.status_code == 200
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    client.patch(f"/api/v1/admin/users/{anna.id}", json={"active": True}, headers=bearer(admin))
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_a_password_change_ends_tokens_and_sessions_issued_before(app, client, add_user):
    add_user("root", roles=["admin"])
    anna = add_user("anna")
    token = api_token(client, "anna")
    browser = app.test_client()
    browser.post("/login", data={"username": "anna", "password": "correct-horse-2026"})
    assert browser.get("/profile", headers={"Accept": "text/html"}).status_code != 302
    admin = api_token(client, "root")
    client.patch(f"/api/v1/admin/users/{anna.id}", json={"password": "another-horse-2026"},
                 headers=bearer(admin))
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert browser.get("/profile").status_code == 302  # back to the sign-in page
    assert client.get("/api/v1/me", headers=bearer(admin)).status_code == 200
    assert api_token(client, "anna", "another-horse-2026")


def test_an_administrator_lists_and_revokes_a_users_tokens(client, add_user):
    add_user("root", roles=["admin"])
    anna = add_user("anna")
    first, second = api_token(client, "anna"), api_token(client, "anna")
    admin = api_token(client, "root")
    client.get("/api/v1/me", headers=bearer(first))
    listed = client.get(f"/api/v1/admin/users/{anna.id}/tokens", headers=bearer(admin)).get_json()
    assert len(listed) == 2 and all(t["valid"] for t in listed)
    assert sum(1 for t in listed if t["last_used_at"]) == 1
    assert first not in str(listed) and second not in str(listed)
    used = next(t for t in listed if t["last_used_at"])
    assert client.delete(f"/api/v1/admin/users/{anna.id}/tokens/{used['id']}",
                         headers=bearer(admin)).status_code == 204
    assert client.get("/api/v1/me", headers=bearer(first)).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(second)).status_code == 200
    assert client.delete(f"/api/v1/admin/users/{anna.id}/tokens/{used['id']}",
                         headers=bearer(admin)).status_code == 404
    assert client.get(f"/api/v1/admin/users/{anna.id}/tokens",
                      headers=bearer(bearer(first)["Authorization"])).status_code == 401
    assert client.delete(f"/api/v1/admin/users/{anna.id}/tokens",
                         headers=bearer(admin)).status_code == 204
    assert client.get("/api/v1/me", headers=bearer(second)).status_code == 401
    assert client.get(f"/api/v1/admin/users/{anna.id}/tokens",
                      headers=bearer(admin)).get_json() == []


def test_the_admin_page_revokes_a_users_tokens(client, add_user, gateway_db):
    add_user("root", roles=["admin"])
    anna = add_user("anna")
    token = api_token(client, "anna")
    client.post("/login", data={"username": "root", "password": "correct-horse-2026"})
    csrf = gateway_db.query(WebSession).one().csrf_token
    response = client.post(f"/admin/users/{anna.id}/tokens/revoke", data={"csrf_token": csrf})
    assert response.status_code == 302
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
