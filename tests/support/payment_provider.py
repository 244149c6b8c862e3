"""A YooKassa-shaped payment provider on loopback: ``POST /v3/payments`` (with an
``Idempotence-Key``: the same key gives the same payment) and ``GET /v3/payments/<id>``;
``succeed(id)`` plays the payer completing the payment; ``notification(id)`` is the
webhook body the provider would send."""
from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class PaymentProviderStandIn:
    def __init__(self) -> None:
        self.payments: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self.created: list[dict[str, Any]] = []  # (headers, body) of each POST
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                found = outer.payments.get(self.path.rsplit("/", 1)[-1])
                self._send(200 if found else 404, found or {"code": "not_found"})

            def do_POST(self) -> None:  # noqa: N802
                key = self.headers.get("Idempotence-Key")
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.created.append({"key": key, "body": body,
                                      "auth": self.headers.get("Authorization")})
                if self.path != "/v3/payments" or not key:
                    self._send(400, {"code": "invalid_request"})
                    return
                if key not in outer.by_key:
                    pid = str(uuid.uuid4())
                    outer.by_key[key] = pid
                    outer.payments[pid] = {
                        "id": pid, "status": "pending", "paid": False,
                        "amount": body["amount"], "metadata": body.get("metadata", {}),
                        "description": body.get("description"),
                        "confirmation": {"type": "redirect",
                                         "confirmation_url": f"{outer.url}/checkout/{pid}",
                                         "return_url": body["confirmation"]["return_url"]}}
                self._send(200, outer.payments[outer.by_key[key]])

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def succeed(self, provider_id: str) -> None:
        self.payments[provider_id].update(status="succeeded", paid=True)

    def notification(self, provider_id: str) -> dict[str, Any]:
        payment = self.payments[provider_id]
        return {"type": "notification", "event": "payment.succeeded",
                "object": {k: payment[k] for k in ("id", "status", "amount", "metadata")}}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
