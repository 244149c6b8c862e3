"""nameko extensions of the telephony service: the AMI stream (an entrypoint), the PBX
webhook adapters and the recording fetcher (dependencies with background threads)."""
from __future__ import annotations

import dataclasses
import logging
import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import eventlet
from eventlet.event import Event
from nameko.extensions import DependencyProvider, Entrypoint
from sqlalchemy import text, update
from sqlalchemy.orm import sessionmaker

from services.kit import clock
from services.kit.background import BackgroundWorker
from services.kit.db import make_engine, rowcount, transaction
from services.kit.dependencies import UnitOfWork
from services.kit.envelope import Envelope
from services.kit.lease import AdvisoryLease
from services.kit.messaging import add_to_outbox
from services.kit.timer import configured_interval
from services.telephony import domain, models
from services.telephony.models import Call
from services.telephony.pbx.ami import AmiClient, CallAssembler, LineRules
from services.telephony.pbx.mango import MangoWebhooks
from services.telephony.pbx.records import CallEvent
from services.telephony.pbx.zadarma import ZadarmaWebhooks
from services.telephony.recordings import (
    FetchFailed,
    RecordingFetcher,
    RecordingStore,
    recordings_dir,
)
from services.telephony.schemas import call_dict

log = logging.getLogger("crm.telephony")


def _zone(name: Any, default: str = "Europe/Moscow") -> ZoneInfo:
    return ZoneInfo(str(name or default))


_seconds = configured_interval


def _uow(container: Any) -> UnitOfWork | None:
    return next((d for d in container.dependencies if isinstance(d, UnitOfWork)), None)


# --------------------------------------------------------------------------- AMI


def line_rules(config: dict[str, Any]) -> LineRules:
    options: dict[str, Any] = {}
    if config.get("AMI_EXTENSION_PATTERN"):
        options["extension_pattern"] = str(config["AMI_EXTENSION_PATTERN"])
    if config.get("AMI_TRUNK_CONTEXTS"):
        options["trunk_contexts"] = frozenset(
            c.strip() for c in str(config["AMI_TRUNK_CONTEXTS"]).split(",") if c.strip())
    if config.get("AMI_TRUNK_PREFIXES"):
        options["trunk_channel_prefixes"] = tuple(
            c.strip() for c in str(config["AMI_TRUNK_PREFIXES"]).split(",") if c.strip())
    rules = dataclasses.replace(LineRules(), **options)
    re.compile(rules.extension_pattern)  # a typo in the pattern fails at start-up
    return rules


class AmiStream(Entrypoint):
    """Runs an ``AmiClient`` while this process holds the cluster-wide AMI lease (one
    AMI session per cluster; another replica takes over when the holder dies).  Every call
    notice the assembler produces runs the decorated method in a worker, with the notices
    of one call handled one after another, in order; a failed one is retried."""

    RETRIES = 3

    def setup(self) -> None:
        config = self.container.config
        self.host = config.get("AMI_HOST")
        self.client: AmiClient | None = None
        self.lease: AdvisoryLease | None = None
        self._running = False
        self._inflight: dict[str, Event] = {}
        self.connected = False

    def start(self) -> None:
        if not self.host:
            return
        self._running = True
        self.container.spawn_managed_thread(self._run, identifier="ami-stream")

    def stop(self) -> None:
        self._running = False
        client = self.client
        if client is not None:
            client.stop(timeout=2)
        if self.lease is not None:
            self.lease.dispose()

    def kill(self) -> None:
        self.stop()

    def _run(self) -> None:
        config = self.container.config
        self.lease = AdvisoryLease(config["DB_URL"], "telephony.ami")
        retry = _seconds(config, "AMI_LEASE_RETRY_SECONDS", 5)
        while self._running:
            try:
                if not self.lease.try_acquire():
                    eventlet.sleep(retry)
                    continue
            except Exception:
                log.exception("AMI lease: database unavailable")
                eventlet.sleep(retry)
                continue
            self.client = self._client(config)
            watcher = eventlet.spawn(self._watch_lease, self.client, retry)
            try:
                self.client.run()
            finally:
                watcher.kill()
                self.client = None
                self.lease.release()

    def _client(self, config: dict[str, Any]) -> AmiClient:
        assembler = CallAssembler(line_rules(config),
                                  cdr_timezone=_zone(config.get("AMI_CDR_TIMEZONE")))
        return AmiClient(
            str(self.host), int(config.get("AMI_PORT") or 5038),
            str(config.get("AMI_USERNAME") or ""), str(config.get("AMI_SECRET") or ""),
            on_record=self._deliver, on_started=self._deliver, assembler=assembler,
            reconnect_delay=_seconds(config, "AMI_RECONNECT_SECONDS", 1.0),
            max_reconnect_delay=_seconds(config, "AMI_MAX_RECONNECT_SECONDS", 60.0),
            ping_interval=_seconds(config, "AMI_PING_SECONDS", 30.0))

    def _watch_lease(self, client: AmiClient, every: float) -> None:
        while self._running:
            eventlet.sleep(every)
            if self.lease is not None and not self.lease.alive():
                log.warning("AMI lease lost: closing the AMI session")
                client.stop(timeout=2)
                return

    def _deliver(self, item: CallEvent, attempt: int = 1) -> None:
        """Called by the AMI client for each call notice, in stream order."""
        key = item.provider_call_id
        previous = self._inflight.get(key)
        if previous is not None and attempt == 1:
            previous.wait()  # the same call's earlier notice first
        done = self._inflight[key] = Event() if attempt == 1 else self._inflight[key]

        def handle_result(worker_ctx: Any, result: Any, exc_info: Any) -> Any:
            if exc_info is not None and attempt < self.RETRIES and self._running:
                log.warning("AMI notice for call %s failed (%s); retrying", key, exc_info[1])
                eventlet.spawn_after(attempt, self._deliver, item, attempt + 1)
                return result, exc_info
            if exc_info is not None:
                log.error("AMI notice for call %s lost after %d tries: %s", key, attempt,
                          exc_info[1])
            if not done.ready():
                done.send(None)
            if self._inflight.get(key) is done:
                del self._inflight[key]
            return result, exc_info

        self.container.spawn_worker(self, (item,), {}, handle_result=handle_result)


ami_notice = AmiStream.decorator


# --------------------------------------------------------------------------- webhooks


class PbxWebhooks(DependencyProvider):
    """The Mango and Zadarma webhook adapters of this process (they remember recent
    Mango ``seq`` numbers, so they live as long as the process)."""

    def setup(self) -> None:
        config = self.container.config
        self.mango = (MangoWebhooks(str(config["MANGO_API_KEY"]), str(config["MANGO_API_SALT"]))
                      if config.get("MANGO_API_KEY") and config.get("MANGO_API_SALT") else None)
        self.zadarma = (ZadarmaWebhooks(str(config["ZADARMA_SECRET"]),
                                        timezone=_zone(config.get("ZADARMA_TIMEZONE")))
                        if config.get("ZADARMA_SECRET") else None)
        self.allowed_recording_hosts = [
            h.strip().lower() for h in str(config.get("RECORDING_ALLOWED_HOSTS") or "").split(",")
            if h.strip()]

    def get_dependency(self, worker_ctx: Any) -> PbxWebhooks:
        return self


# --------------------------------------------------------------------------- recordings


class RecordingWorker(BackgroundWorker):
    """Downloads recordings of finished calls into the recordings volume.

    Due rows are claimed with ``FOR UPDATE SKIP LOCKED`` and leased by moving
    ``recording_next_at`` forward, so several replicas never fetch the same file at once
    and a crash mid-download is retried after the lease.  A failure is retried with
    exponential back-off; after ``RECORDING_MAX_ATTEMPTS`` the recording is marked
    ``failed`` (a person can ask again with ``retry_recording``).
    """

    identifier = "recordings"

    def setup(self) -> None:
        config = self.container.config
        concurrency = int(config.get("RECORDING_CONCURRENCY") or 4)
        self.engine = make_engine(config["DB_URL"], pool_size=concurrency + 1)
        self.factory = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.fetcher = RecordingFetcher(config)
        self.store = RecordingStore(recordings_dir(config))
        self.base_delay = _seconds(config, "RECORDING_RETRY_SECONDS", 30)
        self.max_attempts = int(config.get("RECORDING_MAX_ATTEMPTS") or 8)
        self.lease = timedelta(seconds=_seconds(config, "RECORDING_LEASE_SECONDS", 300))
        self.start_loop_state(concurrency, _seconds(config, "RECORDING_POLL_SECONDS", 5))

    def run_pass(self) -> None:
        while self._running and self.run_once():
            pass

    def run_once(self, batch: int = 10) -> int:
        """Claim and fetch one batch of due recordings; returns how many were claimed."""
        with transaction(self.factory) as session:
            rows = session.execute(text(
                "UPDATE calls SET recording_next_at = now() + make_interval(secs => :lease) "
                "WHERE id IN (SELECT id FROM calls WHERE recording_status = 'pending' "
                "AND status = 'finished' AND recording_next_at <= now() "
                "ORDER BY recording_next_at LIMIT :n FOR UPDATE SKIP LOCKED) "
                "RETURNING id, provider, recording_ref, started_at, recording_attempts"),
                {"lease": self.lease.total_seconds(), "n": batch}).all()
        for row in rows:
            self.pool.spawn_n(self._fetch_one, row)
        self.pool.waitall()
        return len(rows)

    def _fetch_one(self, row: Any) -> None:
        try:
            stored = self.store.store(self.fetcher, row.provider, row.recording_ref,
                                      lambda ext: domain.recording_path(
                                          row.id, row.provider, row.started_at, ext))
        except FetchFailed as exc:
            self._failed(row, exc.reason, exc.permanent)
            return
        except OSError as exc:  # the volume is full or not writable: ours to fix, retry
            self._failed(row, f"storing failed: {exc}", False)
            return
        except Exception as exc:
            log.exception("fetching the recording of call %s failed", row.id)
            self._failed(row, f"{type(exc).__name__}: {exc}", False)
            return
        self._update(row, {"recording_status": "stored", "recording_path": stored.path,
                           "recording_type": stored.content_type,
                           "recording_size": stored.size, "recording_error": None,
                           "recording_attempts": row.recording_attempts + 1,
                           "recording_next_at": None}, announce=True)
        log.info("recording of call %s stored (%d bytes)", row.id, stored.size)

    def _failed(self, row: Any, reason: str, permanent: bool) -> None:
        attempts = row.recording_attempts + 1
        if permanent or attempts >= self.max_attempts:
            log.error("recording of call %s failed for good: %s", row.id, reason)
            self._update(row, {"recording_status": "failed", "recording_error": reason[:2000],
                               "recording_attempts": attempts, "recording_next_at": None},
                         announce=True)
            return
        delay = min(self.base_delay * 2 ** (attempts - 1), 3600.0)
        log.warning("recording of call %s: %s (try %d, again in %.0f s)", row.id, reason,
                    attempts, delay)
        self._update(row, {"recording_error": reason[:2000], "recording_attempts": attempts,
                           "recording_next_at": clock.now() + timedelta(seconds=delay)},
                     announce=False)

    def _update(self, row: Any, values: dict[str, Any], announce: bool) -> None:
        with transaction(self.factory) as session:
            # the reference may have changed meanwhile (a newer recording notice): then
            # this result is stale and the row keeps waiting for the new one
            if announce:
                values = {**values, "revision": Call.revision + 1,
                          "updated_at": clock.now()}
            done = rowcount(session.execute(update(Call).where(
                Call.id == row.id, Call.recording_ref == row.recording_ref,
                Call.recording_status == "pending").values(**values)))
            if not done or not announce:
                return
            call = session.get(Call, row.id)
            if call is not None and call.finished_published:
                add_to_outbox(session, models.outbox,
                              Envelope.new("call_updated", call_dict(call)))
        uow = _uow(self.container)
        if announce and uow is not None:
            uow.wake_relay()
