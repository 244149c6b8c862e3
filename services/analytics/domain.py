"""Pure funnel maths (MISSION A1, A2, A6): no nameko, no SQL.

A deal's path is its moves in order (``Move``); the funnel's layers are the common statuses
in their configured order (open ones, then won), or one type's stages.  Every figure is a
function of paths and layers, so each rule is testable on hand-made histories.

Rules, in the business's words:
- a deal **reached** a layer when its furthest layer so far is that one or a later one
  (so a deal that went back and forth is counted once per layer, and one that skipped a
  layer has still passed it);
- a lost deal is **lost at** the last open layer it was in before the loss;
- time in a layer is the sum of its visits (the current one until now);
- the **bottleneck** is the layer with the lowest conversion to the next, and any layer
  whose conversion fell by more than a margin (percentage points) against the previous
  period of the same length.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from statistics import median
from typing import Any, NamedTuple

from services.kit.errors import ValidationError

ZERO = Decimal("0.00")
MAX_PERIOD_DAYS = 5 * 366
DEFAULT_PERIOD_DAYS = 90
BASES = ("created", "closed")
HEAD_ROLES = frozenset({"head", "admin"})


@dataclass(frozen=True)
class Layer:
    code: str
    name: str
    kind: str = "open"  # open / won / lost
    color: str = "#888888"


class Move(NamedTuple):
    """One move of a deal into ``to`` (a status or stage code); tuples, because a funnel
    request makes one per transition of its cohort."""

    seq: int
    to: str
    at: datetime
    loss_reason: str | None = None


class Path(NamedTuple):
    deal_id: int
    moves: tuple[Move, ...]
    amount: Decimal = ZERO


@dataclass
class LayerFigures:
    code: str
    name: str
    kind: str
    color: str
    reached: int = 0
    amount: Decimal = ZERO
    conversion_next: Decimal | None = None
    conversion_first: Decimal | None = None
    drop_off: int = 0
    median_days: Decimal | None = None
    lost: int = 0
    lost_amount: Decimal = ZERO
    lost_reasons: dict[str, int] = field(default_factory=dict)
    now_count: int = 0
    now_amount: Decimal = ZERO
    bottleneck: list[str] = field(default_factory=list)
    previous_conversion_next: Decimal | None = None


@dataclass(frozen=True)
class Summary:
    """What one deal contributes: the furthest funnel layer (index), where it was lost,
    and seconds spent per layer."""

    furthest: int | None
    lost_at: str | None
    loss_reason: str | None
    seconds_in: Mapping[str, float]
    visited: frozenset[str]


def percent(part: int, whole: int) -> Decimal | None:
    if whole <= 0:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def summarize(path: Path, layers: Sequence[Layer], kinds: Mapping[str, str],
              now: datetime) -> Summary:
    """``kinds``: the kind of every code a move may lead to (lost ones too)."""
    index = {layer.code: i for i, layer in enumerate(layers)}
    moves = sorted(path.moves, key=lambda m: m.seq)
    furthest: int | None = None
    last_open: str | None = None
    seconds: dict[str, float] = {}
    for i, move in enumerate(moves):
        if move.to in index:
            furthest = max(furthest if furthest is not None else -1, index[move.to])
        kind = kinds.get(move.to, "open")
        if kind == "open":
            last_open = move.to
            until = moves[i + 1].at if i + 1 < len(moves) else now
            seconds[move.to] = seconds.get(move.to, 0.0) + max(
                0.0, (until - move.at).total_seconds())
    lost_at = reason = None
    if moves and kinds.get(moves[-1].to) == "lost":
        lost_at, reason = last_open, moves[-1].loss_reason
    return Summary(furthest, lost_at, reason, seconds, frozenset(m.to for m in moves))


def belongs(summary: Summary, mode: str, index: int, code: str,
            reason: str | None = None) -> bool:
    """Is a deal behind a layer: reached it (``cohort``) or was lost at it (``lost``,
    for one ``reason`` if given)?"""
    if mode == "cohort":
        return summary.furthest is not None and summary.furthest >= index
    return summary.lost_at == code and (reason is None
                                        or (summary.loss_reason or "—") == reason)


def funnel(paths: Iterable[Path], layers: Sequence[Layer], kinds: Mapping[str, str],
           now: datetime) -> list[LayerFigures]:
    """The cohort funnel ("прошли через этап") of ``paths`` over ``layers``: the reference
    that ``funnel_of_groups`` (what the service computes from summaries) must equal."""
    rows = [LayerFigures(layer.code, layer.name, layer.kind, layer.color) for layer in layers]
    by_code = {row.code: row for row in rows}
    durations: dict[str, list[float]] = {layer.code: [] for layer in layers}
    for path in paths:
        summary = summarize(path, layers, kinds, now)
        _count(rows, by_code, summary, 1, path.amount)
        for code, secs in summary.seconds_in.items():
            if code in durations:
                durations[code].append(secs)
    _finish(rows, {code: median(d) for code, d in durations.items() if d})
    return rows


class Group(NamedTuple):
    """Deals of a cohort that share a path (the status of each move, in order) and a
    last move's loss reason: how many and their amount."""

    path: tuple[str, ...]
    loss_reason: str | None
    deals: int
    amount: Decimal


_EPOCH = datetime(2000, 1, 1)


def _group_summary(group: Group, layers: Sequence[Layer], kinds: Mapping[str, str]
                   ) -> Summary:
    """What every deal of ``group`` contributes but the time spent (the moves' moments
    matter only for that, and the service asks the medians of it from SQL)."""
    moves = tuple(Move(i, code, _EPOCH, group.loss_reason if i == len(group.path) else None)
                  for i, code in enumerate(group.path, start=1))
    return summarize(Path(0, moves, group.amount), layers, kinds, _EPOCH)


def funnel_of_groups(groups: Iterable[Group], median_seconds: Mapping[str, float],
                     layers: Sequence[Layer], kinds: Mapping[str, str]
                     ) -> list[LayerFigures]:
    """The same figures as ``funnel`` from the cohort's ``groups`` and the median seconds
    spent in each layer (over the deals that were in it, the current visit until now)."""
    rows = [LayerFigures(layer.code, layer.name, layer.kind, layer.color) for layer in layers]
    by_code = {row.code: row for row in rows}
    for group in groups:
        _count(rows, by_code, _group_summary(group, layers, kinds), group.deals, group.amount)
    _finish(rows, median_seconds)
    return rows


def open_layer_codes(layers: Sequence[Layer], kinds: Mapping[str, str]) -> list[str]:
    """The layers whose time counts (a median is over open statuses only)."""
    return [layer.code for layer in layers if kinds.get(layer.code, "open") == "open"]


def reaching(layers: Sequence[Layer], index: int) -> list[str]:
    """A deal reached layer ``index`` when its path has that layer or a later one."""
    return [layer.code for layer in layers[index:]]


def lost_paths(groups: Iterable[Group], layers: Sequence[Layer], kinds: Mapping[str, str],
               code: str, reason: str | None = None) -> list[tuple[str, ...]]:
    """The paths of the deals lost at layer ``code`` (for one ``reason`` if given)."""
    found = []
    for group in groups:
        if belongs(_group_summary(group, layers, kinds), "lost", 0, code, reason):
            found.append(group.path)
    return sorted(set(found))


def seconds_in(codes: Sequence[str], seconds: Sequence[float], last: str | None,
               last_at: datetime | None, kinds: Mapping[str, str], now: datetime
               ) -> dict[str, float]:
    """A summarised deal's seconds per open status (as ``Summary.seconds_in``): its
    finished visits plus the current one until now."""
    spent = {}
    for code, secs in zip(codes, seconds, strict=True):
        if kinds.get(code, "open") != "open":
            continue
        if code == last and last_at is not None:
            secs += max(0.0, (now - last_at).total_seconds())
        spent[code] = secs
    return spent


class Summed(NamedTuple):
    """A deal's moves summed up as its summary row keeps them (``models.DealState.path``
    and the rest): what ``store.SUMMARIZE_ALL`` computes in SQL from the transitions."""

    path: list[str]
    seconds_codes: list[str]
    seconds_values: list[float]
    last_at: datetime | None
    last_loss_reason: str | None


def summed(moves: Sequence[tuple[str, datetime, str | None]]) -> Summed:
    """``moves``: (status, at, loss reason) in order."""
    spent: dict[str, float] = {}
    for i, (code, at, _) in enumerate(moves):
        finished = (max(0.0, (moves[i + 1][1] - at).total_seconds()) if i + 1 < len(moves)
                    else 0.0)
        spent[code] = spent.get(code, 0.0) + finished
    return Summed([m[0] for m in moves], list(spent), list(spent.values()),
                  moves[-1][1] if moves else None, moves[-1][2] if moves else None)


def _count(rows: list[LayerFigures], by_code: Mapping[str, LayerFigures], summary: Summary,
           deals: int, amount: Decimal) -> None:
    if summary.furthest is not None:
        for row in rows[:summary.furthest + 1]:
            row.reached += deals
            row.amount += amount
    lost_at = by_code.get(summary.lost_at or "")
    if lost_at is not None:
        row = lost_at
        row.lost += deals
        row.lost_amount += amount
        reason = summary.loss_reason or "—"
        row.lost_reasons[reason] = row.lost_reasons.get(reason, 0) + deals


def _finish(rows: list[LayerFigures], median_seconds: Mapping[str, float]) -> None:
    first = rows[0].reached if rows else 0
    for i, row in enumerate(rows):
        row.conversion_first = percent(row.reached, first)
        if i + 1 < len(rows):
            row.conversion_next = percent(rows[i + 1].reached, row.reached)
            row.drop_off = row.reached - rows[i + 1].reached
        if median_seconds.get(row.code) is not None:
            row.median_days = (Decimal(median_seconds[row.code]) / 86400).quantize(
                Decimal("0.1"), ROUND_HALF_UP)


def snapshot(rows: list[LayerFigures],
             current: Iterable[tuple[str | None, int, Decimal]]) -> None:
    """"Сейчас на этапе": how many deals and how much sit in each layer now
    (``current``: code, deals, amount)."""
    by_code = {row.code: row for row in rows}
    for code, count, amount in current:
        row = by_code.get(code or "")
        if row is not None:
            row.now_count += count
            row.now_amount += amount


def mark_bottlenecks(rows: list[LayerFigures], previous: list[LayerFigures] | None,
                     margin_points: Decimal) -> None:
    """Call out the lowest conversion to the next layer (``lowest``) and every drop of
    more than ``margin_points`` against the previous period (``dropped``)."""
    candidates = [r for r in rows if r.conversion_next is not None and r.reached > 0]
    if candidates:
        lowest = min(r.conversion_next for r in candidates)  # type: ignore[type-var]
        for row in candidates:
            if row.conversion_next == lowest:
                row.bottleneck.append("lowest")
    before = {r.code: r.conversion_next for r in previous or []}
    for row in rows:
        was = before.get(row.code)
        row.previous_conversion_next = was
        if was is not None and row.conversion_next is not None \
                and was - row.conversion_next > margin_points:
            row.bottleneck.append("dropped")


def lost_breakdown(paths: Iterable[Path], layers: Sequence[Layer],
                   kinds: Mapping[str, str], now: datetime) -> list[dict[str, Any]]:
    """A6: lost deals by the status they were lost at and the reason, with amounts."""
    counts: Counter[tuple[str | None, str]] = Counter()
    amounts: dict[tuple[str | None, str], Decimal] = {}
    for path in paths:
        if not path.moves or kinds.get(max(path.moves, key=lambda m: m.seq).to) != "lost":
            continue
        summary = summarize(path, layers, kinds, now)
        key = (summary.lost_at, summary.loss_reason or "—")
        counts[key] += 1
        amounts[key] = amounts.get(key, ZERO) + path.amount
    return _lost_rows(counts, amounts, layers)


def lost_of_groups(groups: Iterable[Group], layers: Sequence[Layer],
                   kinds: Mapping[str, str]) -> list[dict[str, Any]]:
    """``lost_breakdown`` from the cohort's groups."""
    counts: Counter[tuple[str | None, str]] = Counter()
    amounts: dict[tuple[str | None, str], Decimal] = {}
    for group in groups:
        if not group.path or kinds.get(group.path[-1]) != "lost":
            continue
        summary = _group_summary(group, layers, kinds)
        key = (summary.lost_at, summary.loss_reason or "—")
        counts[key] += group.deals
        amounts[key] = amounts.get(key, ZERO) + group.amount
    return _lost_rows(counts, amounts, layers)


def _lost_rows(counts: Counter[tuple[str | None, str]],
               amounts: Mapping[tuple[str | None, str], Decimal],
               layers: Sequence[Layer]) -> list[dict[str, Any]]:
    order = {layer.code: i for i, layer in enumerate(layers)}
    return [{"status": status, "reason": reason, "count": n, "amount": amounts[(status, reason)]}
            for (status, reason), n in sorted(
                counts.items(), key=lambda kv: (order.get(kv[0][0] or "", 999), -kv[1]))]


# ----------------------------------------------------------------------------- filters

@dataclass(frozen=True)
class Filters:
    start: date
    end: date
    basis: str = "created"
    type_id: int | None = None
    client_id: int | None = None
    manager_id: int | None = None
    department: str | None = None
    compare: bool = False
    client_group_id: int | None = None

    def previous(self) -> Filters:
        days = (self.end - self.start).days + 1
        return Filters(self.start - timedelta(days=days), self.start - timedelta(days=1),
                       self.basis, self.type_id, self.client_id, self.manager_id,
                       self.department, self.compare, self.client_group_id)

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "basis": self.basis,
                "type_id": self.type_id, "client_id": self.client_id,
                "manager_id": self.manager_id, "department": self.department,
                "compare": self.compare, "client_group_id": self.client_group_id}


def _date(value: object, name: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValidationError(f"Неверная дата: «{value}». Нужен формат ГГГГ-ММ-ДД.",
                              field=name, key="period.invalid_date",
                              params={"value": str(value)}) from None


def _choice_id(value: object, name: str, known: Iterable[int] | None) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(str(value))
    except ValueError:
        number = -1
    if number < 0 or (known is not None and number not in set(known)):
        raise ValidationError(f"Неизвестное значение фильтра «{name}»: {value}.",
                              field=name, key="filter.unknown_value",
                              params={"field": name, "value": str(value)})
    return number


def parse_filters(raw: Mapping[str, Any] | None, today: date, *,
                  type_ids: Iterable[int], manager_ids: Iterable[int] | None,
                  departments: Iterable[str]) -> Filters:
    """Check a funnel request: unknown values, an end before the start and a period longer
    than five years are refused naming the field.  ``manager_ids`` None: any id."""
    raw = dict(raw or {})
    known = {"start", "end", "basis", "type_id", "client_id", "manager_id", "department",
             "compare", "layer", "mode", "client_group_id"}
    for name in raw:
        if name not in known:
            raise ValidationError(f"Неизвестный фильтр «{name}».", field=name,
                                  key="filter.unknown", params={"field": name})
    end = _date(raw.get("end"), "end") or today
    start = _date(raw.get("start"), "start") or end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if end < start:
        raise ValidationError("Конец периода раньше его начала.", field="end",
                              key="period.end_before_start",
                              params={"start": start.isoformat(), "end": end.isoformat()})
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise ValidationError("Период длиннее пяти лет.", field="start",
                              key="period.too_long", params={"max_years": 5})
    basis = str(raw.get("basis") or "created")
    if basis not in BASES:
        raise ValidationError(f"Неизвестное значение фильтра «basis»: {basis}.",
                              field="basis", key="filter.unknown_value",
                              params={"field": "basis", "value": basis})
    department = raw.get("department") or None
    if department is not None and str(department) not in set(departments):
        raise ValidationError(f"Неизвестный отдел: «{department}».", field="department",
                              key="filter.unknown_value",
                              params={"field": "department", "value": str(department)})
    return Filters(start=start, end=end, basis=basis,
                   type_id=_choice_id(raw.get("type_id"), "type_id", type_ids),
                   client_id=_choice_id(raw.get("client_id"), "client_id", None),
                   manager_id=_choice_id(raw.get("manager_id"), "manager_id", manager_ids),
                   department=str(department) if department else None,
                   compare=str(raw.get("compare", "")).lower() in ("1", "true", "yes", "on"),
                   client_group_id=_choice_id(raw.get("client_group_id"), "client_group_id",
                                              None))


def visible_manager(filters: Filters, viewer: Mapping[str, Any] | None) -> Filters:
    """Heads and administrators see everyone's funnel; anyone else only their own deals
    (the filter is forced to them, whatever was asked)."""
    viewer = viewer or {}
    if HEAD_ROLES & set(viewer.get("roles") or ()):
        return filters
    user_id = viewer.get("user_id")
    if user_id is None:
        raise ValidationError("Не указан пользователь.", field="viewer", key="viewer.missing")
    return Filters(filters.start, filters.end, filters.basis, filters.type_id,
                   filters.client_id, int(user_id), None, filters.compare,
                   filters.client_group_id)


def funnel_layers(statuses: Sequence[Mapping[str, Any]],
                  stages: Sequence[Mapping[str, Any]] | None = None
                  ) -> tuple[list[Layer], dict[str, str]]:
    """The layers (open statuses in order, then won) and the kind of every code.  With a
    type's ``stages`` the layers are its stages (each stage's kind is its status's)."""
    status_kind = {str(s["code"]): str(s["kind"]) for s in statuses}
    if stages:
        ordered = sorted(stages, key=lambda s: s.get("position", 0))
        kinds = {str(s["code"]): status_kind.get(str(s.get("status")), "open")
                 for s in ordered}
        layers = [Layer(str(s["code"]), str(s["name"]), kinds[str(s["code"])])
                  for s in ordered if kinds[str(s["code"])] != "lost"]
    else:
        ordered = sorted(statuses, key=lambda s: s.get("position", 0))
        kinds = status_kind
        layers = [Layer(str(s["code"]), str(s["name"]), str(s["kind"]),
                        str(s.get("color") or "#888888"))
                  for s in ordered if s["kind"] == "open"]
        layers += [Layer(str(s["code"]), str(s["name"]), "won",
                         str(s.get("color") or "#888888"))
                   for s in ordered if s["kind"] == "won"]
    layers = sorted(layers, key=lambda layer: layer.kind == "won")
    return layers, kinds


# -------------------------------------------------------------------------- replaying

REPLAY_FIELDS = ("manager_id", "type_id", "client_id", "amount")


def _int(value: str | None) -> int | None:
    return None if value in (None, "", "None") else int(str(value))


def page_deals(page: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A ``deals.history_columns`` page as one dict per deal with its ``history`` list
    (what ``replay`` reads)."""
    columns, changes = page["deals"], page["history"]
    names = [n for n in columns if n != "history_count"]
    fields, old, new, at = (changes["field"], changes["old_value"], changes["new_value"],
                            changes["changed_at"])
    deals, start = [], 0
    for i, count in enumerate(columns["history_count"]):
        deal = {name: columns[name][i] for name in names}
        deal["history"] = [{"field": fields[j], "old_value": old[j], "new_value": new[j],
                            "changed_at": at[j]} for j in range(start, start + count)]
        start += count
        deals.append(deal)
    return deals


def replay(deal: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A deal's moves rebuilt from its field history (``deals.deals_with_history``): the
    creation first, then one move per status (or stage-only) change, each with the
    manager, type, client and amount the deal had at that moment."""
    history = list(deal.get("history") or ())
    state: dict[str, Any] = {"status": deal["status"], "stage": deal.get("stage"),
                             "manager_id": deal.get("manager_id"),
                             "type_id": deal.get("type_id"), "client_id": deal.get("client_id"),
                             "amount": Decimal(str(deal.get("amount") or "0"))}
    # the values at creation: the old value of each field's first change
    seen: set[str] = set()
    for h in history:
        name = h["field"]
        if name in state and name not in seen:
            seen.add(name)
            state[name] = h["old_value"]
    for name in ("manager_id", "type_id", "client_id"):
        state[name] = _int(state[name])
    state["amount"] = Decimal(str(state["amount"] or "0"))
    moves = [{"from_status": None, "to_status": state["status"], "from_stage": None,
              "to_stage": state["stage"], "at": deal["created_at"], "loss_reason": None,
              **{k: state[k] for k in REPLAY_FIELDS}}]
    # the moments the type changed: a stage-only change then is the new process's start
    retyped = {x["changed_at"] for x in history if x["field"] == "type_id"}
    i = 0
    while i < len(history):
        h = history[i]
        name = h["field"]
        if name in ("status", "stage"):
            at = h["changed_at"]
            group = [h]
            while i + 1 < len(history) and history[i + 1]["field"] in (
                    "status", "stage", "loss_reason") and history[i + 1]["changed_at"] == at \
                    and history[i + 1]["field"] not in {g["field"] for g in group}:
                i += 1
                group.append(history[i])
            fields = {g["field"]: g for g in group}
            alongside_type = at in retyped
            if "status" in fields or not alongside_type:
                move = {"from_status": state["status"], "from_stage": state["stage"],
                        "at": at, "loss_reason": (fields["loss_reason"]["new_value"]
                                                  if "loss_reason" in fields else None)}
                if "status" in fields:
                    state["status"] = fields["status"]["new_value"]
                if "stage" in fields:
                    state["stage"] = fields["stage"]["new_value"]
                moves.append({**move, "to_status": state["status"],
                              "to_stage": state["stage"],
                              **{k: state[k] for k in REPLAY_FIELDS}})
            elif "stage" in fields:
                state["stage"] = fields["stage"]["new_value"]
        elif name in ("manager_id", "type_id", "client_id"):
            state[name] = _int(h["new_value"])
        elif name == "amount":
            state["amount"] = Decimal(str(h["new_value"] or "0"))
        i += 1
    return moves
