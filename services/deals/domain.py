"""Pure rules of deals: no nameko, no SQL.

Input checks name the wrong field; process rules (which stage a deal may move to, which
tasks a stage creates, which rules move it on) work on plain values, so every rule here is
testable in microseconds."""
from __future__ import annotations

import hashlib
import re
from calendar import monthrange
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Protocol

from services.kit import parse
from services.kit.errors import ValidationError
from services.kit.money import CENT, parse_money
from services.kit.parse import identifier

STATUS_KINDS = ("open", "won", "lost")
PARTY_ROLES = ("competitor", "subcontractor", "influencer")
ORDER_STATUSES = ("new", "confirmed", "shipped", "done", "cancelled")
LINE_KINDS = ("goods", "service")
RULE_TRIGGERS = ("fully_paid", "payment_received", "tasks_done")
DEAL_FIELDS = ("name", "client_id", "manager_id", "type_id", "expected_amount", "probability",
               "planned_close_on")
# how a deal arrived; set once by create_deal (intake passes the lead's channel)
SOURCES = ("manual", "web_form", "api", "email", "call", "questionnaire")
SOURCE_DETAIL_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
                      "page_url", "referrer", "form_id", "lead_id")
SOURCE_DETAIL_LIMIT = 500
# history fields from which a deal's path can be replayed (deals_with_history)
REPLAYED_FIELDS = ("status", "stage", "loss_reason", "manager_id", "type_id", "client_id",
                   "amount")
NAME_LIMIT = 500
TEXT_LIMIT = 10_000
MAX_LINES = 500
MAX_ATTACHMENTS = 20
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
ZERO = Decimal("0.00")


# ------------------------------------------------------------------------ small parsers

def text(value: object, field: str, *, required: bool = True, limit: int = NAME_LIMIT) -> str:
    return parse.text(value, field, required=required, limit=limit)


# ids, dates and date-times are parsed as everywhere else (``services.kit.parse``).
def parse_day(value: object, field: str, *, required: bool = True) -> date | None:
    return parse.day(value, field, required=required)


def parse_moment(value: object, field: str, default_tz: tzinfo) -> datetime:
    """An ISO date-time; one without an offset (an HTML datetime-local) is in ``default_tz``."""
    return parse.moment(value, field, default_tz)


def parse_decimal(value: object, field: str, places: int, *, minimum: Decimal | None = None,
                  maximum: Decimal | None = None) -> Decimal:
    """A non-money decimal (quantity, percent); floats refused as in ``parse_money``."""
    if isinstance(value, (bool, float)) or value is None or value == "":
        raise ValidationError(f"{field}: expected a number as text or integer", field=field,
                              key="deal.number_expected")
    try:
        number = Decimal(str(value).strip().replace(" ", "").replace(",", "."))
    except InvalidOperation:
        raise ValidationError(f"{field}: '{value}' is not a number", field=field,
                              key="deal.number_invalid",
                              params={"value": parse.shown(value)}) from None
    if not number.is_finite() or number != number.quantize(Decimal(1).scaleb(-places)):
        raise ValidationError(f"{field}: at most {places} decimal places", field=field,
                              key="deal.number_places", params={"places": places})
    if minimum is not None and number < minimum:
        raise ValidationError(f"{field}: must be at least {minimum}", field=field,
                              key="number.min", params={"min": str(minimum)})
    if maximum is not None and number > maximum:
        raise ValidationError(f"{field}: must be at most {maximum}", field=field,
                              key="number.max", params={"max": str(maximum)})
    return number


def _mapping(data: object, field: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValidationError(f"{field}: expected an object of fields", field=field,
                              key="object.invalid")
    return data


def _not_one_of(value: object, field: str, options: Sequence[str]) -> ValidationError:
    return ValidationError(f"{field}: one of {', '.join(options)}", field=field,
                           key="choice.invalid",
                           params={"value": parse.shown(value), "options": ", ".join(options)})


def _bad_code(field: str) -> ValidationError:
    return ValidationError(f"{field}: lower-case latin letters, digits and _", field=field,
                           key="code.invalid")


# ------------------------------------------------------------------------------ deals

def validate_new_deal(data: object) -> dict[str, Any]:
    fields = _mapping(data, "deal")
    return {"name": text(fields.get("name"), "name"),
            "client_id": identifier(fields.get("client_id"), "client_id"),
            "manager_id": identifier(fields.get("manager_id"), "manager_id", required=False),
            "type_id": identifier(fields.get("type_id"), "type_id", required=False),
            "status": fields.get("status") or None,
            "expected_amount": (parse_money(fields["expected_amount"], "expected_amount")
                                if fields.get("expected_amount") not in (None, "") else None),
            "planned_close_on": parse_day(fields.get("planned_close_on"), "planned_close_on",
                                          required=False),
            "source": parse.choice(fields.get("source"), "source", SOURCES, default="manual"),
            "source_detail": source_detail(fields.get("source_detail"))}


def source_detail(value: object) -> dict[str, str] | None:
    """The arrival's detail: only the known keys, each a text of at most 500 characters;
    empty values are dropped, and nothing left is ``None``."""
    if value is None or value == {}:
        return None
    detail = _mapping(value, "source_detail")
    unknown = sorted(set(detail) - set(SOURCE_DETAIL_KEYS))
    if unknown:
        raise ValidationError(f"source_detail.{unknown[0]}: unknown key",
                              field=f"source_detail.{unknown[0]}",
                              key="deal.source_detail_unknown", params={"key": unknown[0]})
    cleaned: dict[str, str] = {}
    for key in SOURCE_DETAIL_KEYS:
        raw = detail.get(key)
        if raw is None or raw == "":
            continue
        value_text = text(raw, f"source_detail.{key}", required=False,
                          limit=SOURCE_DETAIL_LIMIT)
        if value_text:
            cleaned[key] = value_text
    return cleaned or None


def validate_deal_changes(data: object) -> dict[str, Any]:
    """The editable fields present in ``data``, checked; unknown fields are refused so a
    typo never silently does nothing."""
    fields = _mapping(data, "changes")
    unknown = sorted(set(fields) - set(DEAL_FIELDS))
    if unknown:
        raise ValidationError(f"{unknown[0]}: this field cannot be changed here",
                              field=unknown[0], key="deal.field_fixed",
                              params={"field": unknown[0]})
    cleaned: dict[str, Any] = {}
    if "name" in fields:
        cleaned["name"] = text(fields["name"], "name")
    if "client_id" in fields:
        cleaned["client_id"] = identifier(fields["client_id"], "client_id")
    if "manager_id" in fields:
        cleaned["manager_id"] = identifier(fields["manager_id"], "manager_id")
    if "type_id" in fields:
        cleaned["type_id"] = identifier(fields["type_id"], "type_id", required=False)
    if "expected_amount" in fields:
        cleaned["expected_amount"] = parse_money(fields["expected_amount"] or "0",
                                                 "expected_amount")
    if "probability" in fields:
        cleaned["probability"] = manual_probability(fields["probability"])
    if "planned_close_on" in fields:
        cleaned["planned_close_on"] = parse_day(fields["planned_close_on"], "planned_close_on",
                                                required=False)
    return cleaned


def manual_probability(value: object) -> int | None:
    """A win probability set by hand: a whole percent 0–100, or empty to clear it (the
    analytics estimate is then the only figure)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    raw = str(value).strip().removesuffix("%").strip()
    if isinstance(value, bool) or not raw.isdigit() or int(raw) > 100:
        raise ValidationError(f"«{str(value)[:40]}» — не вероятность: нужно целое число"
                              " от 0 до 100.", field="probability", key="probability.invalid",
                              params={"value": str(value)[:40]})
    return int(raw)


def changes_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """``{field: {"from": old, "to": new}}`` for every field whose value differs."""
    return {k: {"from": before.get(k), "to": v} for k, v in after.items()
            if before.get(k) != v}


def effective_amount(expected: Decimal, budget: Decimal, has_plan: bool) -> Decimal:
    """The deal's amount on cards and in sums: its payment plan once it has one (P2),
    before that the expected amount (calculator or typed in)."""
    return budget if has_plan else expected


def copied_contacts(client_contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """D7: a new deal starts with copies of the client's contacts; the first is main."""
    return [contact_copy(c, is_main=i == 0) for i, c in enumerate(client_contacts)]


def contact_copy(contact: Mapping[str, Any], is_main: bool) -> dict[str, Any]:
    return {"contact_id": int(contact["id"]), "name": str(contact["name"]),
            "position": contact.get("position") or None,
            "phones": ", ".join(contact.get("phones") or []),
            "emails": ", ".join(contact.get("emails") or []), "is_main": is_main}


def check_version(current: int, expected: int | None) -> bool:
    """A write that names a version must be based on the current one (no silent overwrite)."""
    return expected is None or int(expected) == current


# --------------------------------------------------------------------- reference lists

def validate_status(data: object) -> dict[str, Any]:
    fields = _mapping(data, "status")
    cleaned: dict[str, Any] = {"name": text(fields.get("name"), "name", limit=200)}
    color = fields.get("color") or "#9aa5b1"
    if not isinstance(color, str) or not _COLOR.match(color):
        raise ValidationError("color: a colour like #16a34a", field="color",
                              key="status.color")
    cleaned["color"] = color.lower()
    kind = fields.get("kind") or "open"
    if kind not in STATUS_KINDS:
        raise _not_one_of(kind, "kind", STATUS_KINDS)
    cleaned["kind"] = kind
    code = fields.get("code")
    if code not in (None, ""):
        if not isinstance(code, str) or not _CODE.match(code):
            raise _bad_code("code")
        cleaned["code"] = code
    return cleaned


def order_before_closed(statuses: Sequence[tuple[int, str]], new_id: int) -> list[int] | None:
    """The order (``(id, kind)`` by position) that puts the new open status ``new_id`` right
    before the won and lost ones, since a pipeline ends with its outcomes; ``None`` when it
    stands right already or is itself an outcome."""
    ids = [status_id for status_id, _ in statuses]
    kinds = dict(statuses)
    if kinds.get(new_id) != "open":
        return None
    rest = [(i, k) for i, k in statuses if i != new_id]
    first_closed = next((n for n, (_, k) in enumerate(rest) if k in ("won", "lost")), len(rest))
    order = [i for i, _ in rest]
    order.insert(first_closed, new_id)
    return None if order == ids else order


def check_status_removal(kind: str, same_kind_left: int, deals_using: int,
                         stages_using: int) -> None:
    """A status in use is never deleted (no deal may lose its column), and the funnel
    always keeps at least one status of each kind."""
    if deals_using:
        raise ValidationError(f"status: {deals_using} deal(s) are in this status; move them "
                              "first", field="status", key="status.in_use",
                              params={"deals": deals_using})
    if stages_using:
        raise ValidationError("status: stages of deal types map to this status", field="status",
                              key="status.in_process")
    if same_kind_left < 1:
        raise ValidationError(f"kind: the last '{kind}' status cannot be deleted", field="kind",
                              key="status.last_of_kind", params={"kind": kind})


def check_order(ids: Sequence[object], existing: Iterable[int], field: str = "order") -> list[int]:
    """A new order must name every existing item exactly once."""
    wanted = [identifier(i, field) for i in ids]
    if sorted(w for w in wanted if w is not None) != sorted(existing):
        raise ValidationError(f"{field}: name every item exactly once", field=field,
                              key="order.every_once")
    return [int(w) for w in wanted if w is not None]


# ---------------------------------------------------------------- deal types, processes

@dataclass(frozen=True)
class Stage:
    id: int
    code: str
    name: str
    position: int
    status_id: int
    status_kind: str = "open"
    tasks: tuple[Mapping[str, Any], ...] = ()
    rules: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Process:
    """A deal type's business process: its stages in order.  ``simple``: moved by hand,
    any stage to any stage."""

    stages: tuple[Stage, ...] = ()
    simple: bool = True

    def stage(self, stage_id: int | None) -> Stage | None:
        return next((s for s in self.stages if s.id == stage_id), None)

    def by_code(self, code: str) -> Stage | None:
        return next((s for s in self.stages if s.code == code), None)

    def index(self, stage: Stage) -> int:
        return self.stages.index(stage)


def validate_task_template(task: object, field: str) -> dict[str, Any]:
    data = _mapping(task, field)
    assignee = data.get("assignee") or "manager"
    if not isinstance(assignee, str) or not (assignee == "manager"
                                             or assignee.startswith("role:")
                                             or assignee.startswith("user:")):
        raise ValidationError(f"{field}.assignee: 'manager', 'role:<role>' or 'user:<id>'",
                              field=f"{field}.assignee", key="task.assignee")
    if assignee.startswith("user:"):
        identifier(assignee[5:], f"{field}.assignee")
    hours = parse_decimal(data.get("due_hours", 24), f"{field}.due_hours", 1,
                          minimum=Decimal(0), maximum=Decimal(24 * 365))
    return {"text": text(data.get("text"), f"{field}.text"), "assignee": assignee,
            "due_hours": str(hours)}


def validate_rule(rule: object, field: str) -> dict[str, Any]:
    data = _mapping(rule, field)
    if data.get("on") not in RULE_TRIGGERS:
        raise _not_one_of(data.get("on"), f"{field}.on", RULE_TRIGGERS)
    return {"on": data["on"], "to_stage": text(data.get("to_stage"), f"{field}.to_stage",
                                                  limit=50)}


def validate_document(doc: object, field: str) -> dict[str, str]:
    data = _mapping(doc, field)
    url = text(data.get("url"), f"{field}.url", limit=2000)
    if not (url.startswith("https://") or url.startswith("http://") or url.startswith("/")):
        raise ValidationError(f"{field}.url: an http(s) link or a path on this site",
                              field=f"{field}.url", key="document.url")
    return {"title": text(data.get("title"), f"{field}.title", limit=300), "url": url}


def validate_deal_type(data: object, status_kinds: Mapping[int, str]) -> dict[str, Any]:
    """A deal type with its process.  ``status_kinds``: the statuses stages may map to."""
    fields = _mapping(data, "deal_type")
    raw_stages = fields.get("stages") or []
    if not isinstance(raw_stages, list):
        raise ValidationError("stages: expected a list", field="stages", key="list.invalid")
    stages: list[dict[str, Any]] = []
    for i, raw in enumerate(raw_stages):
        f = f"stages.{i}"
        stage = _mapping(raw, f)
        code = stage.get("code") or f"stage_{i + 1}"
        if not isinstance(code, str) or not _CODE.match(code):
            raise _bad_code(f"{f}.code")
        status_id = identifier(stage.get("status_id"), f"{f}.status_id")
        if status_id not in status_kinds:
            raise ValidationError(f"{f}.status_id: no such status", field=f"{f}.status_id",
                                  key="stage.status_unknown",
                                  params={"status_id": status_id})
        stages.append({
            "id": identifier(stage.get("id"), f"{f}.id", required=False), "code": code,
            "name": text(stage.get("name"), f"{f}.name", limit=200), "position": i,
            "status_id": status_id,
            "tasks": [validate_task_template(t, f"{f}.tasks.{j}")
                      for j, t in enumerate(_list(stage.get("tasks"), f"{f}.tasks"))],
            "rules": [validate_rule(r, f"{f}.rules.{j}")
                      for j, r in enumerate(_list(stage.get("rules"), f"{f}.rules"))],
            "documents": [validate_document(d, f"{f}.documents.{j}")
                          for j, d in enumerate(_list(stage.get("documents"),
                                                      f"{f}.documents"))]})
    codes = [s["code"] for s in stages]
    if len(set(codes)) != len(codes):
        raise ValidationError("stages: two stages have the same code", field="stages",
                              key="deal_type.codes_twice")
    status_of = {s["code"]: int(s["status_id"]) for s in stages}
    for i, spec in enumerate(stages):
        for j, rule in enumerate(spec["rules"]):
            if rule["to_stage"] not in codes:
                raise ValidationError(f"stages.{i}.rules.{j}.to_stage: no stage with code "
                                      f"'{rule['to_stage']}'",
                                      field=f"stages.{i}.rules.{j}.to_stage",
                                      key="rule.stage_unknown",
                                      params={"stage": rule["to_stage"]})
            if status_kinds[status_of[rule["to_stage"]]] == "lost":
                raise ValidationError(f"stages.{i}.rules.{j}.to_stage: a rule cannot lose a "
                                      "deal (a loss needs a reason)",
                                      field=f"stages.{i}.rules.{j}.to_stage",
                                      key="rule.to_lost")
    simple = fields.get("simple", not stages)
    if not simple and not stages:
        raise ValidationError("stages: a process needs at least one stage", field="stages",
                              key="deal_type.no_stages")
    return {"name": text(fields.get("name"), "name", limit=200), "simple": bool(simple),
            "description": text(fields.get("description"), "description", required=False,
                                limit=TEXT_LIMIT),
            "documents": [validate_document(d, f"documents.{j}")
                          for j, d in enumerate(_list(fields.get("documents"), "documents"))],
            "stages": stages}


def _list(value: object, field: str) -> list[Any]:
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise ValidationError(f"{field}: expected a list", field=field, key="list.invalid")
    return value


class MoveRefused(ValidationError):
    """The deal's process does not allow this move."""


def stage_for_status(process: Process, current: Stage | None, status_id: int,
                     status_name: str = "", field: str = "status") -> Stage | None:
    """The stage a deal enters when it is put into status ``status_id`` (a kanban drop).

    No process: no stage.  A status with several stages: the first of them in the
    direction of travel.  A status with no stage in this process: refused."""
    if not process.stages:
        return None
    candidates = [s for s in process.stages if s.status_id == status_id]
    if not candidates:
        raise MoveRefused(f"{field}: the process of this deal type has no stage in status "
                          f"'{status_name or status_id}'", field=field,
                          key="move.no_stage", params={"status": status_name or status_id})
    if current is not None and current in candidates:
        return current
    if current is not None and process.index(candidates[0]) < process.index(current):
        return candidates[-1]  # moving back: the nearest stage of that status
    return candidates[0]


def check_stage_move(process: Process, current: Stage | None, target: Stage) -> None:
    """A process moves one stage forward at a time, back to any earlier stage, or to a
    lost stage from anywhere; a simple type moves freely."""
    if process.simple or current is None or target == current:
        return
    if target.status_kind == "lost":
        return
    if current.status_kind != "open" and target.status_kind != "open":
        raise MoveRefused("status: reopen the deal before closing it another way",
                          field="status", key="move.reopen_first")
    step = process.index(target) - process.index(current)
    if step > 1:
        skipped = process.stages[process.index(current) + 1]
        raise MoveRefused(f"stage: the process goes through '{skipped.name}' first",
                          field="stage", next_stage=skipped.code, key="move.skips",
                          params={"stage": skipped.name})


def rule_target(process: Process, stage: Stage | None, trigger: str) -> Stage | None:
    """The stage a rule of the current stage moves the deal to when ``trigger`` happens."""
    if stage is None:
        return None
    for rule in stage.rules:
        if rule.get("on") == trigger:
            return process.by_code(str(rule.get("to_stage")))
    return None


@dataclass(frozen=True)
class TaskSpec:
    text: str
    due_at: datetime
    assignee_id: int | None
    assignee_role: str | None = None


def stage_tasks(stage: Stage, now: datetime, manager_id: int | None) -> list[TaskSpec]:
    """The tasks (reminders) entering ``stage`` creates, for the manager or a role."""
    specs = []
    for task in stage.tasks:
        assignee = str(task.get("assignee", "manager"))
        due = now + timedelta(hours=float(Decimal(str(task.get("due_hours", "24")))))
        if assignee.startswith("role:"):
            specs.append(TaskSpec(str(task["text"]), due, None, assignee[5:]))
        elif assignee.startswith("user:"):
            specs.append(TaskSpec(str(task["text"]), due, int(assignee[5:])))
        else:
            specs.append(TaskSpec(str(task["text"]), due, manager_id))
    return specs


def require_loss_reason(kind: str, reason_id: object, active_reasons: Iterable[int]) -> int | None:
    """A deal is lost only with a reason from the list (A6 counts them)."""
    if kind != "lost":
        return None
    reason = identifier(reason_id, "loss_reason_id", required=False)
    if reason is None:
        raise ValidationError("loss_reason_id: why was the deal lost?", field="loss_reason_id",
                              key="loss_reason.required")
    if reason not in set(active_reasons):
        raise ValidationError("loss_reason_id: no such loss reason", field="loss_reason_id",
                              key="loss_reason.unknown", params={"reason_id": reason})
    return reason


# ------------------------------------------------------------------------- reminders

def validate_reminder(data: object, default_tz: tzinfo, user_id: int | None) -> dict[str, Any]:
    fields = _mapping(data, "reminder")
    return {"text": text(fields.get("text"), "text", limit=2000),
            "due_at": parse_moment(fields.get("due_at"), "due_at", default_tz),
            "assignee_id": identifier(fields.get("assignee_id"), "assignee_id",
                                      required=False) or user_id}


def needs_call_back(call: Mapping[str, Any]) -> bool:
    """A missed inbound call from a known contact asks for a call back."""
    return (call.get("direction") == "inbound" and call.get("outcome") != "answered"
            and call.get("contact_id") is not None)


# -------------------------------------------------------------------- comments, files

def validate_comment(text_value: object, attachments: object) -> tuple[str, list[dict[str, Any]]]:
    body = text(text_value, "text", required=False, limit=TEXT_LIMIT)
    files = _list(attachments, "attachments")
    if len(files) > MAX_ATTACHMENTS:
        raise ValidationError(f"attachments: at most {MAX_ATTACHMENTS} files", field="attachments",
                              key="list.too_long", params={"max": MAX_ATTACHMENTS})
    cleaned = []
    for i, raw in enumerate(files):
        f = f"attachments.{i}"
        item = _mapping(raw, f)
        key = text(item.get("key"), f"{f}.key", limit=100)
        if not re.fullmatch(r"[0-9a-f]{32}", key):
            raise ValidationError(f"{f}.key: not a stored file", field=f"{f}.key",
                                  key="file.unknown")
        size = identifier(item.get("size"), f"{f}.size")
        cleaned.append({"key": key, "name": text(item.get("name"), f"{f}.name", limit=255),
                        "size": size,
                        "content_type": text(item.get("content_type"), f"{f}.content_type",
                                             limit=100)})
    if not body and not cleaned:
        raise ValidationError("text: write something or attach a file", field="text",
                              key="comment.empty")
    return body, cleaned


# ------------------------------------------------------ calculator and order line items

def validate_lines(lines: object, field: str = "lines") -> list[dict[str, Any]]:
    """Goods and services with quantity, unit price and discount (percent)."""
    items = _list(lines, field)
    if len(items) > MAX_LINES:
        raise ValidationError(f"{field}: at most {MAX_LINES} lines", field=field,
                              key="list.too_long", params={"max": MAX_LINES})
    cleaned = []
    for i, raw in enumerate(items):
        f = f"{field}.{i}"
        line = _mapping(raw, f)
        kind = line.get("kind") or "goods"
        if kind not in LINE_KINDS:
            raise _not_one_of(kind, f"{f}.kind", LINE_KINDS)
        quantity = parse_decimal(line.get("quantity", 1), f"{f}.quantity", 3,
                                 minimum=Decimal("0.001"), maximum=Decimal("999999999"))
        price = parse_money(line.get("unit_price"), f"{f}.unit_price")
        discount = parse_decimal(line.get("discount") or "0", f"{f}.discount", 2,
                                 minimum=Decimal(0), maximum=Decimal(100))
        cleaned.append({"kind": kind, "name": text(line.get("name"), f"{f}.name"),
                        "quantity": quantity, "unit_price": price, "discount": discount,
                        "amount": line_amount(quantity, price, discount),
                        # a catalogue item (checked and given its product line by the
                        # service); absent: a free-text line
                        "catalogue_id": identifier(line.get("catalogue_id"),
                                                   f"{f}.catalogue_id", required=False),
                        "product_line": None})
    return cleaned


def line_amount(quantity: Decimal, unit_price: Decimal, discount: Decimal) -> Decimal:
    gross = quantity * unit_price
    return (gross - gross * discount / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def lines_total(lines: Iterable[Mapping[str, Any]]) -> Decimal:
    return sum((Decimal(str(line["amount"])) for line in lines), ZERO)


def split_plan(total: Decimal, parts: int, first_due: date,
               months_between: int = 1) -> list[tuple[Decimal, date]]:
    """A payment plan of ``parts`` equal payments a month (or ``months_between``) apart;
    the cents that do not divide evenly go to the last payment, so the sum is exact."""
    if parts < 1 or parts > 120:
        raise ValidationError("parts: from 1 to 120 payments", field="parts",
                              key="plan.parts", params={"min": 1, "max": 120})
    if total <= ZERO:
        raise ValidationError("total: save a calculation with a positive total first",
                              field="total", key="plan.total")
    share = (total / parts).quantize(CENT, rounding="ROUND_DOWN")
    plan = [(share, _add_months(first_due, i * months_between)) for i in range(parts)]
    plan[-1] = (total - share * (parts - 1), plan[-1][1])
    return plan


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def validate_order(data: object, today: date) -> dict[str, Any]:
    fields = _mapping(data, "order")
    status = fields.get("status") or "new"
    if status not in ORDER_STATUSES:
        raise _not_one_of(status, "status", ORDER_STATUSES)
    lines = validate_lines(fields.get("lines"), "lines")
    if not lines:
        raise ValidationError("lines: an order needs at least one line", field="lines",
                              key="list.too_short", params={"min": 1})
    return {"order_date": parse_day(fields.get("order_date"), "order_date",
                                    required=False) or today,
            "status": status, "lines": lines, "amount": lines_total(lines),
            "comment": text(fields.get("comment"), "comment", required=False, limit=2000)}


def order_number(sequence: int, day: date) -> str:
    """Human order numbers: year and a sequence, "2026-000042"."""
    return f"{day.year}-{sequence:06d}"


# ------------------------------------------------------------------ deal environment

def validate_party(data: object) -> dict[str, Any]:
    fields = _mapping(data, "party")
    role = fields.get("role")
    if role not in PARTY_ROLES:
        raise _not_one_of(role, "role", PARTY_ROLES)
    client_id = identifier(fields.get("client_id"), "client_id", required=False)
    name = text(fields.get("name"), "name", required=client_id is None, limit=300)
    return {"role": role, "client_id": client_id, "name": name or None,
            "note": text(fields.get("note"), "note", required=False, limit=2000)}


# --------------------------------------------------------------------- list filters

@dataclass(frozen=True)
class DealFilter:
    """What the deals list and board show (D3).  ``None`` means "any"."""

    manager_id: int | None = None
    statuses: tuple[str, ...] = ()
    type_id: int | None = None
    client_id: int | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    created_from: date | None = None
    created_to: date | None = None
    closed_from: date | None = None
    closed_to: date | None = None
    has_task: bool | None = None
    q: str = ""
    client: str = ""


# the table's sortable columns ("status": the funnel's order; "manager": by manager id)
SORT_KEYS = ("name", "amount", "created_at", "updated_at", "planned_close_on", "status",
             "manager")


@dataclass(frozen=True)
class Sort:
    """A table order: ``key`` of SORT_KEYS, descending or not; ties go by id the same way,
    deals without a value (no planned close date, no manager) last."""

    key: str
    descending: bool = False


def parse_sort(value: object) -> Sort | None:
    """``"amount"`` ascending, ``"-amount"`` descending; empty: the default, newest first."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _not_one_of(value, "sort", SORT_KEYS)
    key = value.strip().removeprefix("-")
    if key not in SORT_KEYS:
        raise _not_one_of(value, "sort", SORT_KEYS)
    return Sort(key, value.strip().startswith("-"))


def parse_filter(data: object) -> DealFilter:
    fields = _mapping(data or {}, "filter")
    statuses = fields.get("statuses") or fields.get("status") or ()
    if isinstance(statuses, str):
        statuses = tuple(s for s in statuses.split(",") if s)
    has_task = fields.get("has_task")
    if isinstance(has_task, str):
        has_task = {"yes": True, "true": True, "1": True, "no": False, "false": False,
                    "0": False, "": None}.get(has_task.lower(), "bad")
    if has_task not in (True, False, None):
        raise ValidationError("has_task: yes or no", field="has_task", key="bool.invalid")
    amounts = {k: parse_money(fields[k], k) if fields.get(k) not in (None, "") else None
               for k in ("amount_min", "amount_max")}
    if amounts["amount_min"] is not None and amounts["amount_max"] is not None \
            and amounts["amount_min"] > amounts["amount_max"]:
        raise ValidationError("amount_max: less than the minimum", field="amount_max",
                              key="filter.amount_range")
    return DealFilter(
        manager_id=identifier(fields.get("manager_id"), "manager_id", required=False),
        statuses=tuple(str(s) for s in statuses),
        type_id=identifier(fields.get("type_id"), "type_id", required=False),
        client_id=identifier(fields.get("client_id"), "client_id", required=False),
        amount_min=amounts["amount_min"], amount_max=amounts["amount_max"],
        created_from=parse_day(fields.get("created_from"), "created_from", required=False),
        created_to=parse_day(fields.get("created_to"), "created_to", required=False),
        closed_from=parse_day(fields.get("closed_from"), "closed_from", required=False),
        closed_to=parse_day(fields.get("closed_to"), "closed_to", required=False),
        has_task=has_task,
        q=text(fields.get("q"), "q", required=False, limit=200),
        client=text(fields.get("client"), "client", required=False, limit=200))


# -- e-mail in the feed --------------------------------------------------------------

EMAIL_STATUSES = ("received", "queued", "sent", "failed")
EMAIL_TEXT_LIMIT = 100_000


def email_ref(message_id: str) -> str:
    """The feed line's key for a Message-ID (which may be longer than the column)."""
    return "mail:" + hashlib.sha256(message_id.strip().encode()).hexdigest()[:40]


def validate_email_line(mail: Any) -> dict[str, Any]:
    """``{message_id, direction (in|out), from, to, subject, text, html?, status?,
    attachments?}`` checked for the feed."""
    if not isinstance(mail, dict):
        raise ValidationError("mail: expected an object", field="mail", key="object.invalid")
    message_id = mail.get("message_id")
    if not isinstance(message_id, str) or not message_id.strip():
        raise ValidationError("message_id: required", field="message_id", key="required")
    direction = mail.get("direction")
    if direction not in ("in", "out"):
        raise _not_one_of(direction, "direction", ("in", "out"))
    status = mail.get("status") or ("received" if direction == "in" else "queued")
    if status not in EMAIL_STATUSES:
        raise _not_one_of(status, "status", EMAIL_STATUSES)
    texts = {}
    for key in ("from", "to", "subject", "text", "html"):
        value = mail.get(key) or ""
        if not isinstance(value, str):
            raise ValidationError(f"{key}: expected text", field=key, key="text.invalid")
        texts[key] = value[:EMAIL_TEXT_LIMIT]
    attachments = _files(mail.get("attachments") or [])
    return {"message_id": message_id.strip(), "text": texts["text"],
            "attachments": attachments,
            "data": {"direction": direction, "from": texts["from"][:320],
                     "to": texts["to"][:320], "subject": texts["subject"][:500],
                     "html": texts["html"], "message_id": message_id.strip()[:998],
                     "status": status}}


def _files(files: Any) -> list[dict[str, Any]]:
    if not isinstance(files, list) or not all(
            isinstance(f, dict) and isinstance(f.get("key"), str) for f in files):
        raise ValidationError("attachments: a list of stored files", field="attachments",
                              key="file.unknown")
    return [{"key": f["key"], "name": str(f.get("name") or "file")[:255],
             "size": int(f.get("size") or 0),
             "content_type": str(f.get("content_type") or "application/octet-stream")}
            for f in files]


def validate_lead_line(lead: Any) -> dict[str, Any]:
    """An inbox entry for the feed: ``{id, source, source_name, name, phone, email,
    company, message, utm, page_url, attachments}``."""
    if not isinstance(lead, dict) or not isinstance(lead.get("id"), int):
        raise ValidationError("lead: expected an inbox entry with its id", field="lead",
                              key="object.invalid")
    data: dict[str, Any] = {key: str(lead.get(key) or "")[:2000] for key in (
        "source", "source_name", "name", "phone", "email", "company", "page_url")}
    data["utm"] = {str(k)[:50]: str(v)[:200] for k, v in (lead.get("utm") or {}).items()}
    data["lead_id"] = lead["id"]
    return {"lead_id": lead["id"], "text": str(lead.get("message") or "")[:EMAIL_TEXT_LIMIT],
            "data": data, "attachments": _files(lead.get("attachments") or [])}


# ------------------------------------------------------------ moving and editing a deal
# The rules of service.py's writes as pure functions: the service loads the rows, asks
# one of these what changes, then applies the answer and emits its events.

CALL_BACK_TEXT = "Перезвонить: {number} (пропущенный звонок)"


def call_back_text(number: str) -> str:
    """The text of the task a missed call from a deal's contact creates (UI text, ru)."""
    return CALL_BACK_TEXT.format(number=number)


class DealFacts(Protocol):
    """What the rules read of a deal (the ORM row satisfies it; tests pass a dataclass)."""

    id: int
    name: str
    client_id: int
    client_name: str
    manager_id: int | None
    type_id: int | None
    amount: Decimal
    currency: str
    version: int
    created_at: datetime
    loss_reason_id: int | None


@dataclass(frozen=True)
class StatusRef:
    id: int
    code: str
    kind: str


@dataclass(frozen=True)
class StageRef:
    id: int
    code: str


@dataclass(frozen=True)
class Reason:
    id: int
    name: str


@dataclass(frozen=True)
class Move:
    """What putting a deal into a status/stage does: the fields to set on it (``version``
    included), history rows ``(field, old, new)`` in order, whether the new stage is
    entered (its tasks are created) and the events to emit, in order."""

    fields: dict[str, Any]
    history: list[tuple[str, Any, Any]]
    enters_stage: bool
    events: list[tuple[str, dict[str, Any]]]


def _code(ref: StageRef | None) -> str | None:
    return ref.code if ref else None


def move(deal: DealFacts, old_status: StatusRef, old_stage: StageRef | None,
         status: StatusRef, stage: StageRef | None, *, user_id: int | None, now: datetime,
         reason: Reason | None = None, comment: str | None = None,
         by_rule: str | None = None) -> Move | None:
    """The status state machine (D4, D5): ``None`` when nothing moves (nothing recorded).
    Closing stamps ``closed_at`` (reopening clears it; won -> lost re-stamps it), a lost
    deal keeps its reason, any other status drops it; ``deal_won``/``deal_lost`` only on
    entering that kind."""
    stage_id = stage.id if stage else None
    old_stage_id = old_stage.id if old_stage else None
    if old_status.id == status.id and stage_id == old_stage_id:
        return None
    fields: dict[str, Any] = {}
    history: list[tuple[str, Any, Any]] = []
    if old_status.id != status.id:
        history.append(("status", old_status.code, status.code))
    enters = stage_id != old_stage_id
    if enters:
        history.append(("stage", _code(old_stage), _code(stage)))
    if status.kind == "open":
        fields["closed_at"] = None
    elif old_status.kind == "open" or old_status.kind != status.kind:
        fields["closed_at"] = now
    if status.kind == "lost":
        fields["loss_reason_id"] = reason.id if reason else None
        fields["loss_comment"] = comment
        history.append(("loss_reason", None, reason.name if reason else None))
    elif deal.loss_reason_id is not None:
        fields["loss_reason_id"] = fields["loss_comment"] = None
    fields["version"] = deal.version + 1
    fields["updated_by"] = user_id
    payload = {"deal_id": deal.id, "name": deal.name, "client_id": deal.client_id,
               "client_name": deal.client_name,
               "manager_id": deal.manager_id, "type_id": deal.type_id,
               "from_status": old_status.code, "to_status": status.code,
               "to_status_kind": status.kind,
               "from_stage": _code(old_stage), "to_stage": _code(stage),
               "amount": deal.amount, "currency": deal.currency, "user_id": user_id,
               "by_rule": by_rule,
               # analytics orders a deal's events by version and keeps the reason with
               # the transition, so a late or replayed event changes nothing
               "version": fields["version"], "changed_at": now,
               "created_at": deal.created_at,
               "loss_reason_id": reason.id if reason else None,
               "loss_reason": reason.name if reason else None}
    events: list[tuple[str, dict[str, Any]]] = [("deal_status_changed", payload)]
    if status.kind == "won" and old_status.kind != "won":
        events.append(("deal_won", {**payload, "status": status.code}))
    if status.kind == "lost" and old_status.kind != "lost":
        events.append(("deal_lost", {**payload, "status": status.code,
                                     "reason_id": reason.id if reason else None,
                                     "reason": reason.name if reason else None,
                                     "comment": comment}))
    return Move(fields, history, enters, events)


def editable_fields(deal: DealFacts, expected_amount: Decimal) -> dict[str, Any]:
    """The fields ``update_deal`` may change, as they are now."""
    return {"name": deal.name, "client_id": deal.client_id, "manager_id": deal.manager_id,
            "type_id": deal.type_id, "expected_amount": expected_amount,
            "probability": getattr(deal, "probability", None),
            "planned_close_on": getattr(deal, "planned_close_on", None)}


@dataclass(frozen=True)
class Edit:
    """An accepted edit: ``fields`` to set on the deal (``version`` included), ``changes``
    ``{field: {"from", "to"}}`` for the history and the event, ``enters_stage`` when a new
    type puts the deal into another stage."""

    fields: dict[str, Any]
    changes: dict[str, dict[str, Any]]
    enters_stage: bool


def edit(deal: DealFacts, diff: Mapping[str, Mapping[str, Any]], cleaned: Mapping[str, Any],
         *, user_id: int | None, client: Mapping[str, Any] | None = None,
         old_stage: StageRef | None = None, new_stage: StageRef | None = None,
         budget: Decimal = ZERO, has_plan: bool = False) -> Edit:
    """``update_deal``'s rules over a non-empty ``diff`` (``changes_between``): a new client
    brings its name, a new type its stage, a new expected amount moves the deal's amount
    unless a payment plan sets it (P2)."""
    changes: dict[str, dict[str, Any]] = {k: dict(v) for k, v in diff.items()}
    fields: dict[str, Any] = {}
    if "client_id" in changes and client is not None:
        changes["client_name"] = {"from": deal.client_name, "to": client["name"]}
        fields["client_id"], fields["client_name"] = client["id"], client["name"]
    enters = False
    if "type_id" in changes:
        fields["type_id"] = cleaned["type_id"]
        if (new_stage.id if new_stage else None) != (old_stage.id if old_stage else None):
            changes["stage"] = {"from": _code(old_stage), "to": _code(new_stage)}
            enters = True
    for key in ("name", "manager_id", "expected_amount", "probability", "planned_close_on"):
        if key in changes:
            fields[key] = cleaned[key]
    if "expected_amount" in changes:
        amount = effective_amount(cleaned["expected_amount"], budget, has_plan)
        if amount != deal.amount:
            changes["amount"] = {"from": deal.amount, "to": amount}
            fields["amount"] = amount
    fields["version"] = deal.version + 1
    fields["updated_by"] = user_id
    return Edit(fields, changes, enters)


def deal_updated(deal: DealFacts, changes: Mapping[str, Any], user_id: int | None, *,
                 version: int, previous_manager_id: int | None = None,
                 client_id: int | None = None) -> dict[str, Any]:
    """The ``deal_updated`` event (README): the deal after the change, what changed, and
    the manager before it (notifications tell the one who lost the deal)."""
    return {"deal_id": deal.id, "name": deal.name,
            "client_id": deal.client_id if client_id is None else client_id,
            "manager_id": deal.manager_id,
            "previous_manager_id": (deal.manager_id if previous_manager_id is None
                                    else previous_manager_id),
            "changes": dict(changes), "user_id": user_id, "version": version}


def stages_kept(existing: Iterable[int], wanted: Iterable[Mapping[str, Any]]) -> set[int]:
    """The stage ids a saved deal type drops: stages are matched by ``id``, and an ``id``
    that is not one of this type's stages is refused."""
    have = set(existing)
    kept = {s["id"] for s in wanted if s["id"]}
    unknown = kept - have
    if unknown:
        raise ValidationError(f"stages: stage {min(unknown)} is not of this type",
                              field="stages", key="deal_type.stage_foreign",
                              params={"stage_id": min(unknown)})
    return have - kept


def check_stages_dropped(deals_in_dropped: int) -> None:
    """A stage that deals are in cannot be dropped (they would have no stage)."""
    if deals_in_dropped:
        raise ValidationError("stages: deals are in a stage you removed; move them first",
                              field="stages", key="deal_type.stage_in_use",
                              params={"deals": deals_in_dropped})


def check_choice(value: object, field: str, options: Sequence[str]) -> str:
    """``value`` exactly one of ``options`` (a status name sent by a caller)."""
    if not isinstance(value, str) or value not in options:
        raise _not_one_of(value, field, options)
    return value
