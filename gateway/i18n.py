"""UI strings: Russian by default, English on request (U3).

Section names ("Сделки", "Клиенты", ...) can be renamed by an administrator; the stored
names override these defaults (see ``gateway.sections_names``)."""
from __future__ import annotations

LANGUAGES = ("ru", "en")

STRINGS: dict[str, dict[str, str]] = {
    "ru": {
        "app": "CRM", "login": "Вход", "logout": "Выйти", "username": "Логин",
        "password": "Пароль", "sign_in": "Войти", "bad_login": "Неверный логин или пароль",
        "too_many": "Слишком много попыток входа. Попробуйте через {minutes} мин.",
        "section.deals": "Сделки", "section.clients": "Клиенты", "section.payments": "Платежи",
        "section.notifications": "Уведомления", "deal": "Сделка", "client": "Клиент",
        "status": "Статус", "manager": "Менеджер", "amount": "Сумма", "name": "Название",
        "inn": "ИНН", "contacts": "Контакты", "phone": "Телефон", "payments": "Платежи",
        "calls": "Звонки", "feed": "Лента", "unavailable": "Сейчас недоступно",
        "new_deal": "Новая сделка", "new_client": "Новый клиент", "create": "Создать",
        "save": "Сохранить", "search": "Поиск", "due_date": "Срок", "received": "Получено",
        "outstanding": "Остаток", "budget": "Бюджет", "paid": "Оплачено",
        "add_payment": "Добавить платёж", "mark_received": "Отметить оплату",
        "no_items": "Пока ничего нет", "main": "основной", "change_status": "Сменить статус",
        "notifications_empty": "Новых уведомлений нет", "mark_all_read": "Прочитать все",
        "add_contact": "Добавить контакт", "contact_name": "Имя контакта",
        "position": "Должность", "address": "Адрес", "website": "Сайт",
        "inbound": "Входящий", "outbound": "Исходящий", "missed": "пропущен",
        "receipt": "Поступление", "duration": "Длительность", "client_name": "Клиент",
        "deals_of_client": "Сделки клиента", "health": "Состояние", "language": "English",
        "error": "Ошибка", "not_found": "Не найдено", "overdue": "Просрочен",
        "planned": "Запланирован", "partial": "Частично", "paid_status": "Оплачен",
        "menu": "Меню", "skip_to_content": "К содержанию",
        "inline.saved": "Сохранено", "inline.failed": "Не удалось сохранить",
        "inline.hint": "Нажмите, чтобы изменить",
    },
    "en": {
        "app": "CRM", "login": "Sign in", "logout": "Sign out", "username": "Username",
        "password": "Password", "sign_in": "Sign in", "bad_login": "Wrong username or password",
        "too_many": "Too many sign-in attempts. Try again in {minutes} min.",
        "section.deals": "Deals", "section.clients": "Clients", "section.payments": "Payments",
        "section.notifications": "Notifications", "deal": "Deal", "client": "Client",
        "status": "Status", "manager": "Manager", "amount": "Amount", "name": "Name",
        "inn": "INN", "contacts": "Contacts", "phone": "Phone", "payments": "Payments",
        "calls": "Calls", "feed": "Feed", "unavailable": "Unavailable right now",
        "new_deal": "New deal", "new_client": "New client", "create": "Create",
        "save": "Save", "search": "Search", "due_date": "Due", "received": "Received",
        "outstanding": "Outstanding", "budget": "Budget", "paid": "Paid",
        "add_payment": "Add payment", "mark_received": "Mark received",
        "no_items": "Nothing yet", "main": "main", "change_status": "Change status",
        "notifications_empty": "No new notifications", "mark_all_read": "Mark all read",
        "add_contact": "Add contact", "contact_name": "Contact name",
        "position": "Position", "address": "Address", "website": "Website",
        "inbound": "Inbound", "outbound": "Outbound", "missed": "missed",
        "receipt": "Receipt", "duration": "Duration", "client_name": "Client",
        "deals_of_client": "Deals of this client", "health": "Health", "language": "Русский",
        "error": "Error", "not_found": "Not found", "overdue": "Overdue",
        "planned": "Planned", "partial": "Partial", "paid_status": "Paid",
        "menu": "Menu", "skip_to_content": "Skip to content",
        "inline.saved": "Saved", "inline.failed": "Could not save",
        "inline.hint": "Click to change",
    },
}


def extend(strings: dict[str, dict[str, str]]) -> None:
    """A section adds its own strings (``{"ru": {...}, "en": {...}}``) at import."""
    for lang, table in strings.items():
        STRINGS.setdefault(lang, {}).update(table)


def translate(lang: str, key: str, **params: object) -> str:
    text = _renamed_section(lang, key) or STRINGS.get(lang, STRINGS["ru"]).get(key) or \
        STRINGS["ru"].get(key) or key
    return text.format(**params) if params else text


def _renamed_section(lang: str, key: str) -> str | None:
    if not key.startswith("section."):
        return None
    from gateway.sections_names import renamed  # it reads the settings table

    return renamed(lang, key[len("section."):])
