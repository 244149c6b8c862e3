"""`make run` keeps the CRM up: a process that dies is restarted with a growing back-off
and the reason is logged; the others keep running."""
from __future__ import annotations

import os

from deploy.run import Supervisor
from tests.support.infra import wait_until


def test_a_dead_process_is_restarted_with_back_off_and_the_rest_keep_running():
    said: list[str] = []
    supervisor = Supervisor({"crashy": 'python -c "import sys; sys.exit(3)"',
                             "steady": 'python -c "import time; time.sleep(60)"'},
                            dict(os.environ), min_delay=0.05, max_delay=0.2, say=said.append)
    supervisor.start_all()
    steady = supervisor.procs["steady"]
    try:
        def restarted_thrice() -> bool:
            supervisor.poll()
            return supervisor.restarts["crashy"] >= 3

        wait_until(restarted_thrice, timeout=30, interval=0.02, message="three restarts")
        assert supervisor.restarts["steady"] == 0 and steady.poll() is None
        assert said[0].startswith("crashy exited with code 3")
        delays = [line.rsplit("restarting in ", 1)[1] for line in said]
        assert delays[:3] == ["0.05 s", "0.1 s", "0.2 s"]
        os.killpg(steady.pid, 9)
        wait_until(lambda: (supervisor.poll(), supervisor.restarts["steady"] == 1)[1],
                   timeout=10, interval=0.02, message="steady restarted")
        assert any(line.startswith("steady killed by signal 9") for line in said)
    finally:
        supervisor.stop()
