"""Demo data for `make run`: users of every role, and clients, deals, payments, calls and
leads created through the services (so every event flows as in real use).  Runs once: a
``demo_seeded`` setting in the gateway database remembers it."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gateway.auth import hash_password
from gateway.models import Setting, User
from gateway.rpc import RpcClient
from services.kit.config import load_component_config
from services.kit.db import make_engine

DEMO_PASSWORD = "demo-crm-2026"
DEMO_USERS = (
    ("admin", "Администратор", ["admin"]),
    ("head", "Ольга Руководитель", ["head"]),
    ("anna", "Анна Менеджер", ["manager"]),
    ("ivan", "Иван Менеджер", ["manager"]),
    ("buh", "Бухгалтер Мария", ["accountant"]),
)

CLIENTS = (
    ({"name": "ООО «Ромашка»", "inn": "7707083893", "kind": "legal"},
     [("Пётр Сидоров", "+7 916 123-45-67"), ("Елена Кузнецова", "8 (495) 765-43-21")]),
    ({"name": "ИП Васильев Андрей", "inn": "500100732259", "kind": "entrepreneur"},
     [("Андрей Васильев", "89031234567")]),
    ({"name": "АО «Северный ветер»", "inn": "7728168971", "kind": "legal"},
     [("Дмитрий Орлов", "+7 (921) 555-01-02")]),
)


def ensure_users(db: Session) -> dict[str, int]:
    ids = {}
    for username, full_name, roles in DEMO_USERS:
        user = db.scalars(select(User).where(User.username == username)).first()
        if user is None:
            user = User(username=username, full_name=full_name, roles=roles,
                        password_hash=hash_password(DEMO_PASSWORD), lang="ru")
            db.add(user)
            db.flush()
        ids[username] = user.id
    return ids


def register_recipients(rpc: RpcClient, db: Session, users: dict[str, int]) -> None:
    """Tell notifications how to reach each demo user (in-app works without it)."""
    for username, user_id in users.items():
        user = db.get(User, user_id)
        assert user is not None
        rpc.call("notifications", "set_recipient", user_id,
                 {"email": user.email or f"{username}@demo.crm.local", "name": user.full_name,
                  "lang": user.lang})


# Our own requisites for the demo's documents (an invoice's bank block and QR code need them).
DEMO_COMPANY = {"name": "ООО «Демо CRM»", "short_name": "Демо CRM", "inn": "7707083893",
                "kpp": "770701001", "ogrn": "1027700132195",
                "address": "123112, Москва, Пресненская наб., 10", "bank_name": "ПАО Сбербанк",
                "bik": "044525225", "settlement_account": "40702810938000000001",
                "correspondent_account": "30101810400000000225",
                "director": "Иванов Иван Иванович", "accountant": "Петрова Мария Сергеевна",
                "phone": "+7 495 123-45-00", "email": "sales@demo.crm.local", "vat_rate": "20"}


def seed_business(rpc: RpcClient, users: dict[str, int]) -> None:
    managers = [users["anna"], users["ivan"]]
    rpc.call("documents", "save_company", DEMO_COMPANY, user_id=users["admin"])
    for i, (client_data, contacts) in enumerate(CLIENTS):
        manager = managers[i % 2]
        client = rpc.call("clients", "create_client", {**client_data, "source": "demo"},
                          user_id=manager)
        for name, phone in contacts:
            rpc.call("clients", "add_contact", client["id"], {"name": name, "phones": [phone]},
                     user_id=manager)
        deal = rpc.call("deals", "create_deal",
                        {"name": f"Поставка оборудования для {client_data['name']}",
                         "client_id": client["id"]}, user_id=manager)
        first = rpc.call("payments", "add_planned_payment", deal["id"],
                         {"amount": "150000.00", "due_date": str(date.today() - timedelta(days=3))},
                         user_id=manager)
        rpc.call("payments", "add_planned_payment", deal["id"],
                 {"amount": "350000.00", "due_date": str(date.today() + timedelta(days=20))},
                 user_id=manager)
        if i == 0:
            rpc.call("payments", "mark_received", first["id"], {"amount": "150000.00"},
                     user_id=manager)
            rpc.call("deals", "change_status", deal["id"], "negotiation", user_id=manager)
        started = datetime.now(UTC) - timedelta(hours=i + 1)
        rpc.call("telephony", "record_call", _call(contacts[0][1], started, answered=i != 1))


def seed_leads(rpc: RpcClient, users: dict[str, int]) -> None:
    """The inbox: managers on duty, a website form, a lead from it and one from the API
    (whose phone matches a demo contact, so it shows a duplicate)."""
    rpc.call("intake", "set_settings", {"duty_user_ids": [users["anna"], users["ivan"]],
                                        "head_user_ids": [users["head"]],
                                        "admin_user_ids": [users["admin"]]})
    rpc.call("intake", "save_form", {
        "name": "Заявка с сайта", "min_fill_seconds": 3,
        "consent_text": "Я согласен на обработку персональных данных в соответствии с "
                        "152-ФЗ и политикой конфиденциальности.",
        "fields": [{"name": "name", "label": "Имя", "required": True},
                   {"name": "phone", "label": "Телефон", "type": "tel", "required": True},
                   {"name": "email", "label": "E-mail", "type": "email"},
                   {"name": "message", "label": "Сообщение", "type": "textarea"}]},
        user_id=users["admin"])
    key = rpc.call("intake", "create_api_key", "Маркетплейс (демо)", user_id=users["admin"])
    rpc.call("intake", "submit_api_lead", key["key"], {
        "external_id": "demo-1", "name": "Пётр Сидоров", "phone": "+7 916 123-45-67",
        "message": "Нужен ещё один комплект", "utm_source": "market"})
    rpc.call("intake", "submit_api_lead", key["key"], {
        "external_id": "demo-2", "name": "Наталья Громова", "company": "ООО «Восход»",
        "email": "natalia@voskhod.example", "message": "Пришлите прайс", "utm_source": "ya"})


def _call(number: str, started: datetime, answered: bool) -> dict[str, Any]:
    return {"direction": "inbound", "from": number, "to": "+74951234500",
            "started_at": started.isoformat(),
            "answered_at": (started + timedelta(seconds=5)).isoformat() if answered else None,
            "ended_at": (started + timedelta(seconds=185 if answered else 20)).isoformat(),
            "call_id": f"demo-{started.timestamp():.0f}"}


def seed(business: bool = True) -> None:
    config = load_component_config("gateway")
    engine = make_engine(config["DB_URL"], pool_size=1)
    try:
        with Session(engine) as db:
            # two `make run`s starting at once must not seed twice
            db.execute(text("SELECT pg_advisory_xact_lock(20261123)"))
            users = ensure_users(db)
            if not business or db.get(Setting, "demo_seeded") is not None:
                db.commit()
                return
            rpc = RpcClient(config["AMQP_URI"], timeout=10, name="demo")
            try:
                register_recipients(rpc, db, users)
                seed_business(rpc, users)
                seed_leads(rpc, users)
            finally:
                rpc.close()
            db.add(Setting(key="demo_seeded", value=True))
            db.commit()
            print("demo data created", flush=True)
    finally:
        engine.dispose()


if __name__ == "__main__":
    import sys

    # `python -m deploy.demo users`: only the demo users (the end-to-end tests make the rest)
    seed(business=sys.argv[1:] != ["users"])
