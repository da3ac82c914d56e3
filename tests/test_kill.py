"""A large run killed with SIGKILL while messages flow over two connections (two worker
processes): the rerun delivers to everyone, and the only duplicates are the messages that
were in flight, at most one per connection."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from typing import Any

from .conftest import Project, SmtpServer

READERS = 400
CONNECTIONS = 2


def test_sigkill_mid_run_leaves_at_most_one_duplicate_per_connection(
    project: Project, smtp_server: SmtpServer
) -> None:
    addresses = [f"r{n}@example.org" for n in range(READERS)]
    project.subscribers([{"email": a} for a in addresses])
    project.use_smtp(smtp_server, connections=CONNECTIONS)
    taken = {"n": 0}
    reached = threading.Event()

    async def count(session: Any, envelope: Any) -> None:
        taken["n"] += 1
        if taken["n"] == READERS // 3:
            reached.set()

    smtp_server.handler.data_hook = count
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "send", "--config", str(project.config)],
        cwd=project.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert reached.wait(120), "the send never got going"
        process.send_signal(signal.SIGKILL)  # the workers die with it (PR_SET_PDEATHSIG)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    time.sleep(0.5)  # the workers' last messages, if any, reach the server
    received_at_kill = len(smtp_server.handler.received)
    assert 0 < received_at_kill < READERS, "the kill should land mid-run"

    result = project.run("send", timeout=300)
    assert result.returncode == 0, result.stderr
    counts = {a: smtp_server.handler.count_for(a) for a in addresses}
    assert min(counts.values()) == 1
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= CONNECTIONS, f"{duplicates} duplicates for {CONNECTIONS} connections"
