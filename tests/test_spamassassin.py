"""SpamAssassin (Debian's `spamassassin`, local tests only: `-L`, no network) on every digest
the sample data produces: no points at all from rules the message's content can influence.
The score as a receiving server would see it when the message arrives from a host without
reverse DNS is reported, not asserted (it depends on the relay, not on us)."""

from __future__ import annotations

import mailbox
import re
import shutil
import subprocess
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from .conftest import Project

SPAMASSASSIN = shutil.which("spamassassin")
pytestmark = pytest.mark.skipif(SPAMASSASSIN is None, reason="needs Debian's spamassassin")

# Rules about how the message travelled (there is no Received header in a Maildir file, or
# the simulated one names a host without reverse DNS): no content of ours changes them.
TRANSPORT = {"NO_RECEIVED", "NO_RELAYS", "RDNS_NONE", "RCVD_ILLEGAL_IP"}
# As Postfix writes it for a client whose address has no PTR record ("unknown").
NO_RDNS = (
    "Received: from mail.example.org (unknown [93.184.216.34])\r\n"
    "\tby mx.example.net (Postfix) with ESMTPS id 4ABC123DEF\r\n"
    "\tfor <reader@example.net>; {now}\r\n"
)
RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s", re.MULTILINE)


def scores(messages: list[bytes], home: Path) -> list[tuple[float, dict[str, float]]]:
    """SpamAssassin's total and the points of each rule that hit, per message (one process
    for them all, as an mbox: the rules load once)."""
    box = mailbox.mbox(home / "in.mbox")
    box.clear()
    for message in messages:
        box.add(mailbox.mboxMessage(message))
    box.flush()
    box.close()
    with (home / "in.mbox").open("rb") as source:
        out = subprocess.run(
            [str(SPAMASSASSIN), "-L", "-t", "-x", "--mbox"],
            stdin=source,
            capture_output=True,
            check=False,
            timeout=300,
            env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        ).stdout.decode("utf-8", "replace")
    reports = out.split("Content analysis details:")[1:]
    assert len(reports) == len(messages), out[-2000:]
    results = []
    for report in reports:
        report = report.split("\n\n", 2)
        details = "\n".join(report[:2])
        total = float(re.match(r"\s*\((-?[\d.]+) points", details).group(1))  # type: ignore[union-attr]
        results.append((total, {name: float(pts) for pts, name in RULE.findall(details)}))
    return results


@pytest.mark.parametrize("web", [False, True], ids=["maildir", "with-digest-serve"])
def test_every_sample_digest_scores_nothing_from_its_content(
    project: Project, tmp_path: Path, web: bool
) -> None:
    if web:
        project.settings(unsubscribe_url="https://news.office.example/digest/unsubscribe")
    project.run("send", check=True)
    files = sorted((project.outbox / "new").iterdir())
    assert len(files) == 7
    home = tmp_path / "sa"
    home.mkdir()
    messages = [f.read_bytes() for f in files]
    plain = scores(messages, home)
    received = NO_RDNS.format(now=format_datetime(datetime.now(UTC))).encode()
    relayed = scores([received + m for m in messages], home)
    for (total, rules), name in zip(plain, files, strict=True):
        from_content = {rule: points for rule, points in rules.items() if rule not in TRANSPORT}
        assert all(points == 0.0 for points in from_content.values()), (name.name, rules)
        assert total <= 0.0
    for total, rules in relayed:
        print(f"relayed from a host without reverse DNS: {total} points {rules}")
        from_content = {rule: points for rule, points in rules.items() if rule not in TRANSPORT}
        assert all(points == 0.0 for points in from_content.values()), rules
