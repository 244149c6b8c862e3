"""The gateway as a Flask app on its own real database (and a real RabbitMQ virtual host
for the views that call services), driven through Flask's test client."""
from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from gateway.app import create_app
from gateway.auth import hash_password
from gateway.models import User

PASSWORD = "correct-horse-2026"
_HASH = hash_password(PASSWORD)  # one argon2 hash for every test user: hashing is slow


@pytest.fixture
def gateway_config(db_url: Callable[[str], str], amqp_uri: str) -> dict[str, Any]:
    return {"DB_URL": db_url("gateway"), "AMQP_URI": amqp_uri, "RPC_TIMEOUT": 3,
            "PAGE_DEADLINE": 1.5, "LOGIN_MAX_FAILURES": 5, "LOGIN_WINDOW_SECONDS": 900,
            "DB_POOL_SIZE": 3}


@pytest.fixture
def make_app(gateway_config: dict[str, Any]) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        # Building the app compiles every route with ast.parse. CPython 3.11 before 3.11.8
        # keeps the AST converter's depth in shared state (gh-106905): a collection that runs
        # finalizers mid-parse can let another green thread parse at the same time and
        # raise "AST constructor recursion depth mismatch". No collection, no interleaving.
        gc.disable()
        try:
            app = create_app({**gateway_config, **overrides})
        finally:
            gc.enable()
        app.testing = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        services = app.extensions["services"]
        if services._client is not None:
            services._client.close()
        app.extensions["db"].kw["bind"].dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def gateway_db(gateway_config: dict[str, Any]) -> Iterator[Session]:
    engine = create_engine(gateway_config["DB_URL"])
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


@pytest.fixture
def add_user(gateway_db: Session) -> Callable[..., User]:
    def add(username: str, roles: list[str] | None = None, **fields: Any) -> User:
        user = User(username=username, full_name=username.title(), roles=roles or ["manager"],
                    password_hash=_HASH, lang="ru", **fields)
        gateway_db.add(user)
        gateway_db.commit()
        return user

    return add


def api_token(client: FlaskClient, username: str, password: str = PASSWORD) -> str:
    response = client.post("/api/v1/auth/token", json={"username": username,
                                                       "password": password})
    assert response.status_code == 200, response.get_data(as_text=True)
    return str(response.get_json()["token"])
