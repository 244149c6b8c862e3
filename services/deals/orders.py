"""Entrypoints of a deal's orders, cost calculation, payment plan and environment
(D10–D12)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.deals import catalogue, catalogue_store, domain, store
from services.deals.base import DealsBase
from services.deals.models import Calculation, CalculationLine, Order, OrderLine, Party
from services.deals.schemas import calculation_dict, order_dict, party_dict
from services.deals.store import now as _now
from services.kit import clock
from services.kit.entrypoints import rpc
from services.kit.errors import Conflict, NotFound, ValidationError


class OrdersEntrypoints(DealsBase):
    """Orders, the cost calculation, the payment plan and the deal's environment (D10–D12)."""

    # ---------------------------------------------------------------- orders
    @rpc
    def create_order(self, deal_id: int, data: dict[str, Any],
                     user_id: int | None = None) -> dict[str, Any]:
        cleaned = domain.validate_order(data, clock.business_today(self.config))
        catalogue_store.attach(self.db.session, cleaned["lines"])
        deal = self._deal(deal_id, lock=True)
        sequence = store.next_order_number(self.db)
        order = Order(deal_id=deal.id, number=domain.order_number(sequence,
                                                                  cleaned["order_date"]),
                      order_date=cleaned["order_date"], status=cleaned["status"],
                      amount=cleaned["amount"], currency=deal.currency,
                      comment=cleaned["comment"], created_by=user_id, updated_by=user_id,
                      lines=[OrderLine(position=i, **line)
                             for i, line in enumerate(cleaned["lines"])])
        self.db.add(order)
        self.db.flush()
        store.add_history(self.db, deal, "order", None, f"{order.number} {order.amount}",
                          user_id)
        self.db.emit("order_created", {"order_id": order.id, "deal_id": deal.id,
                                       "number": order.number, "amount": order.amount,
                                       "currency": order.currency, "user_id": user_id,
                                       "lines": catalogue.line_summary(cleaned["lines"])})
        return order_dict(order)

    @rpc
    def change_order_status(self, order_id: int, status: str, user_id: int | None = None,
                            version: int | None = None) -> dict[str, Any]:
        order = store.locked_order(self.db, order_id)
        if not domain.check_version(order.version, version):
            raise Conflict(f"order {order.number} was changed by someone else; reload it",
                           entity="order", id=order_id, version=order.version)
        domain.check_choice(status, "status", domain.ORDER_STATUSES)
        if status != order.status:
            deal = self._deal(order.deal_id, lock=True)
            store.add_history(self.db, deal, f"order {order.number}", order.status, status,
                              user_id)
            order.status, order.updated_by = status, user_id
            order.version += 1
        return order_dict(order)

    @rpc
    def list_orders(self, deal_id: int) -> list[dict[str, Any]]:
        return store.orders(self.db, self._deal(deal_id).id)

    # ------------------------------------------- calculator and payment plan
    @rpc
    def save_calculation(self, deal_id: int, lines: list[dict[str, Any]],
                         user_id: int | None = None, version: int | None = None
                         ) -> dict[str, Any]:
        """D11: the saved total becomes the deal's expected amount."""
        cleaned = domain.validate_lines(lines)
        catalogue_store.attach(self.db.session, cleaned)
        deal = self._locked_current(deal_id, version)
        calc = self.db.get(Calculation, deal.id)
        if calc is None:
            calc = Calculation(deal_id=deal.id, total=Decimal("0.00"), version=0)
            self.db.add(calc)
        calc.lines = [CalculationLine(position=i, **line) for i, line in enumerate(cleaned)]
        calc.total = domain.lines_total(cleaned)
        calc.saved_by, calc.saved_at = user_id, _now()
        calc.version += 1
        self.db.flush()
        self._apply_changes(deal, {"expected_amount": calc.total}, user_id)
        self.db.emit("calculation_saved", catalogue.lines_event(deal.id, calc.version,
                                                                calc.total, cleaned))
        return calculation_dict(calc)  # type: ignore[return-value]

    @rpc
    def create_payment_plan(self, deal_id: int, data: dict[str, Any],
                            user_id: int | None = None) -> list[dict[str, Any]]:
        """Seed the deal's payment plan in payments from the saved calculation: ``parts``
        equal payments a month apart from ``first_due_date``.  Done once per calculation
        (a second click is refused, not doubled)."""
        if not isinstance(data, dict):
            raise ValidationError("plan: expected an object", field="plan",
                                  key="deal.object_expected", params={"field": "plan"})
        deal = self._deal(deal_id, lock=True)
        calc = store.locked_calculation(self.db, deal.id)
        if calc is None:
            raise ValidationError("calculation: save a calculation first", field="calculation",
                                  key="deal.calculation_missing")
        if calc.plan_created_at is not None:
            raise Conflict("the payment plan of this calculation was already created",
                           entity="calculation", id=deal.id)
        parts = domain.identifier(data.get("parts") or 1, "parts")
        first = (domain.parse_day(data.get("first_due_date"), "first_due_date")
                 or clock.business_today(self.config))
        plan = domain.split_plan(calc.total, int(parts or 1), first)
        # One call that writes the whole plan in payments (or nothing); the key makes a
        # retry after our own rollback return the plan made, not a second one.
        created = self.payments.add_payment_plan(
            deal.id, [{"amount": str(amount), "due_date": due.isoformat(),
                       "currency": deal.currency, "comment": f"{i}/{len(plan)}"}
                      for i, (amount, due) in enumerate(plan, 1)], user_id,
            idempotency_key=f"deal-plan:{deal.id}:{calc.version}")
        calc.plan_created_at = _now()
        store.add_history(self.db, deal, "payment_plan", None, f"{len(plan)} × {calc.total}",
                          user_id)
        return created

    # ----------------------------------------------------------- environment
    @rpc
    def add_party(self, deal_id: int, data: dict[str, Any],
                  user_id: int | None = None) -> dict[str, Any]:
        cleaned = domain.validate_party(data)
        deal = self._deal(deal_id, lock=True)
        if cleaned["client_id"] is not None and not cleaned["name"]:
            cleaned["name"] = self._client(cleaned["client_id"])["name"]
        party = Party(deal_id=deal.id, created_by=user_id, **cleaned)
        self.db.add(party)
        self.db.flush()
        store.add_history(self.db, deal, cleaned["role"], None, party.name, user_id)
        return party_dict(party)

    @rpc
    def remove_party(self, deal_id: int, party_id: int, user_id: int | None = None) -> None:
        deal = self._deal(deal_id, lock=True)
        party = self.db.get(Party, domain.identifier(party_id, "party_id"))
        if party is None or party.deal_id != deal.id:
            raise NotFound(f"party {party_id} not found on deal {deal.id}", entity="party",
                           id=party_id)
        store.add_history(self.db, deal, party.role, party.name, None, user_id)
        self.db.delete(party)
