"""Readers who unsubscribe while a send is under way get nothing that had not been handed to
the server yet (the probe: 800 of 1,000 who unsubscribed 3 s into a 21 s send still got it)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

from digest.state import State, WebChanges

from .conftest import Project, SmtpServer

READERS = 300


def test_unsubscribes_during_a_run_are_honoured_within_a_second(
    project: Project, smtp_server: SmtpServer
) -> None:
    addresses = [f"r{n:03}@example.org" for n in range(READERS)]
    project.subscribers([{"email": a} for a in addresses])
    project.use_smtp(smtp_server, max_per_second=100)  # a 3-second send
    arrivals: dict[str, float] = {}
    started = threading.Event()

    async def stamp(session: Any, envelope: Any) -> None:
        arrivals[envelope.rcpt_tos[0]] = time.monotonic()
        started.set()

    smtp_server.handler.data_hook = stamp
    project.run("items", check=True)  # the state exists before the run starts
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "send", "--json", "--config", str(project.config)],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert started.wait(60)
    time.sleep(0.5)
    leaving = addresses[::2]  # half of them, mid-run
    with State(project.state) as state:
        changes = WebChanges(state)
        for address in leaving:
            changes.unsubscribe(address, "one-click", datetime.now(UTC))
    unsubscribed_at = time.monotonic()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    late = [a for a in leaving if arrivals.get(a, 0) > unsubscribed_at + 1.5]
    assert late == [], f"{len(late)} got their digest more than a second after unsubscribing"
    got = [a for a in leaving if a in arrivals]
    assert len(got) < len(leaving) // 2  # most of those leaving were still waiting their turn
    report = json.loads(out)
    withdrawn = [
        s["email"]
        for s in report["subscribers"]
        if s["status"] == "skipped" and "unsubscribed during the run" in (s["error"] or "")
    ]
    assert set(withdrawn) == set(leaving) - set(got)
    again = project.run("send", "--json")  # and the next run sends them nothing either
    assert json.loads(again.stdout)["sent"] == 0
