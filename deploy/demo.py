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
# the sales department of each demo user: the funnel's department slice
DEPARTMENTS = {"anna": "Москва", "ivan": "Санкт-Петербург", "head": "Москва"}
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
        if user.department is None and username in DEPARTMENTS:
            user.department = DEPARTMENTS[username]
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


# A small catalogue for the calculator's picker and the BCG matrix's product lines.
DEMO_PRODUCTS = [
    {"name": "Токарный станок 16К20", "article": "ST-16K20", "price": "1250000.00",
     "vat_rate": "22", "product_line": "Станки"},
    {"name": "Фрезерный станок 6Р13", "article": "ST-6R13", "price": "980000.00",
     "vat_rate": "22", "product_line": "Станки"},
    {"name": "Фреза торцевая 100 мм", "article": "TL-F100", "price": "4500.00",
     "vat_rate": "22", "product_line": "Инструмент"},
    {"name": "Пусконаладка станка", "article": "SRV-PN", "price": "45000.00",
     "vat_rate": "22", "product_line": "Сервис", "kind": "service", "unit": "усл."},
]


def seed_business(rpc: RpcClient, users: dict[str, int]) -> None:
    managers = [users["anna"], users["ivan"]]
    rpc.call("documents", "save_company", DEMO_COMPANY, user_id=users["admin"])
    for product in DEMO_PRODUCTS:
        rpc.call("deals", "save_product", product, user_id=users["admin"])
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


FUNNEL_DEALS = 300
FUNNEL_DAYS = 180
FUNNEL_CLIENTS = ("ООО «Вектор»", "АО «Полюс»", "ООО «Гранит»", "ООО «Орбита»",
                  "АО «Техносервис»", "ООО «Меридиан»", "ООО «Сфера»", "АО «Волга-Трейд»")
PROJECT_STAGES = (("request", "Заявка", "new"), ("brief", "Бриф", "qualification"),
                  ("estimate", "Смета", "proposal"), ("agreement", "Договор", "contract"),
                  ("delivered", "Сдан", "won"), ("refused", "Отказ", "lost"))


def _funnel_types(rpc: RpcClient) -> list[dict[str, Any]]:
    """The seeded types plus a service contract (simple) and a project with its own
    stages, so the funnel shows several processes mapped to the common statuses."""
    statuses = {s["code"]: s["id"] for s in rpc.call("deals", "list_statuses")}
    names = {t["name"] for t in rpc.call("deals", "list_deal_types")}
    if "Сервисный контракт" not in names:
        rpc.call("deals", "save_deal_type", {"name": "Сервисный контракт", "simple": True,
                                             "stages": []})
    if "Проект" not in names:
        rpc.call("deals", "save_deal_type", {"name": "Проект", "simple": False, "stages": [
            {"code": c, "name": n, "status_id": statuses[s], "tasks": [], "rules": [],
             "documents": []} for c, n, s in PROJECT_STAGES]})
    return list(rpc.call("deals", "list_deal_types"))


def _walk(rpc: RpcClient, deal: dict[str, Any], deal_type: dict[str, Any],
          statuses: list[dict[str, Any]], rng: Any, reasons: list[int], user: int) -> None:
    """Move a deal forward a random way (sometimes one step back and on again), then
    maybe lose it with a reason, as people do on the board."""
    stages = [s for s in deal_type["stages"] if s["status"] != "lost"]
    steps = [s["code"] for s in stages] if stages else \
        [s["code"] for s in statuses if s["kind"] != "lost"]
    lost = next((s["code"] for s in deal_type["stages"] if s["status"] == "lost"), "lost")
    method = "change_stage" if stages else "change_status"
    depth = rng.choices(range(1, len(steps)), weights=[30, 22, 16, 12, 9, 11][:len(steps) - 1])[0]
    for i in range(1, depth + 1):
        rpc.call("deals", method, deal["id"], steps[i], user_id=user)
        if i == 2 and rng.random() < 0.15:  # back to the previous step and on again
            rpc.call("deals", method, deal["id"], steps[1], user_id=user)
            rpc.call("deals", method, deal["id"], steps[2], user_id=user)
    if depth < len(steps) - 1 and rng.random() < 0.55:
        rpc.call("deals", method, deal["id"], lost, user_id=user,
                 loss_reason_id=rng.choice(reasons))


def seed_funnel(rpc: RpcClient, users: dict[str, int]) -> list[int]:
    """A few hundred deals of several types over half a year, won, lost and open."""
    import random

    rng = random.Random(2026)
    managers = [users["anna"], users["ivan"], users["head"]]
    clients = [rpc.call("clients", "create_client", {"kind": "person", "name": name,
                                                     "source": "demo"},
                        user_id=managers[i % 2])["id"] for i, name in enumerate(FUNNEL_CLIENTS)]
    types = _funnel_types(rpc)
    statuses = rpc.call("deals", "list_statuses")
    reasons = [r["id"] for r in rpc.call("deals", "list_loss_reasons")]
    made = []
    for n in range(FUNNEL_DEALS):
        deal_type = rng.choice(types)
        user = rng.choices(managers, weights=[5, 4, 1])[0]
        deal = rpc.call("deals", "create_deal", {
            "name": f"{deal_type['name']} №{n + 1}", "client_id": rng.choice(clients),
            "type_id": deal_type["id"], "manager_id": user,
            "expected_amount": f"{rng.randrange(40, 2500) * 1000}.00"}, user_id=user)
        _walk(rpc, deal, deal_type, statuses, rng, reasons, user)
        made.append(deal["id"])
    return made


def backdate(deal_ids: list[int]) -> None:
    """Spread the demo deals over the last months: each deal's creation and moves are
    moved back in time (a demo can wait no months), keeping their order."""
    import random

    rng = random.Random(7)
    engine = make_engine(load_component_config("deals")["DB_URL"], pool_size=1)
    try:
        with engine.begin() as conn:
            for deal_id in deal_ids:
                # the moves keep their order and share of the deal's life, ending in the past
                conn.execute(text(
                    "WITH moves AS (SELECT id, dense_rank() OVER (ORDER BY changed_at) - 1 AS n"
                    " FROM deal_history WHERE deal_id = :id), last AS (SELECT max(n) AS top"
                    " FROM moves) "
                    "UPDATE deal_history h SET changed_at = now() - make_interval(days => :age)"
                    " + make_interval(days => :age) * (:share * moves.n / (last.top + 1.0))"
                    " FROM moves, last WHERE h.id = moves.id"),
                    {"id": deal_id, "age": rng.randrange(5, FUNNEL_DAYS),
                     "share": rng.uniform(0.2, 0.9)})
                conn.execute(text(
                    "UPDATE deals d SET created_at = (SELECT min(changed_at) FROM deal_history"
                    " WHERE deal_id = d.id), closed_at = CASE WHEN closed_at IS NULL THEN NULL"
                    " ELSE (SELECT max(changed_at) FROM deal_history WHERE deal_id = d.id) END"
                    " WHERE id = :id"), {"id": deal_id})
    finally:
        engine.dispose()


def rebuild_funnel(rpc: RpcClient) -> None:
    """The analytics read model replays the (backdated) history of the deals."""
    from sqlalchemy.orm import sessionmaker

    from services.analytics.rebuild import rebuild

    engine = make_engine(load_component_config("analytics")["DB_URL"], pool_size=1)
    try:
        rebuild(rpc.call, sessionmaker(engine))
    finally:
        engine.dispose()


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
                backdate(seed_funnel(rpc, users))
                rebuild_funnel(rpc)
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
