"""Make real Postfix bounces into tests/data/bounces/postfix/ (run as root, with Debian's postfix).

    apt-get install postfix && .venv/bin/python tests/data/bounces/generate/postfix_bounces.py

A throwaway Postfix instance (its own config, queue and mail folders under a temporary
directory, no smtpd listening, chroot off) takes one digest-like message per scenario through
`sendmail -C`, with a VERP envelope sender `bounces+TOKEN@digest.test` made by
digest.bounces.verp (secret b"postfix-test-secret", delivery id = scenario number). Remote
domains are routed to an aiosmtpd server on 127.0.0.1 that answers RCPT or DATA with the reply
the scenario names (replies worded after the providers' published ones); a local unknown user,
a full virtual mailbox, an unresolvable domain and a refused connection fail inside Postfix
itself. Temporary failures bounce at once (maximal_queue_lifetime = 0). The bounces Postfix
delivers to the `bounces` Maildir are written out as <scenario>.eml, named by their VERP token.
Nothing here listens on anything but loopback, and the instance is stopped at the end.
"""

from __future__ import annotations

import argparse
import email
import email.utils
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))

from digest.bounces.verp import read_verp, verp_address  # noqa: E402

SECRET = b"postfix-test-secret"
RETURN_PATH = "bounces@digest.test"
OUT = Path(__file__).resolve().parent.parent / "postfix"

# Replies of the fake remote server, by recipient local part: (stage, reply).
REMOTE_REPLIES = {
    "unknown": (
        "rcpt",
        "550 5.1.1 <unknown@remote.test>: Recipient address rejected: "
        "User unknown in virtual mailbox table",
    ),
    "nosuchuser": (
        "rcpt",
        "550-5.1.1 The email account that you tried to reach does not exist. "
        "Please try\r\n550-5.1.1 double-checking the recipient's email address for "
        "typos or\r\n550 5.1.1 unnecessary spaces. https://support.example/NoSuchUser",
    ),
    "notfound": (
        "rcpt",
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
    ),
    "dbeb": (
        "rcpt",
        "550 5.4.1 Recipient address rejected: Access denied. "
        "[AM4PEPF00027A69.eurprd04.prod.outlook.test]",
    ),
    "unavailable": (
        "rcpt",
        "550 5.5.0 Requested action not taken: mailbox unavailable "
        "(S2017062302). [DB5EUR03FT011.eop-EUR03.prod.protection.outlook.test]",
    ),
    "disabled": ("rcpt", "550 5.2.1 The email account that you tried to reach is disabled."),
    "plain": ("rcpt", "550 No such user here"),
    "yahoo": (
        "rcpt",
        "554 delivery error: dd This user doesn't have a yahoo.test account "
        "(yahoo@remote.test) [0] - mta1234.mail.bf1.yahoo.test",
    ),
    "full": ("rcpt", "552 5.2.2 <full@remote.test>: Mailbox full"),
    "quota": ("rcpt", "452 4.2.2 The email account that you tried to reach is over quota."),
    "spam": ("data", "550 5.7.1 Message rejected as spam by Content Filtering."),
    "blocked": (
        "rcpt",
        "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org",
    ),
    "dmarc": (
        "data",
        "550 5.7.26 Unauthenticated email from digest.test is not accepted due to "
        "domain's DMARC policy.",
    ),
    "relay": ("rcpt", "554 5.7.1 <relay@remote.test>: Relay access denied"),
    "big": ("data", "552 5.3.4 Message size exceeds fixed maximum message size"),
    "rate": (
        "rcpt",
        "450 4.2.1 The user you are trying to contact is receiving mail at a rate "
        "that prevents additional messages from being delivered.",
    ),
    "grey": ("rcpt", "451 4.7.1 Greylisted, please try again later"),
    "volume": (
        "rcpt",
        "421 4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to "
        "unexpected volume or user complaints",
    ),
}

# Scenario name -> recipients (one message each; the first recipient names the subscriber).
SCENARIOS = {
    "local-unknown-user": ["nosuch@localhost"],
    "virtual-unknown-user": ["nosuch@digest.test"],
    "virtual-mailbox-full": ["full@digest.test"],
    "no-such-domain": ["someone@nosuch.invalid"],
    "connection-refused": ["someone@down.test"],
    "remote-user-unknown": ["unknown@remote.test"],
    "remote-gmail-style-no-such-user": ["nosuchuser@remote.test"],
    "remote-o365-style-recipient-not-found": ["notfound@remote.test"],
    "remote-o365-style-access-denied": ["dbeb@remote.test"],
    "remote-outlook-style-mailbox-unavailable": ["unavailable@remote.test"],
    "remote-account-disabled": ["disabled@remote.test"],
    "remote-no-enhanced-status": ["plain@remote.test"],
    "remote-yahoo-style-no-account": ["yahoo@remote.test"],
    "remote-mailbox-full": ["full@remote.test"],
    "remote-over-quota-expired": ["quota@remote.test"],
    "remote-spam-rejected": ["spam@remote.test"],
    "remote-blocklisted": ["blocked@remote.test"],
    "remote-dmarc-policy": ["dmarc@remote.test"],
    "remote-relay-denied": ["relay@remote.test"],
    "remote-message-too-large": ["big@remote.test"],
    "remote-rate-limited-expired": ["rate@remote.test"],
    "remote-greylisted-expired": ["grey@remote.test"],
    "remote-volume-deferred-expired": ["volume@remote.test"],
    "multiple-recipients": ["unknown@remote.test", "full@remote.test", "nosuch@localhost"],
    "success-notification": ["ok@digest.test"],
}


class FakeRemote:
    """Answers RCPT or DATA with the scenario's reply; accepts everything else."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        stage, reply = REMOTE_REPLIES.get(address.split("@")[0], ("", ""))
        if stage == "rcpt":
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        for address in envelope.rcpt_tos:
            stage, reply = REMOTE_REPLIES.get(address.split("@")[0], ("", ""))
            if stage == "data":
                return reply
        return "250 2.0.0 Ok: queued"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def digest_message(number: int, recipient: str, size: int) -> bytes:
    """A small digest-like message, padded to `size` bytes."""
    body = (
        "Regional migration news, week 48\n\n"
        "* Caribbean: new guidance on temporary protection\n"
        "* Central America: consular services resume\n\n"
        "Unsubscribe: https://digest.test/u/TOKEN\n"
    )
    body += "x" * max(0, size - len(body)) + "\n"
    return (
        f"From: Regional Office <office@digest.test>\n"
        f"To: {recipient}\n"
        f"Subject: Migration news digest, week 48\n"
        f"Date: {email.utils.formatdate(localtime=False)}\n"
        f"Message-ID: <digest-{number}.week48@digest.test>\n"
        f"MIME-Version: 1.0\n"
        f"Content-Type: text/plain; charset=utf-8\n"
        f"List-Unsubscribe: <https://digest.test/u/TOKEN>\n\n{body}"
    ).encode()


def configure(base: Path, remote_port: int, closed_port: int) -> Path:
    base.chmod(0o755)  # the postfix and nobody users must reach the queue and mail folders
    conf = base / "etc"
    shutil.copytree("/etc/postfix", conf)
    (base / "mail").mkdir()
    for box in ("bounces", "ok"):
        for sub in ("new", "cur", "tmp"):
            (base / "mail" / box / sub).mkdir(parents=True)
    shutil.chown(base / "mail", "nobody", "nogroup")
    for path in (base / "mail").rglob("*"):
        shutil.chown(path, "nobody", "nogroup")
    # An mbox file already at the mailbox limit: the next delivery fails "File too large".
    (base / "mail" / "full.mbox").write_bytes(b"x" * 59_990)
    shutil.chown(base / "mail" / "full.mbox", "nobody", "nogroup")
    (conf / "vmailbox").write_text(
        "bounces@digest.test bounces/\nok@digest.test ok/\nfull@digest.test full.mbox\n"
    )
    (conf / "transport").write_text(
        f"remote.test smtp:[127.0.0.1]:{remote_port}\ndown.test smtp:[127.0.0.1]:{closed_port}\n"
    )
    settings = {
        "queue_directory": base / "queue",
        "data_directory": base / "data",
        "maillog_file": base / "maillog",
        "myhostname": "mx.digest.test",
        "mydomain": "digest.test",
        "myorigin": "digest.test",
        "mydestination": "localhost",
        "inet_interfaces": "loopback-only",
        "inet_protocols": "ipv4",
        "alias_maps": "",
        "alias_database": "",
        "recipient_delimiter": "+",
        "virtual_mailbox_domains": "digest.test",
        "virtual_mailbox_base": base / "mail",
        "virtual_mailbox_maps": f"texthash:{conf / 'vmailbox'}",
        "virtual_uid_maps": "static:65534",
        "virtual_gid_maps": "static:65534",
        "virtual_mailbox_limit": 60000,
        "message_size_limit": 50000,
        "transport_maps": f"texthash:{conf / 'transport'}",
        "smtp_host_lookup": "native",
        "smtp_dns_support_level": "disabled",
        "maximal_queue_lifetime": "0",
        "bounce_queue_lifetime": "0",
        "smtp_tls_security_level": "none",
        "smtpd_tls_security_level": "none",
    }
    subprocess.run(
        ["postconf", "-c", conf, "-e", *(f"{k}={v}" for k, v in settings.items())], check=True
    )
    subprocess.run(["postconf", "-c", conf, "-MX", "smtp/inet"], check=True)
    subprocess.run(["postconf", "-c", conf, "-F", "*/*/chroot = n"], check=True)
    subprocess.run(["postconf", "-c", conf, "-e", "maillog_file_prefixes=" + str(base)], check=True)
    (base / "queue").mkdir()
    (base / "data").mkdir()
    shutil.chown(base / "data", "postfix")
    subprocess.run(["postfix", "-c", conf, "set-permissions", "create-missing"], check=True)
    return conf


def send_all(conf: Path) -> None:
    for number, (name, recipients) in enumerate(SCENARIOS.items(), start=1):
        sender = verp_address(RETURN_PATH, recipients[0], number, SECRET)
        notify = "success,failure" if name == "success-notification" else "failure"
        subprocess.run(
            ["sendmail", "-C", str(conf), "-f", sender, "-N", notify, *recipients],
            input=digest_message(number, recipients[0], 600),
            check=True,
        )


def collect(base: Path, expected: int, timeout: float) -> dict[str, bytes]:
    """The bounces in the `bounces` Maildir, keyed by scenario (from their VERP token)."""
    names = list(SCENARIOS)
    deadline = time.monotonic() + timeout
    found: dict[str, bytes] = {}
    while time.monotonic() < deadline and len(found) < expected:
        for path in (base / "mail" / "bounces" / "new").iterdir():
            data = path.read_bytes()
            message = email.message_from_bytes(data)
            token = read_verp(
                message["Delivered-To"] or message["X-Original-To"] or "",
                RETURN_PATH,
                SECRET,
                lambda i: SCENARIOS[names[i - 1]][0] if 0 < i <= len(names) else None,
            )
            if token is not None:
                found[names[token.delivery_id - 1]] = data
        time.sleep(0.5)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary instance")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="digest-postfix-"))
    remote_port, closed_port = free_port(), free_port()
    controller = Controller(FakeRemote(), hostname="127.0.0.1", port=remote_port)
    controller.start()
    conf = configure(base, remote_port, closed_port)
    try:
        subprocess.run(["postfix", "-c", str(conf), "start"], check=True)
        send_all(conf)
        found = collect(base, len(SCENARIOS), timeout=90)
    finally:
        subprocess.run(["postfix", "-c", str(conf), "stop"], check=False)
        controller.stop()
    OUT.mkdir(exist_ok=True)
    for name, data in sorted(found.items()):
        (OUT / f"{name}.eml").write_bytes(data)
    missing = sorted(set(SCENARIOS) - set(found))
    print(f"wrote {len(found)} bounces to {OUT}; missing: {missing or 'none'}")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"instance kept in {base}")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
