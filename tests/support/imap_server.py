"""A real IMAP server for tests: Debian's Dovecot (deploy/ensure-imap.sh installs it),
started per test on a free loopback port with its own configuration, mail and state in a
temporary folder, as an unprivileged process (``nobody`` when the tests run as root).
Messages are put in with a real IMAP APPEND and looked at with real IMAP commands."""
from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  mailbox Processed {{
    auto = create
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ImapServer:
    host: str
    port: int
    users: dict[str, str]
    root: Path

    def client(self, user: str) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        conn.login(user, self.users[user])
        return conn

    def append(self, user: str, raw: bytes, folder: str = "INBOX", flags: str = "") -> None:
        conn = self.client(user)
        try:
            status, data = conn.append(folder, f"({flags})" if flags else None, None, raw)
            assert status == "OK", data
        finally:
            conn.logout()

    def messages(self, user: str, folder: str = "INBOX") -> dict[int, str]:
        """UID → its flags, as the server tells them."""
        conn = self.client(user)
        try:
            conn.select(folder, readonly=True)
            status, data = conn.uid("FETCH", "1:*", "(FLAGS)")
            assert status == "OK", data
            found: dict[int, str] = {}
            for item in data:
                if not isinstance(item, bytes) or b"UID" not in item:
                    continue
                text = item.decode()
                uid = int(text.split("UID ", 1)[1].split()[0].rstrip(")"))
                found[uid] = text.split("FLAGS (", 1)[1].split(")", 1)[0]
            return found
        finally:
            conn.logout()


@contextmanager
def dovecot(users: dict[str, str]) -> Iterator[ImapServer]:
    """Its own folder under /tmp (not pytest's tmp_path, whose parents only root may
    enter), removed afterwards."""
    if not Path(DOVECOT).exists():
        raise RuntimeError("dovecot is not installed: run deploy/ensure-imap.sh")
    root = Path(tempfile.mkdtemp(prefix="crm-imap-"))
    for sub in ("run", "state", "home"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "passwd").write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in users.items()))
    if os.geteuid() == 0:
        user, group = "nobody", "nogroup"
        entry = pwd.getpwnam(user)
        # Dovecot drops nothing when it never had anything: it runs as nobody throughout.
        for path in [root, *root.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)
        prefix = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                  "--clear-groups"]
    else:
        user = pwd.getpwuid(os.geteuid()).pw_name
        group = user
        prefix = []
    port = free_port()
    config = root / "dovecot.conf"
    config.write_text(CONFIG.format(root=root, user=user, group=group, port=port))
    if os.geteuid() == 0:
        os.chown(config, pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid)
    process = subprocess.Popen([*prefix, DOVECOT, "-F", "-c", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    server = ImapServer("127.0.0.1", port, users, root)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                server.client(next(iter(users))).logout()
                break
            except (OSError, imaplib.IMAP4.error):
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (root / "dovecot.log")
                    raise RuntimeError("dovecot did not start: " + (
                        log.read_text()[-2000:] if log.exists() else "")) from None
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
