"""Webhooks of cloud PBXs (T1): Mango Office and Zadarma.  Public (no token): the PBX
signs each request and the telephony service checks the signature with its secrets; the
gateway only forwards what arrived.  A refused signature answers 403, a malformed
payload 422; a repeat answers 200 and changes nothing."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Response, request
from pydantic import ConfigDict, Field

from gateway.api import bp
from gateway.api.openapi import public
from gateway.api.schema import Limit, Output, Query, endpoint
from gateway.auth import client_address
from gateway.remote import remote

Signed = Annotated[str, Limit(20_000, required=False)]


class Outcome(Output):
    status: Literal["accepted", "ignored", "duplicate", "ok"]
    call_id: int | None = None


class MangoForm(Query):
    vpbx_api_key: Signed = ""
    sign: Signed = ""
    event_json: Signed = Field("", alias="json", description="the event, as JSON text")


class ZadarmaForm(Query):
    """Zadarma's fields as it posts them (``event`` and the event's own)."""

    model_config = ConfigDict(extra="allow")
    event: Annotated[str, Limit(100, required=False)] = ""


class EchoQuery(Query):
    zd_echo: Annotated[str, Limit(200, required=False)] | None = Field(
        None, description="the URL check: answered as text")


@bp.route("/webhooks/mango/<path:event>", methods=["POST"])
@endpoint(form=MangoForm, response=Outcome, statuses={403: "signature refused"})
def webhooks_mango(event: str, form: MangoForm) -> Any:
    """Mango Office VPBX realtime events: events/call, events/summary, events/record/added
    (form fields vpbx_api_key, sign, json)."""
    return remote("telephony", "mango_webhook", event, request.form.to_dict(),
                  remote_addr=client_address())


@bp.route("/webhooks/zadarma")
@endpoint(query=EchoQuery, response=Outcome, content_types=("application/json",
                                                            "text/plain"))
def webhooks_zadarma_check(query: EchoQuery) -> Any:
    """Zadarma's URL check: ``?zd_echo=X`` answers X as text."""
    if query.zd_echo is not None:
        return Response(query.zd_echo, mimetype="text/plain")
    return {"status": "ok"}


@bp.route("/webhooks/zadarma", methods=["POST"])
@endpoint(form=ZadarmaForm, response=Outcome, statuses={403: "signature refused"})
def webhooks_zadarma(form: ZadarmaForm) -> Any:
    """Zadarma notifications (NOTIFY_START, NOTIFY_END, NOTIFY_OUT_START, NOTIFY_OUT_END,
    NOTIFY_RECORD; Signature header)."""
    return remote("telephony", "zadarma_webhook", request.form.to_dict(),
                  request.headers.get("Signature"), remote_addr=client_address())


public("api.webhooks_mango")
public("api.webhooks_zadarma")
public("api.webhooks_zadarma_check")
