"""Tables of the analytics database (crm_analytics): a read model built only from the
events deals and payments publish (and, to start on an existing installation, from the
deals service's own history by RPC)."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import NAMING
from services.kit.messaging import messaging_tables


class Base(DeclarativeBase):
    """This database's tables (a class statement, so type checkers see the models)."""

    metadata = MetaData(naming_convention=NAMING)


metadata = Base.metadata
outbox, inbox = messaging_tables(metadata)

MONEY = Numeric(18, 2)


class Transition(Base):
    """One move of a deal into a status (append-only): the source of every figure.

    ``seq`` orders a deal's moves: the deal's version after the move for live events
    (1 is the creation), or the move's ordinal when replayed by the rebuild (always below
    the versions that come after it, see ``DealState.rebuilt_version``)."""

    __tablename__ = "transitions"
    __table_args__ = (Index("ix_transitions_at", "at"),)

    deal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_status: Mapped[str | None] = mapped_column(String(50))
    to_status: Mapped[str] = mapped_column(String(50))
    from_stage: Mapped[str | None] = mapped_column(String(50))
    to_stage: Mapped[str | None] = mapped_column(String(50))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    manager_id: Mapped[int | None] = mapped_column(Integer)
    type_id: Mapped[int | None] = mapped_column(Integer)
    client_id: Mapped[int | None] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    loss_reason_id: Mapped[int | None] = mapped_column(Integer)
    loss_reason: Mapped[str | None] = mapped_column(String(200))


class DealState(Base):
    """A deal as it is now, for slicing and the deal lists; ``version`` is the deal's
    version of the newest event applied (an older one changes nothing here)."""

    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_created", "created_at"),
        Index("ix_deals_closed", "closed_at"),
        Index("ix_deals_manager", "manager_id"),
        Index("ix_deals_client", "client_id"),
    )

    deal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    # events up to this version are already in the replayed history: skipped
    rebuilt_version: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(500), default="")
    client_id: Mapped[int | None] = mapped_column(BigInteger)
    client_name: Mapped[str] = mapped_column(String(500), default="")
    manager_id: Mapped[int | None] = mapped_column(Integer)
    type_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str | None] = mapped_column(String(50))
    stage: Mapped[str | None] = mapped_column(String(50))
    amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    entered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    loss_reason: Mapped[str | None] = mapped_column(String(200))
    # the client's group of companies, kept by triggers from client_group_members
    # (migration c5f1a2b3d4e6; an insert's once per statement since f6a2d9c4b8e1), so
    # every writer of this table gets it without a change
    client_group_id: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now(), onupdate=func.now())
    # The deal's transitions summed up (``store.SUMMARIZE_ALL`` rewrites them from the
    # transitions whenever a deal's transitions change), so that a funnel slice is a few
    # aggregate queries over one row per deal instead of a walk over every move:
    # ``path``: the status of each move in order; ``seconds_codes``/``seconds_values``:
    # each status in it with the seconds spent there on finished visits (the current visit,
    # since ``last_at``, is added when asked); ``last_loss_reason``: the last move's.
    path: Mapped[list[str] | None] = mapped_column(ARRAY(String(50)))
    seconds_codes: Mapped[list[str] | None] = mapped_column(ARRAY(String(50)))
    seconds_values: Mapped[list[float] | None] = mapped_column(ARRAY(Double))
    last_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_loss_reason: Mapped[str | None] = mapped_column(String(200))


class Receipt(Base):
    """Money received on a deal (payments.payment_received): the revenue figure."""

    __tablename__ = "receipts"

    receipt_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deal_id: Mapped[int] = mapped_column(BigInteger, index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    received_on: Mapped[str | None] = mapped_column(Text, index=True)


class DealCount(Base):
    """How many deals and how much sit in each status now, by stage, manager and type
    (-1: none), kept by triggers on ``deals`` (migration c3f1a7e2b9d4; an insert counted
    once per statement since f6a2d9c4b8e1): what changed is appended to
    ``deal_count_moves`` and folded in here by ``store.compact_counts``."""

    __tablename__ = "deal_counts"

    status: Mapped[str] = mapped_column(String(50), primary_key=True)
    stage: Mapped[str] = mapped_column(String(50), primary_key=True)
    manager_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    type_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    deals: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(MONEY)


deal_count_moves = Table(
    "deal_count_moves", metadata,
    Column("status", String(50), nullable=False), Column("stage", String(50), nullable=False),
    Column("manager_key", Integer, nullable=False), Column("type_key", Integer, nullable=False),
    Column("deals", Integer, nullable=False), Column("amount", MONEY, nullable=False))


# ------------------------------------------------------------ win probability (MISSION A5)
class DealFacts(Base):
    """What the estimator knows of a deal beyond the funnel's read model: how it arrived
    (intake's ``lead_accepted``; none told: manual) and its client's kind and group when
    the deal's events carry them."""

    __tablename__ = "deal_facts"

    deal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[str | None] = mapped_column(String(20))
    client_kind: Mapped[str | None] = mapped_column(String(20))
    client_group_id: Mapped[int | None] = mapped_column(BigInteger)
    # the probability a manager set by hand (deals' ``changes.probability``), percent
    manual_probability: Mapped[int | None] = mapped_column(Integer)
    # when the manager expects it to close (the weighted pipeline's month), and the deal's
    # version that said so: a late older event changes nothing
    planned_close_on: Mapped[date | None] = mapped_column(Date)
    planned_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class WinOutcome(Base):
    """A closed deal as the estimator learnt it (``won`` None: reopened, learnt nothing),
    so a later event of the same deal takes back exactly what it added; ``version``: the
    deal's version of the event, an older one changes nothing."""

    __tablename__ = "win_outcomes"

    deal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    type_id: Mapped[int | None] = mapped_column(Integer)
    won: Mapped[bool | None] = mapped_column()
    lost_at: Mapped[str | None] = mapped_column(String(50))
    values: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WinCount(Base):
    """The estimator's counts (probability.contributions): per model (a type's id, 0 the
    pooled one), open status, feature and value, the closed deals won and lost."""

    __tablename__ = "win_counts"

    model: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(50), primary_key=True)
    feature: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[str] = mapped_column(String(50), primary_key=True)
    won: Mapped[int] = mapped_column(Integer, default=0)
    lost: Mapped[int] = mapped_column(Integer, default=0)


class ProbabilityRebuild(Base):
    """One row per night the counts were recomputed: the replica whose insert wins does it
    (in the same transaction, so a failed rebuild leaves the night unclaimed)."""

    __tablename__ = "probability_rebuilds"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    outcomes: Mapped[int] = mapped_column(Integer, default=0)
    done_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# ------------------------------------------------------ manager performance (MISSION A7)
class TaskState(Base):
    """A deal's task (deals' reminders): open tasks and overdue ones per assignee."""

    __tablename__ = "tasks"

    reminder_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deal_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CallState(Base):
    """A finished call (telephony's call events), attributed to its first matched deal;
    ``revision``: an older one changes nothing."""

    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_started", "started_at"),)

    call_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    direction: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str | None] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deal_id: Mapped[int | None] = mapped_column(BigInteger, index=True)


class RfmScore(Base):
    """Each paying client's RFM scores and segment as of the last recomputation."""

    __tablename__ = "rfm_scores"
    __table_args__ = (Index("ix_rfm_scores_segment", "segment", "client_id"),)

    client_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    recency_days: Mapped[int] = mapped_column(Integer)
    payments: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    r: Mapped[int] = mapped_column(Integer)
    f: Mapped[int] = mapped_column(Integer)
    m: Mapped[int] = mapped_column(Integer)
    segment: Mapped[str] = mapped_column(String(20))
    last_paid_on: Mapped[date | None] = mapped_column(Date)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RfmHistory(Base):
    """A client's segment moves (append-only): one row each time a recomputation moved it."""

    __tablename__ = "rfm_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    client_id: Mapped[int] = mapped_column(BigInteger, index=True)
    previous: Mapped[str | None] = mapped_column(String(20))
    segment: Mapped[str] = mapped_column(String(20))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ScheduledJob(Base):
    """A periodic job claimed with ``FOR UPDATE SKIP LOCKED``: with several replicas, one
    runs it and the others skip it."""

    __tablename__ = "scheduled_jobs"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_result: Mapped[str] = mapped_column(Text, default="")


class DealLine(Base):
    """A deal's priced lines with their product line (deals.calculation_saved): what the
    BCG matrix groups sales by.  ``version`` is the calculation's: an older event arriving
    late changes nothing."""

    __tablename__ = "deal_lines"

    deal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    product_line: Mapped[str | None] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(MONEY)


class ClientGroupMember(Base):
    """The client dimension: each client's group of companies (clients'
    ``client_group_changed``, ``client_created``, ``client_updated``), so the funnel,
    performance and RFM can be sliced by group, and its kind (a feature of the win
    estimate).  Each field keeps the client's version and the time of the event that set
    it: an older event arriving late changes neither (clients_dim.py)."""

    __tablename__ = "client_group_members"
    __table_args__ = (Index("ix_client_group_members_group", "client_group_id"),)

    client_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    client_group_id: Mapped[int | None] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, default=0)
    group_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str | None] = mapped_column(String(20))
    kind_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    kind_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
