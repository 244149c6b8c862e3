"""Service tier: real nameko containers on a real RabbitMQ virtual host and real
PostgreSQL databases, run under eventlet as the services run in production."""
import os
import warnings

os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet

eventlet.monkey_patch()

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from nameko.containers import ServiceContainer
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from gateway.rpc import RpcClient
from services.kit.config import COMPONENTS
from services.kit.dependencies import UnitOfWork
from tests.support import infra


@pytest.fixture(scope="session")
def templates() -> None:
    for component in COMPONENTS:
        infra.build_template(component)


@pytest.fixture
def amqp_uri() -> Iterator[str]:
    vhost = infra.create_vhost()
    yield infra.amqp_uri(vhost)
    infra.delete_vhost(vhost)


@pytest.fixture
def db_url(templates: None) -> Iterator[Callable[[str], str]]:
    """``db_url("deals")``: a fresh migrated database of that component for this test."""
    made: dict[str, str] = {}

    def get(component: str) -> str:
        if component not in made:
            made[component] = infra.copy_database(component)
        return made[component]

    yield get
    for url in made.values():
        infra.admin_execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@pytest.fixture
def start_service(amqp_uri: str, db_url: Callable[[str], str]) -> Iterator[Callable[..., Any]]:
    """Start a service class in a real container (the one fixture of the service tier;
    a folder's conftest may wrap it with its own defaults); killed after the test."""
    containers: list[ServiceContainer] = []

    def start(service_cls: type, component: str | None = None,
              **overrides: Any) -> ServiceContainer:
        """``component`` names the schema when the class borrows another's."""
        uses_db = any(isinstance(v, UnitOfWork) for v in vars(service_cls).values())
        database = {"DB_URL": db_url(component or service_cls.name)} if uses_db else {}
        config = {"AMQP_URI": amqp_uri, **database, "RPC_TIMEOUT": 3,
                  "OUTBOX_SWEEP_SECONDS": 0.5, "max_workers": 10, "DB_POOL_SIZE": 12,
                  **overrides}
        container = ServiceContainer(service_cls, config)
        container.start()
        containers.append(container)
        return container

    yield start
    # in parallel: nameko's consumer takes about a second to die, three in a row made
    # each test three seconds longer
    threads = [eventlet.spawn(c.kill) for c in containers]
    for thread in threads:
        thread.wait()


@pytest.fixture
def rpc(amqp_uri: str) -> Iterator[RpcClient]:
    client = RpcClient(amqp_uri, timeout=5, name="test")
    yield client
    client.close()


@pytest.fixture
def spy(amqp_uri: str) -> Iterator[Callable[..., infra.EventSpy]]:
    spies: list[infra.EventSpy] = []

    def make(service: str, event_type: str = "#") -> infra.EventSpy:
        made = infra.EventSpy(amqp_uri, service, event_type)
        spies.append(made)
        return made

    yield make
    for made in spies:
        made.close()


@pytest.fixture
def session_of(db_url: Callable[[str], str]) -> Iterator[Callable[[str], Session]]:
    """A plain SQLAlchemy session on a component's test database, for assertions."""
    engines = []

    def make(component: str) -> Session:
        engine = create_engine(db_url(component))
        engines.append(engine)
        return Session(engine)

    yield make
    for engine in engines:
        engine.dispose()
