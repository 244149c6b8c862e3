"""The weighted pipeline's reads, grouped in the database (the rules are forecast.py's).

A page used to read every open deal into Python, work out its features and expected month
and add it to its cells one by one.  Here the database does the per-deal work:

- the open deals without a hand-set probability fall into few estimate profiles (status,
  type, manager, client kind and group, age and amount bucket, source): a few hundred
  where there are thousands of deals; each profile is estimated once in Python
  (probability.py stays the only estimator) from the counts as they are at the request;
- one statement joins the profiles' percents to the deals, dates each deal (planned close
  date, else creation + its type's typical cycle, never before today), weights it
  (``round(amount × percent / 100, 2)``: rounded per deal, as the reference does) and sums
  per manager and month; the unestimated deals and the biggest weighted ones come out of
  the same statement, and so do the deals whose profile was not among those asked: then
  the slice's distinct profiles are read and the sums asked again.

``winrate.open_estimates`` with ``forecast.pipeline`` stays the reference the tests
compare this with.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.analytics import forecast, probability, winrate

NO_ID = -(2 ** 63)  # stands for "none" in a profile's id columns: no id is ever this


def _buckets(column: str, cutoffs: str, edges: Sequence[Any]) -> str:
    """The bucket's index (probability.bucket: bisect_left over inclusive upper bounds)
    as a CASE over ``edges`` cut-off parameters, cheaper per row than arithmetic."""
    whens = " ".join(f"WHEN {column} {cutoffs.format(i)} THEN {i}"
                     for i in range(len(edges)))
    return f"CASE {whens} ELSE {len(edges)} END"


_AGE = _buckets("COALESCE(d.created_at, CAST(:now AS timestamptz))",
                "> CAST(:age_{} AS timestamptz)", probability.AGE_EDGES)
_AMOUNT = _buckets("d.amount", "< CAST(:amount_{} AS numeric)", probability.AMOUNT_EDGES)

# an open deal with what its estimate and its month are made of; the client dimension's
# kind and group win over the deal's own (as in winrate.open_estimates).  A profile's
# columns have no NULL (NO_ID, ''), so they join by plain equality; '' and NULL are the
# same feature value ("none" for the kind, "manual" for the source)
_OPEN = f"""
  SELECT d.deal_id, d.name, d.client_name, d.status, d.type_id, d.manager_id, d.amount,
         COALESCE(d.created_at, CAST(:now AS timestamptz)) AS created_at,
         f.manual_probability, f.planned_close_on,
         COALESCE(d.type_id, {NO_ID}) AS type_key, COALESCE(d.manager_id, {NO_ID}) AS manager_key,
         COALESCE(c.kind, f.client_kind, '') AS kind_key,
         COALESCE(CASE WHEN c.client_id IS NOT NULL THEN c.client_group_id
                       ELSE f.client_group_id END, {NO_ID}) AS group_key,
         COALESCE(f.source, '') AS source_key,
         -- the age in whole days (floored) at least edge + 1 <=> created by now - (edge + 1) days
         {_AGE} AS age_i,
         -- the amount rounded half up at least edge + 1 <=> at least edge + 0.5
         {_AMOUNT} AS amount_i
  FROM deals d LEFT JOIN deal_facts f ON f.deal_id = d.deal_id
  LEFT JOIN client_group_members c ON c.client_id = d.client_id
  WHERE d.status = ANY(:open) {{where}}"""
_PROFILE = ("status, type_key, manager_key, kind_key, group_key, age_i, amount_i,"
            " source_key")

_PROFILES = f"""
WITH o AS ({{open_}})
SELECT {_PROFILE} FROM o WHERE manual_probability IS NULL GROUP BY {_PROFILE}"""

_CELLS = f"""
WITH est AS (SELECT * FROM unnest(CAST(:p_status AS text[]), CAST(:p_type AS bigint[]),
                                  CAST(:p_manager AS bigint[]), CAST(:p_kind AS text[]),
                                  CAST(:p_group AS bigint[]), CAST(:p_age AS int[]),
                                  CAST(:p_amount AS int[]), CAST(:p_source AS text[]),
                                  CAST(:percents AS int[]))
             AS e({_PROFILE}, p)),
cyc AS (SELECT type_id, days, make_interval(secs => days * 86400) AS span
        FROM unnest(CAST(:cycle_types AS int[]), CAST(:cycle_days AS float8[]))
        AS c(type_id, days)),
o AS ({{open_}}),
dated AS (
  SELECT o.deal_id, o.name, o.client_name, o.manager_id, o.amount,
         COALESCE(o.manual_probability, e.p) AS percent,
         o.manual_probability IS NOT NULL AS manual,
         o.manual_probability IS NULL AND e.status IS NULL AS unmatched,
         CASE WHEN o.planned_close_on IS NOT NULL THEN 'planned' ELSE 'cycle' END AS basis,
         CASE WHEN o.planned_close_on IS NULL
              THEN COALESCE(cy.days, CAST(:pooled AS float8)) END AS cycle,
         GREATEST(COALESCE(o.planned_close_on,
                           CAST(o.created_at + COALESCE(
                                  cy.span, make_interval(secs => CAST(:pooled AS float8) * 86400))
                                AS date)),
                  CAST(:today AS date)) AS close_on
  FROM o LEFT JOIN est e ON o.manual_probability IS NULL
    AND (e.status, e.type_key, e.manager_key, e.kind_key, e.group_key, e.age_i, e.amount_i,
         e.source_key)
      = (o.status, o.type_key, o.manager_key, o.kind_key, o.group_key, o.age_i, o.amount_i,
         o.source_key)
  LEFT JOIN cyc cy ON cy.type_id = o.type_id),
slotted AS MATERIALIZED (
  SELECT deal_id, manager_id, amount, percent, manual, unmatched, basis, cycle, close_on,
         -- 1: the first month shown ... len(labels) + 1: later
         width_bucket(close_on, CAST(:month_starts AS date[])) AS slot,
         round(amount * percent / 100, 2) AS weighted
  FROM dated),
listed AS (SELECT * FROM slotted WHERE percent IS NOT NULL
           ORDER BY weighted DESC, deal_id LIMIT :listed)
SELECT 'cell', manager_id, slot, count(*), sum(amount), sum(weighted),
       NULL::bigint, NULL::text, NULL::text, NULL::int, NULL::bool, NULL::date, NULL::text,
       NULL::float8
FROM slotted WHERE percent IS NOT NULL GROUP BY manager_id, slot
UNION ALL
SELECT 'unestimated', NULL, NULL, count(*), sum(amount), NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM slotted WHERE percent IS NULL
UNION ALL
SELECT 'unmatched', NULL, NULL, count(*), NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM slotted WHERE unmatched HAVING count(*) > 0
UNION ALL
SELECT 'deal', l.manager_id, l.slot, NULL, l.amount, l.weighted, l.deal_id, d.name,
       d.client_name, l.percent, l.manual, l.close_on, l.basis, l.cycle
FROM listed l, LATERAL (SELECT name, client_name FROM deals WHERE deal_id = l.deal_id) d"""


def _statements(manager: int | None, managers: Sequence[int] | None) -> tuple[str, str]:
    where = ""
    if manager is not None:
        where += " AND d.manager_id = :manager"
    if managers is not None:
        where += " AND d.manager_id = ANY(:managers)"
    open_ = _OPEN.replace("{where}", where)
    return _PROFILES.replace("{open_}", open_), _CELLS.replace("{open_}", open_)


def _low(index: int, edges: Sequence[Any]) -> Any:
    """The smallest whole number of a bucket (its name comes from probability.bucket)."""
    return 0 if index == 0 else edges[index - 1] + 1


Profile = tuple[str, int, int, str, int, int, int, str]
# the profiles of the open deals met so far (the first read of each process, and again
# when a deal has one not seen before): the sums are asked with these in one statement,
# so the read of the distinct profiles is not paid on every page.  Only the keys are
# kept; their percents are worked out on each request from the counts as they are then.
_seen: dict[Profile, None] = {}
MAX_SEEN = 50_000
MAX_ROUNDS = 3


def _percent(model: probability.Model, profile: Profile, now: datetime) -> int | None:
    status, type_key, manager_key, kind, group, age_i, amount_i, source = profile
    type_id = None if type_key == NO_ID else type_key
    values = probability.features(
        type_id=type_id, manager_id=None if manager_key == NO_ID else manager_key,
        client_kind=kind, client_group_id=None if group == NO_ID else group,
        created_at=now, at=now, amount=Decimal(0), source=source)
    values["age"] = probability.bucket(_low(age_i, probability.AGE_EDGES),
                                       probability.AGE_EDGES)
    values["amount"] = probability.bucket(_low(amount_i, probability.AMOUNT_EDGES),
                                          probability.AMOUNT_EDGES)
    odds = model.log_odds(status, type_id, values)
    return None if odds is None else probability.percent(odds)


def reads(open_statuses: Sequence[str], now: datetime, today: date, months: int,
          listed: int, cycles: Mapping[int | None, float], manager: int | None = None,
          managers: Sequence[int] | None = None
          ) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """The statements of a page (the distinct profiles; the sums) and their parameters
    (the sums' also need ``_profile_params``): what the bench runs as the page's SQL."""
    profiles_sql, cells_sql = _statements(manager, managers)
    params: dict[str, Any] = {
        "open": list(open_statuses), "now": now, "manager": manager,
        "managers": list(managers) if managers is not None else None,
        **{f"age_{i}": now - (edge + 1) * probability.DAY
           for i, edge in enumerate(probability.AGE_EDGES)},
        **{f"amount_{i}": edge + Decimal("0.5")
           for i, edge in enumerate(probability.AMOUNT_EDGES)}}
    labels = forecast.months_from(today, months)
    # each shown month's first day and the one after the last: a deal's slot is the
    # number of them on or before its day
    starts = [date(int(label[:4]), int(label[5:]), 1) for label in labels]
    after = starts[-1]
    starts.append(date(after.year + 1, 1, 1) if after.month == 12
                  else date(after.year, after.month + 1, 1))
    asked = {**params, "today": today, "month_starts": starts, "listed": listed,
             "pooled": cycles[None], "cycle_types": [t for t in cycles if t is not None],
             "cycle_days": [d for t, d in cycles.items() if t is not None]}
    return profiles_sql, cells_sql, params, asked


def profile_params(profiles: list[Profile], percents: list[int | None]) -> dict[str, Any]:
    """The sums' parameters naming the profiles asked and their percents."""
    columns: list[tuple[Any, ...]] = (list(zip(*profiles, strict=True)) if profiles
                                      else [()] * 8)
    return {"percents": percents, **{f"p_{name}": list(values) for name, values in zip(
        ("status", "type", "manager", "kind", "group", "age", "amount", "source"), columns,
        strict=True)}}


def weighted_pipeline(session: Session, open_statuses: Sequence[str],
                      won_statuses: Sequence[str], now: datetime, today: date,
                      departments: Mapping[int, str], months: int, listed: int,
                      manager: int | None = None, managers: Sequence[int] | None = None
                      ) -> dict[str, Any]:
    """``forecast.pipeline``'s answer for the open deals (of ``manager``, or of
    ``managers``), the listed deals with their ``name`` and ``client_name``."""
    model = winrate.load_model(session)
    cycles = winrate.typical_cycles(session, won_statuses)
    labels = forecast.months_from(today, months)
    slots = [*labels, forecast.LATER]
    profiles_sql, cells_sql, params, asked = reads(open_statuses, now, today, months, listed,
                                                   cycles, manager, managers)
    profiles = list(_seen)
    for _ in range(MAX_ROUNDS):
        rows = session.execute(text(cells_sql), {**asked, **profile_params(
            profiles, [_percent(model, p, now) for p in profiles])}).tuples().all()
        if not any(r[0] == "unmatched" for r in rows):
            break
        # a profile not seen before (a new deal, an age bucket crossed): the slice's
        # profiles read, remembered, and the sums asked again
        found = session.execute(text(profiles_sql), params).tuples().all()
        if len(_seen) + len(found) > MAX_SEEN:
            _seen.clear()
        _seen.update(dict.fromkeys(found))
        profiles = list(_seen)
    cells: list[tuple[int | None, str, int, Decimal, Decimal]] = []
    unestimated = (0, Decimal("0.00"))
    deals: list[dict[str, Any]] = []
    for (kind_, manager_id, slot, count, amount, weighted, deal_id, name, client_name,
         percent, manual, close_on, basis, cycle) in rows:
        if kind_ == "unmatched":
            # still new profiles after every round (deals made meanwhile): not estimated
            continue
        if kind_ == "cell":
            cells.append((manager_id, slots[slot - 1], count, amount, weighted))
        elif kind_ == "unestimated":
            unestimated = (count, amount or Decimal("0.00"))
        else:
            deals.append({"deal_id": deal_id, "manager_id": manager_id, "amount": amount,
                          "percent": percent, "manual": manual, "weighted": weighted,
                          "close_on": close_on, "basis": basis,
                          "cycle_days": None if cycle is None else round(cycle, 1),
                          "month": slots[slot - 1], "name": name, "client_name": client_name})
    # a union's parts come in no set order
    deals.sort(key=lambda d: (-d["weighted"], d["deal_id"]))
    return forecast.pipeline_of_cells(cells, unestimated, deals, labels, departments)
