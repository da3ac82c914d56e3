"""`digest bounces` end to end: a real send over SMTP with VERP envelopes (aiosmtpd records
MAIL FROM), real bounce mails (Postfix's own, and reports written after the providers')
delivered into the project's bounces Maildir, the real CLI, the real SQLite state."""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

from digest.bounces import read_verp

from .bounce_mail import (
    RETURN_PATH,
    SECRET,
    bounce_mail,
    deliveries,
    drop,
    subscriber_of,
)
from .conftest import Project, SmtpServer

ENV = {"DIGEST_TOKEN_SECRET": SECRET}
ANA = "ana@example.org"


def sent_with_verp(project: Project, smtp_server: SmtpServer) -> dict[str, str]:
    """`digest send` over SMTP with VERP on: each subscriber's MAIL FROM."""
    project.use_smtp(smtp_server)
    project.settings(bounces={"return_path": RETURN_PATH})
    project.run("send", env=ENV, check=True)
    return {r.rcpt_tos[0]: r.mail_from for r in smtp_server.handler.received}


def bounces_json(project: Project, *args: str) -> list[dict]:
    result = project.run("bounces", "--json", *args, env=ENV)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def rows(project: Project, query: str) -> list[tuple]:
    with sqlite3.connect(project.state) as db:
        return db.execute(query).fetchall()


def test_each_message_has_its_own_signed_envelope_sender(
    project: Project, smtp_server: SmtpServer
) -> None:
    senders = sent_with_verp(project, smtp_server)
    assert len(senders) >= 4
    assert len(set(senders.values())) == len(senders)  # one token per delivery
    lookup = subscriber_of(project.state)
    for recipient, mail_from in senders.items():
        assert mail_from.startswith("bounces+") and mail_from.endswith("@example.org")
        assert len(mail_from.split("@")[0]) <= 64
        token = read_verp(mail_from, RETURN_PATH, SECRET.encode(), lookup)
        assert token is not None and token.subscriber == recipient
        assert deliveries(project.state)[recipient][0] == token.delivery_id
    # The pipelined envelope of each next message carried that message's own sender: had it
    # carried another, the connection would have been dropped and opened again.
    assert smtp_server.handler.sessions == 1


def test_worker_processes_sign_each_envelope_too(project: Project, smtp_server: SmtpServer) -> None:
    """The smallest run shared between worker processes (200 subscribers, 2 connections)."""
    regions = ["Central America", "Caribbean", "North America", "South America"]
    project.subscribers(
        [{"email": f"r{n}@example.org", "regions": [regions[n % 4]]} for n in range(200)]
    )
    project.use_smtp(smtp_server, connections=2)
    project.settings(bounces={"return_path": RETURN_PATH})
    project.run("send", env=ENV, check=True)
    received = smtp_server.handler.received
    assert len(received) == 200 and smtp_server.handler.sessions == 2
    lookup = subscriber_of(project.state)
    for r in received:
        token = read_verp(r.mail_from, RETURN_PATH, SECRET.encode(), lookup)
        assert token is not None and token.subscriber == r.rcpt_tos[0]


def test_without_a_return_path_the_envelope_sender_is_the_sender(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server)
    project.run("send", env=ENV, check=True)
    assert {r.mail_from for r in smtp_server.handler.received} == {"digest@example.org"}


def test_a_hard_bounce_suppresses_until_staff_lift_it(
    any_project: Project, smtp_server: SmtpServer
) -> None:
    project = any_project
    senders = sent_with_verp(project, smtp_server)
    mail = drop(
        project.root / "bounces",
        "1.bounce",
        bounce_mail("postfix/remote-user-unknown.eml", senders[ANA], ANA),
    )
    [got] = bounces_json(project)
    assert got["kind"] == "bounce" and got["subscriber"] == ANA
    assert got["action"] == "suppressed" and got["attributed_by"] == "verp"
    assert got["recipients"] == [
        {
            "address": ANA,
            "status": "5.1.1",
            "code": 550,
            "reason": got["recipients"][0]["reason"],
            "hard": True,
        }
    ]
    assert "User unknown" in got["recipients"][0]["reason"]
    assert not mail.exists() and len(list((mail.parent.parent / "cur").iterdir())) == 1
    today = date.today().isoformat()
    listed = json.loads(project.run("subscribers", "--all", "--json", check=True).stdout)
    ana = next(s for s in listed if s["email"] == ANA)
    assert ana["status"] == "suppressed"
    assert ana["why"] == f"suppressed: hard bounce 5.1.1 on {today}"
    journal = (project.state.parent / "state.suppressions.txt").read_text()
    assert f"\tsuppress\t{ANA}\tbounce\n" in journal

    # The next digest skips her; the others still get theirs.
    (project.root / "items" / "new.md").write_text(
        f"---\ntitle: Guatemala widens labour migration agreement\ndate: {today}\n"
        "regions: [Central America]\ntopics: [Labour migration]\n---\nWorkers gain.\n"
    )
    smtp_server.handler.received.clear()
    project.run("send", env=ENV, check=True)
    recipients = {r.rcpt_tos[0] for r in smtp_server.handler.received}
    assert ANA not in recipients and recipients

    lifted = project.run("subscribers", "unsuppress", ANA, check=True)
    assert "no longer suppressed" in lifted.stdout and "hard bounce 5.1.1" in lifted.stdout
    assert (
        f"\tunsuppress\t{ANA}\tstaff\n"
        in (project.state.parent / "state.suppressions.txt").read_text()
    )
    listed = json.loads(project.run("subscribers", "--json", check=True).stdout)
    assert ANA in {s["email"] for s in listed}
    smtp_server.handler.received.clear()
    project.run("send", env=ENV, check=True)
    assert ANA in {r.rcpt_tos[0] for r in smtp_server.handler.received}
    again = project.run("subscribers", "unsuppress", ANA)
    assert again.returncode == 1 and "not suppressed" in again.stderr


def test_a_forged_token_changes_nobody(project: Project, smtp_server: SmtpServer) -> None:
    senders = sent_with_verp(project, smtp_server)
    real = senders[ANA]
    local, domain = real.split("@")
    forged = local[:-3] + ("aaa" if not local.endswith("aaa") else "bbb") + "@" + domain
    drop(project.root / "bounces", "1", bounce_mail("postfix/remote-user-unknown.eml", forged, ANA))
    # No token at all: with VERP on, the DSN's recipient alone attributes nothing either.
    drop(
        project.root / "bounces",
        "2",
        bounce_mail("postfix/remote-user-unknown.eml", "bounces@example.org", ANA),
    )
    got = bounces_json(project)
    assert [g["subscriber"] for g in got] == [None, None]
    assert [g["action"] for g in got] == ["none", "none"]
    assert "forged or damaged VERP address" in got[0]["reason"]
    assert "no VERP address" in got[1]["reason"]
    assert rows(project, "SELECT subscriber, action FROM bounce_mails") == [
        (None, "none"),
        (None, "none"),
    ]
    assert rows(project, "SELECT COUNT(*) FROM suppressions") == [(0,)]


def test_without_verp_by_recipient_and_by_message_id(project: Project) -> None:
    project.run("send", env=ENV, check=True)  # the Maildir: no VERP
    sent = deliveries(project.state)
    marlon = "marlon.james@example.org"
    box = project.root / "bounces"
    drop(box, "1", bounce_mail("postfix/remote-user-unknown.eml", recipient=ANA))
    # Recipient hidden (another address), but the returned Message-ID names Marlon's digest.
    drop(
        box,
        "2",
        bounce_mail(
            "postfix/remote-user-unknown.eml",
            recipient="forwarded@elsewhere.test",
            message_id=sent[marlon][1],
        ),
    )
    drop(box, "3", bounce_mail("postfix/remote-user-unknown.eml", recipient="stranger@x.test"))
    got = bounces_json(project)
    assert [(g["subscriber"], g["attributed_by"], g["action"]) for g in got] == [
        (ANA, "recipient", "suppressed"),
        (marlon, "message-id", "suppressed"),
        (None, None, "none"),
    ]
    events = rows(project, "SELECT email, delivery_id, kind, status FROM bounce_events ORDER BY id")
    assert events == [
        (ANA, sent[ANA][0], "hard", "5.1.1"),
        (marlon, sent[marlon][0], "hard", "5.1.1"),
    ]


def test_soft_bounces_count_per_digest_until_the_limit(project: Project) -> None:
    project.settings(bounces={"soft_limit": 2})
    project.run("send", env=ENV, check=True)
    sent = deliveries(project.state)
    box = project.root / "bounces"
    full = "postfix/remote-mailbox-full.eml"
    # The same digest bounced three times (three MXs): one soft bounce.
    for n in range(3):
        drop(box, f"a{n}", bounce_mail(full, recipient=ANA, message_id=sent[ANA][1], nonce=str(n)))
    got = bounces_json(project)
    assert [g["action"] for g in got] == ["counted"] * 3
    assert got[-1]["reason"].endswith("(1 of 2)")
    # A second digest's bounce reaches the limit.
    with sqlite3.connect(project.state) as db:
        db.execute(
            "INSERT INTO deliveries(run_id, subscriber, message_id, status, item_ids, created_at,"
            " updated_at) SELECT run_id, subscriber, '<second@example.org>', 'sent', '[]', "
            "created_at, updated_at FROM deliveries WHERE id = ?",
            (sent[ANA][0],),
        )
    drop(box, "b", bounce_mail(full, recipient=ANA, message_id="<second@example.org>"))
    [second] = bounces_json(project)
    assert second["action"] == "suppressed"
    assert second["reason"].startswith("2 soft bounces within 30 days, last 5.2.2 on ")


def test_a_complaint_unsubscribes_and_an_auto_reply_changes_nothing(
    any_project: Project, smtp_server: SmtpServer
) -> None:
    project = any_project
    senders = sent_with_verp(project, smtp_server)
    marlon = "marlon.james@example.org"
    box = project.root / "bounces"
    drop(box, "1", bounce_mail("written/arf-yahoo-abuse.eml", senders[ANA], ANA))
    drop(box, "2", bounce_mail("written/autoreply-rfc3834.eml", senders[marlon]))
    got = bounces_json(project)
    assert [(g["kind"], g["subscriber"], g["action"]) for g in got] == [
        ("complaint", ANA, "unsubscribed"),
        ("auto-reply", marlon, "none"),
    ]
    listed = json.loads(project.run("subscribers", "--all", "--json", check=True).stdout)
    by_email = {s["email"]: s for s in listed}
    assert by_email[ANA]["status"] == "unsubscribed"
    assert by_email[ANA]["unsubscribed_via"] == "complaint"
    assert by_email[marlon]["status"] == "active"
    journal = (project.state.parent / "state.suppressions.txt").read_text()
    assert f"\tunsubscribe\t{ANA}\tcomplaint\n" in journal
    history = json.loads(project.run("history", "--bounces", "--json", check=True).stdout)
    assert {(h["subscriber"], h["complaints"], h["auto_replies"]) for h in history} == {
        (ANA, 1, 0),
        (marlon, 0, 1),
    }
    text = project.run("history", check=True).stdout
    assert "Bounces per subscriber" in text and ANA in text


def test_the_same_mail_twice_counts_once_and_a_dry_run_changes_nothing(
    project: Project, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    senders = sent_with_verp(project, smtp_server)
    data = bounce_mail("postfix/remote-user-unknown.eml", senders[ANA], ANA)
    box = project.root / "bounces"
    drop(box, "1", data)
    drop(box, "copy", data)
    dry = bounces_json(project, "--dry-run")
    assert [(g["action"], g["duplicate"]) for g in dry] == [("suppressed", False), ("none", True)]
    assert sorted(p.name for p in (box / "new").iterdir()) == ["1", "copy"]
    assert rows(project, "SELECT COUNT(*) FROM bounce_mails") == [(0,)]
    got = bounces_json(project)
    assert [(g["action"], g["duplicate"]) for g in got] == [("suppressed", False), ("none", True)]
    assert rows(project, "SELECT COUNT(*) FROM bounce_events") == [(1,)]
    assert not list((box / "new").iterdir()) and len(list((box / "cur").iterdir())) == 2
    # Read again from copies elsewhere (another Maildir, a saved file): still once.
    drop(tmp_path / "other", "1", data)
    [again] = bounces_json(project, str(tmp_path / "other"))
    assert again["duplicate"] is True and again["action"] == "none"
    saved = project.root / "saved.eml"
    saved.write_bytes(data)
    [same] = bounces_json(project, str(saved))
    assert same["duplicate"] is True and saved.exists()


def test_bad_mail_is_other_and_never_stops_the_rest(
    project: Project, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    senders = sent_with_verp(project, smtp_server)
    box = project.root / "bounces"
    drop(box, "1-binary", bytes(range(256)) * 400)
    drop(box, "2-empty", b"")
    drop(box, "3-huge", bounce_mail("postfix/remote-user-unknown.eml") + b"x" * 8_000_000)
    drop(box, "4-real", bounce_mail("postfix/remote-user-unknown.eml", senders[ANA], ANA))
    drop(box, "5-malformed", (bounce_mail("written/malformed-mime-no-boundary.eml")))
    got = bounces_json(project)
    assert [g["kind"] for g in got] == ["other", "other", "bounce", "bounce", got[4]["kind"]]
    assert "empty mail" in got[1]["classified_as"]
    # 8 MB: read from its head; with VERP on, its envelope (no token) attributes nobody.
    assert (got[2]["subscriber"], got[2]["action"]) == (None, "none")
    assert got[3]["action"] == "suppressed"
    assert not list((box / "new").iterdir())


def test_files_and_mbox_files_are_read_and_left_in_place(
    project: Project, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    senders = sent_with_verp(project, smtp_server)
    mbox = tmp_path / "old.mbox"
    one = bounce_mail("postfix/remote-user-unknown.eml", senders[ANA], ANA)
    two = bounce_mail("written/autoreply-rfc3834.eml", senders["marlon.james@example.org"])
    mbox.write_bytes(
        b"From MAILER-DAEMON Mon Nov 30 16:59:44 2026\n"
        + one.replace(b"\nFrom ", b"\n>From ")
        + b"\nFrom someone Mon Nov 30 17:00:00 2026\n"
        + two
    )
    missing = tmp_path / "nowhere"
    result = project.run("bounces", "--json", str(mbox), str(missing), env=ENV)
    assert result.returncode == 2
    assert "nowhere: no such file or folder" in result.stderr
    got = [json.loads(line) for line in result.stdout.splitlines()]
    assert [g["file"] for g in got] == [f"{mbox}#1", f"{mbox}#2"]
    assert [g["kind"] for g in got] == ["bounce", "auto-reply"]
    assert mbox.exists()


def test_the_text_report(project: Project, smtp_server: SmtpServer) -> None:
    senders = sent_with_verp(project, smtp_server)
    assert "no bounce mailbox at" in project.run("bounces", check=True).stdout
    drop(
        project.root / "bounces",
        "1",
        bounce_mail("postfix/remote-user-unknown.eml", senders[ANA], ANA),
    )
    text = project.run("bounces", "--dry-run", env=ENV, check=True).stdout
    assert f"would be suppressed: {ANA}: hard bounce 5.1.1 on" in text
    assert "Read 1 mail(s): 1 bounce(s)" in text


def test_a_bad_return_path_names_the_file_line_and_key(project: Project) -> None:
    project.settings(bounces={"return_path": "Bounces <bounces+x@example.org>"})
    result = project.run("bounces")
    assert result.returncode == 2
    assert "digest.yaml:" in result.stderr and "'bounces.return_path'" in result.stderr


def test_the_scheduler_reads_the_mailbox_at_every_poll(
    project: Project, smtp_server: SmtpServer, monkeypatch
) -> None:
    from digest.scheduler import Runner
    from digest.settings import load_settings

    senders = sent_with_verp(project, smtp_server)
    monkeypatch.setenv("DIGEST_TOKEN_SECRET", SECRET)
    runner = Runner(load_settings(project.config))
    box = project.root / "bounces"
    assert runner.poll_bounces() is not None  # no mailbox yet: nothing, no error
    drop(box, "1", bounce_mail("postfix/remote-user-unknown.eml", senders[ANA], ANA))
    assert runner.poll() is not None
    assert rows(project, "SELECT email, reason FROM suppressions") == [
        (ANA, f"hard bounce 5.1.1 on {date.today().isoformat()}")
    ]
    assert not list((box / "new").iterdir())


def test_check_warns_about_unset_bounce_secrets(project: Project) -> None:
    project.settings(
        bounces={"mailbox": "imaps://bounces@mail.example.org/INBOX", "webhook_secret_env": "NOPE"}
    )
    result = project.run("check", env={"DIGEST_BOUNCES_PASSWORD": "", "NOPE": ""})
    assert "$DIGEST_BOUNCES_PASSWORD is not set" in result.stderr + result.stdout
    assert "names $NOPE, which is not set" in result.stderr + result.stdout


def test_export_keeps_a_suppressed_subscriber_in_the_file(project: Project) -> None:
    project.run("send", env=ENV, check=True)
    drop(
        project.root / "bounces", "1", bounce_mail("postfix/remote-user-unknown.eml", recipient=ANA)
    )
    project.run("bounces", env=ENV, check=True)
    exported = project.run("subscribers", "export", "--out", "-", check=True).stdout
    assert f"email: {ANA}" in exported  # lifted later, she is still a subscriber
    dry = json.loads(project.run("send", "--dry-run", "--json", env=ENV, check=True).stdout)
    assert ANA not in {s["email"] for s in dry["subscribers"]}


def test_an_unreadable_mail_is_reported_and_the_others_are_read(project: Project) -> None:
    project.run("send", env=ENV, check=True)
    box = project.root / "bounces"
    drop(box, "1", b"x")
    (box / "new" / "1").unlink()
    (box / "new" / "1").mkdir()  # a folder, not a mail: skipped silently
    drop(box, "2-empty", b"")
    unreadable = drop(box, "3-unreadable", b"")
    unreadable.unlink()
    unreadable.symlink_to(unreadable)  # a loop: reading it fails, whoever runs the test
    drop(box, "4", bounce_mail("postfix/remote-user-unknown.eml", recipient=ANA))
    result = project.run("bounces", "--json", env=ENV)
    assert result.returncode == 2
    assert "3-unreadable: cannot read" in result.stderr
    got = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(Path(g["file"]).name, g["action"]) for g in got] == [
        ("2-empty", "none"),
        ("4", "suppressed"),
    ]
    assert (box / "new" / "3-unreadable").is_symlink()  # left where it was
