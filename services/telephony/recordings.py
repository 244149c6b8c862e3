"""Fetching call recordings from the PBX and keeping them on the recordings volume.

Where a recording comes from depends on the provider:

* ``asterisk`` — ``MIXMONITOR_FILENAME`` is a path on the PBX; the PBX's monitor
  directory is published over HTTP(S) (``AMI_RECORDINGS_URL``, e.g. nginx in front of
  ``/var/spool/asterisk/monitor``); the path below ``AMI_RECORDINGS_ROOT`` is appended.
* ``mango`` — ``recording_id``: POST ``{MANGO_API_URL}/queries/recording/post/`` with the
  signed form (``action=download``); Mango answers with the file (or a redirect to it).
* ``zadarma`` — ``call_id_with_rec``: GET ``{ZADARMA_API_URL}/v1/pbx/record/request/``
  (signed ``Authorization: key:signature``) gives a temporary link, which is then fetched.
* ``api`` — an http(s) URL on a host in ``RECORDING_ALLOWED_HOSTS``.

The volume (``RECORDINGS_DIR``) is shared with the gateway, which serves the files.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests

from services.kit.config import ROOT
from services.telephony.domain import CONTENT_TYPES, recording_extension
from services.telephony.pbx.mango import mango_sign

TIMEOUTS = (5.0, 30.0)
CHUNK = 64 * 1024


class FetchFailed(Exception):
    """A recording could not be fetched now; ``permanent`` when retrying cannot help."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True)
class Stored:
    path: str  # relative to the recordings directory
    content_type: str
    size: int


def recordings_dir(config: dict[str, Any]) -> Path:
    folder = Path(str(config.get("RECORDINGS_DIR") or "var/recordings"))
    return folder if folder.is_absolute() else ROOT / folder


def zadarma_api_authorization(key: str, secret: str, method: str,
                              params: dict[str, str]) -> str:
    """Zadarma API v1 signature: ``key:base64(hex(hmac_sha1(secret, method + query +
    md5(query))))`` with the parameters sorted (as their PHP client builds them)."""
    query = urlencode(sorted(params.items()))
    signed = method + query + hashlib.md5(query.encode()).hexdigest()
    digest = hmac.new(secret.encode(), signed.encode(), hashlib.sha1).hexdigest()
    return f"{key}:{base64.b64encode(digest.encode()).decode()}"


def asterisk_url(base: str, root: str, ref: str) -> str:
    """``/var/spool/asterisk/monitor/2023/11/14/x.wav`` -> ``{base}/2023/11/14/x.wav``."""
    root = root.rstrip("/") + "/"
    relative = ref[len(root):] if ref.startswith(root) else ref.rsplit("/", 1)[-1]
    if ".." in relative.split("/"):
        raise FetchFailed(f"recording path {ref!r} leaves the monitor directory", True)
    return f"{base.rstrip('/')}/{quote(relative.lstrip('/'))}"


class RecordingFetcher:
    def __init__(self, config: dict[str, Any], session: requests.Session | None = None) -> None:
        self.config = config
        self.session = session or requests.Session()
        self.max_bytes = int(config.get("RECORDING_MAX_BYTES") or 200 * 1024 * 1024)
        self.allowed_hosts = allowed_hosts(config)

    def fetch(self, provider: str, ref: str, target: Path) -> str:
        """Download into ``target``; returns the content type."""
        handler = {"asterisk": self._asterisk, "mango": self._mango,
                   "zadarma": self._zadarma, "api": self._api}.get(provider)
        if handler is None:
            raise FetchFailed(f"no recording source for provider {provider!r}", True)
        return handler(ref, target)

    # -- sources ------------------------------------------------------------------------
    def _setting(self, name: str) -> str:
        value = self.config.get(name)
        if not value:
            # an operator can still configure it: retry rather than give up
            raise FetchFailed(f"{name} is not configured")
        return str(value)

    def _asterisk(self, ref: str, target: Path) -> str:
        url = asterisk_url(self._setting("AMI_RECORDINGS_URL"),
                           str(self.config.get("AMI_RECORDINGS_ROOT")
                               or "/var/spool/asterisk/monitor"), ref)
        token = self.config.get("AMI_RECORDINGS_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self._download("GET", url, target, headers=headers)

    def _mango(self, ref: str, target: Path) -> str:
        key, salt = self._setting("MANGO_API_KEY"), self._setting("MANGO_API_SALT")
        payload = json.dumps({"recording_id": ref, "action": "download"})
        base = str(self.config.get("MANGO_API_URL") or "https://app.mango-office.ru/vpbx")
        url = f"{base.rstrip('/')}/queries/recording/post/"
        form = {"vpbx_api_key": key, "sign": mango_sign(key, payload, salt), "json": payload}
        return self._download("POST", url, target, data=form)

    def _zadarma(self, ref: str, target: Path) -> str:
        key, secret = self._setting("ZADARMA_KEY"), self._setting("ZADARMA_SECRET")
        method = "/v1/pbx/record/request/"
        params = {"call_id": ref}
        base = str(self.config.get("ZADARMA_API_URL") or "https://api.zadarma.com").rstrip("/")
        response = self._request("GET", f"{base}{method}", params=params, headers={
            "Authorization": zadarma_api_authorization(key, secret, method, params)})
        try:
            body = response.json()
        except ValueError:
            raise FetchFailed("zadarma: the record request answered no JSON") from None
        link = body.get("link") or next(iter(body.get("links") or []), None)
        if body.get("status") != "success" or not link:
            raise FetchFailed(f"zadarma: {body.get('message') or 'no link to the recording'}")
        return self._download("GET", str(link), target)

    def _api(self, ref: str, target: Path) -> str:
        host = (urlsplit(ref).hostname or "").lower()
        if host not in self.allowed_hosts:
            raise FetchFailed(f"host {host!r} is not in RECORDING_ALLOWED_HOSTS", True)
        return self._download("GET", ref, target)

    # -- HTTP ---------------------------------------------------------------------------
    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(method, url, timeout=TIMEOUTS, stream=True,
                                            **kwargs)
        except requests.RequestException as exc:
            raise FetchFailed(f"{type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            response.close()
            # 404 is retried too: PBXs announce recordings before the file is in place
            raise FetchFailed(f"HTTP {response.status_code} from {urlsplit(url).hostname}",
                              permanent=response.status_code in (400, 403, 410))
        return response

    def _download(self, method: str, url: str, target: Path, **kwargs: Any) -> str:
        response = self._request(method, url, **kwargs)
        size = 0
        try:
            with target.open("wb") as out:
                for chunk in response.iter_content(CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise FetchFailed(f"recording larger than {self.max_bytes} bytes", True)
                    out.write(chunk)
        except requests.RequestException as exc:
            raise FetchFailed(f"download broke off: {exc}") from None
        finally:
            response.close()
        if size == 0:
            raise FetchFailed("the recording is empty")
        return response.headers.get("Content-Type") or ""


def allowed_hosts(config: dict[str, Any]) -> list[str]:
    raw = config.get("RECORDING_ALLOWED_HOSTS") or ""
    items = raw if isinstance(raw, list) else str(raw).split(",")
    return [str(h).strip().lower() for h in items if str(h).strip()]


class RecordingStore:
    """Files on the recordings volume; written whole or not at all (rename into place)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def store(self, fetcher: RecordingFetcher, provider: str, ref: str,
              relative_for: Any) -> Stored:
        """Fetch ``ref`` and keep it at ``relative_for(extension)``."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=".incoming-", dir=self.root)
        os.close(handle)
        temp_path = Path(temp)
        try:
            content_type = fetcher.fetch(provider, ref, temp_path)
            extension = recording_extension(content_type, ref)
            relative = str(relative_for(extension))
            final = self.root / relative
            final.parent.mkdir(parents=True, exist_ok=True)
            size = temp_path.stat().st_size
            os.replace(temp_path, final)
        finally:
            temp_path.unlink(missing_ok=True)
        return Stored(relative, CONTENT_TYPES.get(extension, "application/octet-stream"), size)
