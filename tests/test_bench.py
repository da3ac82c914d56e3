"""The throughput benchmark runs end to end on a small N (figures are not checked: no timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "throughput.py"
EXIT_NO_TOOLS = 3  # bench/throughput.py: smtp-sink/smtp-source could not be fetched
# Small: the test shows the benchmark runs and reports, not how fast digest is. (Under 200
# subscribers the send stays in one process; worker processes are tested in
# test_delivery_faults.py.)
SUBSCRIBERS = 20

KEYS = {
    "subscribers",
    "digests_per_s",
    "wire_per_s",
    "ratio",
    "peak_rss_mb",
    "avg_message_bytes",
    "connections",
    "sent",
    "sink_received",
    "machine",
}


def test_benchmark_sends_every_digest_through_smtp_sink(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--subscribers", str(SUBSCRIBERS), "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode == EXIT_NO_TOOLS:
        pytest.skip(f"postfix's smtp-sink/smtp-source unavailable: {result.stderr.strip()}")
    assert result.returncode == 0, result.stdout + result.stderr

    figures = json.loads(out.read_text())
    assert figures.keys() >= KEYS
    assert figures["subscribers"] == SUBSCRIBERS
    assert figures["connections"] == 2
    assert figures["sent"] == SUBSCRIBERS
    assert figures["sink_received"] == SUBSCRIBERS
    assert figures["failed"] == 0
    assert figures["ratio"] > 0
    assert figures["digests_per_s"] > 0 and figures["wire_per_s"] > 0
    assert figures["peak_rss_mb"] > 0
    # each process's own high-water mark, sampled from /proc, largest first
    assert figures["process_peaks_mb"][0] == figures["max_process_rss_mb"] > 0
    # what each is: at this N, digest send alone
    assert figures["process_roles"] == ["send"] * len(figures["process_peaks_mb"])
    assert figures["avg_message_bytes"] > 1000
    assert 5 <= figures["avg_items_per_digest"] <= 40  # "about 20", loosely
    assert "digests/s" in result.stdout and "ratio" in result.stdout
    for phase in ("steal_share_wire_before", "steal_share_digest", "steal_share_wire_after"):
        assert 0 <= figures[phase] < 1  # from /proc/stat, on Linux
    assert len(figures["wire_runs_per_s"]) == 6  # three before digest send, three after
    assert abs(figures["wire_message_bytes_before"] / figures["avg_message_bytes"] - 1) < 0.25
