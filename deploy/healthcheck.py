"""Container health checks: ``python -m deploy.healthcheck <service>`` exits 0 when the
service answers its ``health`` RPC (which also touches its database); ``gateway`` checks
that the web server answers."""
from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

from services.kit.config import SERVICES, load_component_config


def check(name: str) -> bool:
    if name == "gateway":
        url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/login"
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False
    if name == "mail":  # the SMTP listener: it greets
        import smtplib

        config = load_component_config("intake")
        try:
            with smtplib.SMTP("127.0.0.1", int(config["SMTP_LISTEN_PORT"]), timeout=3) as smtp:
                return smtp.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False
    from gateway.rpc import RpcClient

    client = RpcClient(load_component_config(name)["AMQP_URI"], timeout=3, name="health")
    try:
        return bool(client.call(name, "health").get("status") == "ok")
    except Exception:
        return False
    finally:
        client.close()


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) == 2 else ""
    if target not in (*SERVICES, "gateway", "mail"):
        sys.exit("usage: python -m deploy.healthcheck "
                 f"{{{'|'.join((*SERVICES, 'gateway', 'mail'))}}}")
    sys.exit(0 if check(target) else 1)
