"""py-spy sampling a running service process, and where its time went."""
from __future__ import annotations

import collections
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path


class Profile:
    """py-spy (when installed) sampling a service process for ``seconds``;
    ``top`` lists where its time went, by the function on top of the stack and by our own
    code's frames."""

    def __init__(self, pid: int, seconds: float, name: str = "service") -> None:
        self.name = name
        self.path = Path(tempfile.mkdtemp(prefix="crm-bench-pyspy-")) / "profile.txt"
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.proc: subprocess.Popen[bytes] | None = None
        if Path(spy).exists():
            self.proc = subprocess.Popen(
                [spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200",
                 "--nonblocking", "-f", "raw", "-o", str(self.path)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish(self) -> None:
        """Stop sampling now (py-spy writes what it has on SIGINT)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def top(self, count: int = 12) -> None:
        if self.proc is None:
            print("(py-spy is not installed: no profile)", flush=True)
            return
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # py-spy can hang on a busy machine: no profile
            self.proc.kill()
            self.proc.wait()
            print("(py-spy did not finish: no profile)", flush=True)
            return
        leaf: collections.Counter[str] = collections.Counter()
        ours: collections.Counter[str] = collections.Counter()
        total = 0
        for line in self.path.read_text().splitlines() if self.path.exists() else []:
            stack, _, samples = line.rpartition(" ")
            if not samples.isdigit():  # py-spy's own remarks ("... of ...") among the stacks
                continue
            frames = stack.split(";")
            n = int(samples)
            total += n
            leaf[_short(frames[-1])] += n
            own = [f for f in frames if "services/" in f or "gateway/" in f]
            if own:
                ours[_short(own[-1])] += n
        if not total:
            print("(py-spy recorded nothing: ptrace not permitted?)", flush=True)
            return
        print(f"where the {self.name} process spends its time ({total} samples):")
        for title, counter in (("on top of the stack", leaf), ("innermost own frame", ours)):
            print(f"  {title}:")
            for name, n in counter.most_common(count):
                print(f"    {100 * n / total:5.1f}%  {name}")
        shutil.rmtree(self.path.parent, ignore_errors=True)


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "python3.11/", "/services/", "/gateway/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})"
