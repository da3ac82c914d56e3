"""End to end through a real MTA: `digest send` hands the digests to a throwaway Postfix on
loopback with VERP envelope senders; Postfix accepts a message for a user that does not
exist, fails to deliver it, and bounces it to `bounces+TOKEN@digest.test`, which it delivers
into the bounces Maildir; `digest bounces` then suppresses exactly that subscriber.

Needs Debian's postfix (`apt-get install postfix`; .ci/run installs it) and root (Postfix
sets its queue's owners). The instance has its own configuration, queue and mail folders in
a temporary directory, listens on 127.0.0.1 only, runs no chroot, and is stopped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Project, free_port

pytestmark = pytest.mark.skipif(
    shutil.which("postfix") is None
    or os.geteuid() != 0
    or not Path("/etc/postfix/master.cf").is_file(),
    reason="needs Debian's postfix and root (apt-get install postfix)",
)

SECRET = "postfix-e2e-secret"
GONE = "nosuch@digest.test"
REAL = "reader@digest.test"


def _postconf(conf: Path, *args: str) -> None:
    subprocess.run(["postconf", "-c", str(conf), *args], check=True, capture_output=True)


def configure(base: Path, port: int) -> Path:
    """A Postfix taking mail on 127.0.0.1:`port` for the virtual domain digest.test: `reader`
    and `bounces` (with any +tag) have Maildirs; anyone else is accepted, then bounced."""
    base.chmod(0o755)  # the postfix and nobody users must reach the queue and mail folders
    conf = base / "etc"
    shutil.copytree("/etc/postfix", conf)
    mail = base / "mail"
    for box in ("bounces", "reader"):
        for sub in ("new", "cur", "tmp"):
            (mail / box / sub).mkdir(parents=True)
    for path in [mail, *mail.rglob("*")]:
        shutil.chown(path, "nobody", "nogroup")
    (conf / "vmailbox").write_text("bounces@digest.test bounces/\nreader@digest.test reader/\n")
    settings = {
        "queue_directory": base / "queue",
        "data_directory": base / "data",
        "maillog_file": base / "maillog",
        "maillog_file_prefixes": base,
        "myhostname": "mx.digest.test",
        "mydomain": "digest.test",
        "myorigin": "digest.test",
        "mydestination": "",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "alias_maps": "",
        "alias_database": "",
        "recipient_delimiter": "+",
        "virtual_mailbox_domains": "digest.test",
        "virtual_mailbox_base": mail,
        "virtual_mailbox_maps": f"texthash:{conf / 'vmailbox'}",
        "virtual_uid_maps": "static:65534",
        "virtual_gid_maps": "static:65534",
        # Accept mail for unknown users (as a relay or a catch-all would), so the failure
        # comes back as a bounce rather than as a refusal during the SMTP session.
        "smtpd_reject_unlisted_recipient": "no",
        "smtpd_tls_security_level": "none",
        "smtp_tls_security_level": "none",
        "smtp_dns_support_level": "disabled",
    }
    _postconf(conf, "-e", *(f"{k}={v}" for k, v in settings.items()))
    _postconf(conf, "-MX", "smtp/inet")
    _postconf(conf, "-M", f"127.0.0.1:{port}/inet=127.0.0.1:{port} inet n - n - - smtpd")
    _postconf(conf, "-F", "*/*/chroot = n")
    (base / "queue").mkdir()
    (base / "data").mkdir()
    shutil.chown(base / "data", "postfix")
    subprocess.run(
        ["postfix", "-c", str(conf), "set-permissions", "create-missing"],
        check=True,
        capture_output=True,
    )
    return conf


@pytest.fixture
def postfix() -> Iterator[tuple[Path, int]]:
    # Not under pytest's tmp_path: its parent is private to root, and Postfix's own processes
    # (user postfix) must reach the queue and data folders.
    base = Path(tempfile.mkdtemp(prefix="digest-postfix-"))
    port = free_port()
    try:
        conf = configure(base, port)
        subprocess.run(["postfix", "-c", str(conf), "start"], check=True, capture_output=True)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            probe = subprocess.run(["postfix", "-c", str(conf), "status"], capture_output=True)
            if probe.returncode == 0:
                break
            time.sleep(0.2)
        yield base, port
    finally:
        subprocess.run(["postfix", "-c", str(conf), "stop"], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_a_postfix_bounce_reaches_the_maildir_and_suppresses_its_subscriber(
    project: Project, postfix: tuple[Path, int]
) -> None:
    base, port = postfix
    bounces = base / "mail" / "bounces"
    project.subscribers([{"email": GONE}, {"email": REAL}])
    project.settings(
        sender="Regional Migration Digest <digest@digest.test>",
        delivery={"method": "smtp", "smtp": {"host": "127.0.0.1", "port": port, "timeout": 10}},
        bounces={"return_path": "bounces@digest.test", "mailbox": str(bounces)},
    )
    env = {"DIGEST_TOKEN_SECRET": SECRET}
    project.run("send", env=env, check=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((bounces / "new").iterdir()):
        time.sleep(0.25)
    arrived = list((bounces / "new").iterdir())
    assert arrived, (base / "maillog").read_text() if (base / "maillog").exists() else "no log"
    assert list((base / "mail" / "reader" / "new").iterdir())  # the real reader got theirs

    result = project.run("bounces", "--json", env=env)
    assert result.returncode == 0, result.stderr
    [got] = [json.loads(line) for line in result.stdout.splitlines()]
    assert (got["kind"], got["subscriber"], got["action"], got["attributed_by"]) == (
        "bounce",
        GONE,
        "suppressed",
        "verp",
    )
    assert got["recipients"][0]["address"] == GONE and got["recipients"][0]["hard"] is True
    assert got["recipients"][0]["status"] == "5.1.1"
    assert not list((bounces / "new").iterdir()) and list((bounces / "cur").iterdir())
    listed = json.loads(project.run("subscribers", "--all", "--json", check=True).stdout)
    assert {s["email"]: s["status"] for s in listed} == {GONE: "suppressed", REAL: "active"}
