"""Who a request is (gateway/auth.py ``load_user``): the cookie's session and its user are
read in one statement on every request, nothing kept between requests, so a logout, an
expiry, a deactivation or a password change refuses the very next request."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, update

from gateway.auth import COOKIE, holder, now, token_hash
from gateway.models import ApiToken, User, UserSetting, WebSession
from tests.service.gateway.conftest import PASSWORD, api_token


def signed_in(app, username: str):
    browser = app.test_client()
    response = browser.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302
    return browser


def me(browser) -> int:
    """200 for a signed-in browser, 401 for anyone else (the API takes the cookie too)."""
    return int(browser.get("/api/v1/me").status_code)


def cookie_of(browser) -> str:
    return str(browser.get_cookie(COOKIE).value)


def test_a_logout_ends_the_session_even_for_a_kept_cookie(app, add_user):
    add_user("anna")
    browser = signed_in(app, "anna")
    kept = cookie_of(browser)
    assert me(browser) == 200
    with app.extensions["db"]() as db:
        csrf = db.get(WebSession, token_hash(kept)).csrf_token
    assert browser.post("/logout", data={"csrf_token": csrf}).status_code == 302
    replay = app.test_client()
    replay.set_cookie(COOKIE, kept)
    assert me(replay) == 401


def test_an_expired_session_is_refused(app, add_user, gateway_db):
    add_user("anna")
    browser = signed_in(app, "anna")
    assert me(browser) == 200
    gateway_db.execute(update(WebSession).where(
        WebSession.token_hash == token_hash(cookie_of(browser)))
        .values(expires_at=now() - timedelta(seconds=1)))
    gateway_db.commit()
    assert me(browser) == 401


def test_a_deactivation_or_a_new_credentials_version_refuses_the_next_request(
        app, add_user, gateway_db):
    anna = add_user("anna")
    browser = signed_in(app, "anna")
    assert me(browser) == 200  # the session was read: nothing of it may be kept
    gateway_db.execute(update(User).where(User.id == anna.id).values(active=False))
    gateway_db.commit()
    assert me(browser) == 401
    # the flag alone is read each time: set back, the session opens again ...
    gateway_db.execute(update(User).where(User.id == anna.id).values(active=True))
    gateway_db.commit()
    assert me(browser) == 200
    # ... which is why the administrator's deactivation also bumps the version: that
    # ends every session issued before for good
    gateway_db.execute(update(User).where(User.id == anna.id).values(
        credentials_version=User.credentials_version + 1))
    gateway_db.commit()
    assert me(browser) == 401


def test_the_session_and_its_user_are_one_statement(app, add_user):
    add_user("anna")
    browser = signed_in(app, "anna")
    token = api_token(app.test_client(), "anna")
    statements: list[str] = []

    def seen(conn, cursor, statement, *rest) -> None:
        statements.append(statement)

    engine = app.extensions["db"].kw["bind"]
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with app.extensions["db"]() as db:
            session, user, settings = holder(db, WebSession, cookie_of(browser))
            assert user.username == "anna" and session.user_id == user.id and settings == {}
            assert len(statements) == 1
            row, same, _ = holder(db, ApiToken, token)
            assert same.id == user.id and row.user_id == user.id
            assert len(statements) == 2
            assert holder(db, WebSession, "not-a-session") is None
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def test_the_users_settings_come_with_the_session_as_they_are_now(app, add_user, gateway_db):
    anna = add_user("anna")
    browser = signed_in(app, "anna")
    gateway_db.add_all([UserSetting(user_id=anna.id, key="timezone", value="Asia/Omsk"),
                        UserSetting(user_id=anna.id, key="deals.view", value="table")])
    gateway_db.commit()
    with app.extensions["db"]() as db:
        assert holder(db, WebSession, cookie_of(browser))[2] == {
            "timezone": "Asia/Omsk", "deals.view": "table"}
    gateway_db.execute(update(UserSetting).where(UserSetting.user_id == anna.id,
                                                 UserSetting.key == "deals.view")
                       .values(value="kanban"))
    gateway_db.commit()
    with app.extensions["db"]() as db:  # the next request reads what is stored now
        assert holder(db, WebSession, cookie_of(browser))[2]["deals.view"] == "kanban"


def test_a_chosen_view_is_remembered_and_a_remembered_one_is_not_written_again(
        app, add_user, gateway_db):
    from flask import g

    from gateway.sections.deals import VIEW_KEY, view_mode

    anna = add_user("anna")
    with app.test_request_context("/deals?mode=table"):
        g.db = app.extensions["db"]()
        g.user, g.user_settings = anna, {}
        assert view_mode(anna) == "table" and g.user_settings[VIEW_KEY] == "table"
        g.db.close()
    assert gateway_db.get(UserSetting, (anna.id, VIEW_KEY)).value == "table"
    with app.test_request_context("/deals"):  # no mode asked: the remembered one
        g.db = app.extensions["db"]()
        g.user, g.user_settings = anna, {VIEW_KEY: "table"}
        assert view_mode(anna) == "table"
        g.db.close()
    with app.test_request_context("/deals?mode=table"):  # already remembered: no write
        g.db = app.extensions["db"]()
        g.user, g.user_settings = anna, {VIEW_KEY: "table"}
        assert view_mode(anna) == "table" and not g.db.in_transaction()
        g.db.close()
