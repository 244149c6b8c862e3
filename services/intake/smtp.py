"""The SMTP listener: ``python -m services.intake.smtp`` (Procfile ``mail``).

Takes mail for the company's mailboxes on ``SMTP_LISTEN_HOST:SMTP_LISTEN_PORT`` (behind
the MX or as an LMTP-style hop from the mail server), stores attachments on the files
volume and hands each message to intake's ``receive_mail``.  A message is acknowledged
(250) only after intake has committed it, so a sender never hears "delivered" for a
message that was lost: intake down or late gives 451 and the sender retries.  Refusals
(oversized, unreadable) are logged with the reason."""
from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.feed import files_dir, max_file_bytes, remove_stored, store
from gateway.rpc import RpcClient
from services.intake.mail import MalformedMail, parse
from services.kit.config import ROOT, load_component_config
from services.kit.errors import CrmError, ValidationError

log = logging.getLogger("crm.intake.smtp")


class IntakeHandler:
    def __init__(self, rpc: RpcClient, config: dict[str, Any], workers: int = 8) -> None:
        self.rpc = rpc
        folder = files_dir(config)
        self.folder = folder if folder.is_absolute() else ROOT / folder
        self.file_limit = max_file_bytes(config)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mail")

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        mailbox = (envelope.rcpt_tos or [""])[0]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self.deliver, raw,
                                          envelope.mail_from or "", mailbox, session.peer)

    def deliver(self, raw: bytes, mail_from: str, mailbox: str, peer: Any) -> str:
        try:
            parsed = parse(raw, mail_from, mailbox)
        except MalformedMail as exc:
            log.warning("refused mail from %s (%s): %s", mail_from, peer, exc)
            return f"550 5.6.0 {exc}"
        stored = []
        try:
            for name, payload in parsed.files:
                stored.append(store(io.BytesIO(payload), name, self.folder, self.file_limit,
                                    field="attachments").as_dict())
        except ValidationError as exc:
            remove_stored(self.folder, [f["key"] for f in stored])
            log.warning("refused mail %s from %s: %s", parsed.mail["message_id"], mail_from, exc)
            return f"552 5.3.4 {exc.message}"
        try:
            result = self.rpc.call("intake", "receive_mail",
                                   {**parsed.mail, "attachments": stored}, timeout=10)
        except ValidationError as exc:
            remove_stored(self.folder, [f["key"] for f in stored])
            log.warning("refused mail %s: %s", parsed.mail["message_id"], exc)
            return f"550 5.6.0 {exc.message}"
        except CrmError as exc:  # intake down or late: the sender keeps it and retries
            remove_stored(self.folder, [f["key"] for f in stored])
            log.warning("mail %s deferred: %s", parsed.mail["message_id"], exc)
            return "451 4.3.0 try again later"
        if result.get("outcome") not in ("lead", "feed"):
            remove_stored(self.folder, [f["key"] for f in stored])
        log.info("mail %s from %s: %s", parsed.mail["message_id"], parsed.mail["from"],
                 result.get("outcome"))
        return "250 OK"


def main() -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    config = load_component_config("intake")
    logging.basicConfig(level=str(config.get("LOG_LEVEL", "INFO")), stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("kombu", "amqp", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    rpc = RpcClient(config["AMQP_URI"], timeout=float(config.get("RPC_TIMEOUT", 5)),
                    name="mail")
    controller = Controller(IntakeHandler(rpc, config), hostname=config["SMTP_LISTEN_HOST"],
                            port=int(config["SMTP_LISTEN_PORT"]),
                            data_size_limit=int(config["SMTP_MAX_BYTES"]),
                            server_hostname=os.environ.get("SMTP_HOSTNAME", "crm"))
    controller.start()
    log.info("SMTP listener on %s:%s", config["SMTP_LISTEN_HOST"], config["SMTP_LISTEN_PORT"])
    signal.sigwait({signal.SIGTERM, signal.SIGINT})  # blocked in main(): wait for one
    controller.stop()
    rpc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
