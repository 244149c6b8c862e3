"""API: calls (T1–T4).  Every endpoint declares its input and output with the models below
(``gateway.api.schema``)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import g
from pydantic import Field, WithJsonSchema

from gateway.api import bp
from gateway.api.schema import Id, Input, Items, Limit, Output, Query, endpoint
from gateway.remote import remote
from gateway.sections.telephony import create_client_from_call
from services.kit.errors import Forbidden

Number = Annotated[str, Limit(40)]
# the service parses these (ISO 8601; without an offset: UTC); the edge bounds the text
When = Annotated[str, Limit(40), WithJsonSchema({"type": "string", "format": "date-time"})]


class Call(Output):
    id: int
    status: str
    direction: str
    started_at: str | None
    recording_status: str
    deal_ids: list[int]


class FromCall(Output):
    client: dict[str, Any]
    contact: dict[str, Any]
    deal: dict[str, Any]
    call: Call


class WebhookLine(Output):
    id: int
    provider: str
    outcome: str
    received_at: str


class CallRecord(Input):
    direction: Literal["inbound", "outbound", "internal"]
    from_: Number = Field(alias="from")
    to: Number
    started_at: When
    ended_at: When
    answered_at: When | None = None
    outcome: Literal["answered", "missed", "busy", "failed"] | None = None
    call_id: Annotated[str, Limit(200)] | None = None
    recording_ref: Annotated[str, Limit(2000)] | None = None

    def sent(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


class Names(Input):
    client_name: Annotated[str, Limit(500, required=False)] | None = None
    contact_name: Annotated[str, Limit(500, required=False)] | None = None
    deal_name: Annotated[str, Limit(500, required=False)] | None = None


Flag = Literal["0", "1"]


class CallsQuery(Query):
    deal_id: Id | None = None
    client_id: Id | None = None
    contact_id: Id | None = None
    unknown: Flag | None = Field(None, description="1: calls no contact matched")
    live: Flag | None = Field(None, description="1: with calls still going on")
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class WebhooksQuery(Query):
    outcome: Literal["accepted", "ignored", "duplicate", "refused", "invalid"] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100


@bp.route("/calls", methods=["POST"])
@endpoint(section="deals", body=CallRecord, response=Call, status=201)
def calls_record(body: CallRecord) -> Any:
    """Report a finished call (a PBX without webhooks, a softphone, an import)."""
    return remote("telephony", "record_call", body.sent()), 201


@bp.route("/calls")
@endpoint(section="deals", query=CallsQuery, response=Items[Call])
def calls_list(query: CallsQuery) -> Any:
    """Calls, newest first: by deal, client or contact; ``unknown=1`` for unmatched ones."""
    return remote("telephony", "list_calls", deal_id=query.deal_id, client_id=query.client_id,
                  contact_id=query.contact_id, unknown=query.unknown == "1",
                  include_live=query.live == "1", limit=query.limit, offset=query.offset)


@bp.route("/calls/<int:call_id>")
@endpoint(section="deals", response=Call)
def calls_get(call_id: int) -> Any:
    """One call; ``recording_url`` plays it (with Range) once it is stored."""
    return remote("telephony", "get_call", call_id)


@bp.route("/calls/<int:call_id>/client", methods=["POST"])
@endpoint(section="deals", body=Names, body_required=False, response=FromCall, status=201,
          statuses={409: "the call is linked to a contact already"})
def calls_create_client(call_id: int, body: Names) -> Any:
    """A client (private person), its contact with the caller's number and a deal, from an
    unknown caller's call; the call and the number's other calls are attached (T4)."""
    return create_client_from_call(call_id, body.sent(), g.user.id, g.lang), 201


@bp.route("/calls/<int:call_id>/recording/retry", methods=["POST"])
@endpoint(section="deals", response=Call, status=201,
          statuses={409: "the call has no recording"})
def calls_recording_retry(call_id: int) -> Any:
    """Fetch a call's recording from the PBX again (after it failed)."""
    return remote("telephony", "retry_recording", call_id), 201


@bp.route("/telephony/webhooks")
@endpoint(section="", query=WebhooksQuery, response=Items[WebhookLine])
def telephony_webhooks(query: WebhooksQuery) -> Any:
    """The PBX webhook log (accepted, ignored, refused, invalid), for administrators."""
    if "admin" not in g.user.roles:
        raise Forbidden("the webhook log is for administrators", section="telephony")
    return remote("telephony", "list_webhooks", outcome=query.outcome, limit=query.limit)
