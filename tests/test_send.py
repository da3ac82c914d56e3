"""`digest send` end to end, in process through the CLI (and `python -m digest` once), against a
real SMTP server and a real Maildir."""

from __future__ import annotations

import json
import sqlite3

import pytest

from .conftest import Project, SmtpServer, run_digest

SHIPPED = [
    "ana@example.org",
    "marlon.james@example.org",
    "lucia.hernandez@example.org",
    "jean-baptiste@example.org",
    "research.desk@example.org",
    "newsroom@example.org",
    "sudan.watch@example.org",
]
CONSULAR = "Four countries discuss the role of their consular staff in protecting migrant workers"
OECS = "IOM and the Organization of Eastern Caribbean States partner"
THINK_TWICE = "More than 180 young people start Virtual Camp on Migration"


def body(message) -> str:
    return " ".join(message.get_body(("plain",)).get_content().split())


def test_seed_digests_reach_a_real_smtp_server_once(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server)
    result = project.run("send")
    assert result.returncode == 0, result.stderr
    assert "7 sent, 0 skipped (nothing new), 0 failed." in result.stdout
    handler = smtp_server.handler
    assert [handler.count_for(a) for a in SHIPPED] == [1] * 7
    ana = body(handler.messages_for("ana@example.org")[0])
    assert CONSULAR in ana and OECS not in ana and THINK_TWICE in ana  # region-wide goes to all
    marlon = handler.messages_for("marlon.james@example.org")[0]
    assert OECS in body(marlon) and CONSULAR not in body(marlon)
    assert marlon["To"] == "Marlon James <marlon.james@example.org>"
    sudan = body(handler.messages_for("sudan.watch@example.org")[0])
    assert THINK_TWICE in sudan and CONSULAR not in sudan and OECS not in sudan
    newsroom = handler.messages_for("newsroom@example.org")[0]
    assert newsroom["Subject"].startswith("Your migration news digest: 10 stories (")
    assert {r.mail_from for r in handler.received} == {"digest@example.org"}
    assert project.sent_items()["newsroom@example.org"] == 10

    again = project.run("send")
    assert again.returncode == 0
    assert "Nothing new to send" in again.stdout
    assert len(handler.received) == 7


def test_a_new_item_goes_out_alone_in_the_next_digest(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server)
    project.run("send", check=True)
    (project.root / "items" / "haiti.md").write_text(
        "---\ntitle: Haiti opens reception centre for returnees\ndate: 2026-11-20\n"
        "link: https://example.org/haiti-returns\n---\nReturnees arriving in Port-au-Prince get support.\n"
    )
    result = project.run("send", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["picked_up"]["new"] == 1
    got = {s["email"]: s for s in summary["subscribers"] if s["status"] == "sent"}
    assert set(got) == {"marlon.james@example.org", "newsroom@example.org"}
    assert got["marlon.james@example.org"]["items"] == 1
    assert summary["messages"] == {
        "bytes": sum(s["bytes"] for s in got.values()),
        "items": 2,
        "max_items": 1,
    }
    latest = smtp_server.handler.messages_for("marlon.james@example.org")[-1]
    assert latest["Subject"].startswith("Your migration news digest: 1 story (")
    assert "Haiti opens reception centre" in body(latest) and OECS not in body(latest)


def test_embedded_default_writes_a_maildir(project: Project) -> None:
    result = project.run("send")
    assert result.returncode == 0, result.stderr
    messages = project.maildir_messages()
    assert sorted(m["To"].addresses[0].addr_spec for m in messages) == sorted(SHIPPED)
    assert all(m.get_content_type() == "multipart/alternative" for m in messages)
    assert project.run("send").returncode == 0
    assert len(project.maildir_messages()) == 7


def test_only_sends_to_those_subscribers(project: Project, smtp_server: SmtpServer) -> None:
    project.use_smtp(smtp_server)
    result = project.run("send", "--only", "ana@example.org", "--only", "newsroom@example.org")
    assert result.returncode == 0, result.stderr
    assert sorted(r.rcpt_tos[0] for r in smtp_server.handler.received) == [
        "ana@example.org",
        "newsroom@example.org",
    ]
    assert project.run("send").returncode == 0
    assert len(smtp_server.handler.received) == 7
    assert smtp_server.handler.count_for("ana@example.org") == 1


def test_only_an_unknown_address_is_an_error(project: Project) -> None:
    result = project.run("send", "--only", "nobody@example.org")
    assert result.returncode == 2
    assert "nobody@example.org: not in the subscribers file" in result.stderr


def test_dry_run_sends_and_records_nothing(project: Project, smtp_server: SmtpServer) -> None:
    project.use_smtp(smtp_server)
    result = project.run("send", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["would_send"] == 7 and summary["sent"] == 0
    assert all(s["bytes"] > 10_000 for s in summary["subscribers"])
    assert smtp_server.handler.received == []
    assert not project.state.exists()  # not even the items it read are recorded
    assert project.run("send").returncode == 0
    assert len(smtp_server.handler.received) == 7


def test_test_send_goes_to_the_staff_address_and_records_nothing(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server)
    result = project.run("send", "--to", "editor@example.org", "--only", "ana@example.org")
    assert result.returncode == 0, result.stderr
    [received] = smtp_server.handler.received
    assert received.rcpt_tos == ["editor@example.org"]
    assert received.message["Subject"].startswith("[TEST] Your migration news digest")
    assert not project.state.exists()  # no items, no token secret: nothing recorded


def test_a_bad_subscribers_file_sends_nothing(project: Project, smtp_server: SmtpServer) -> None:
    project.use_smtp(smtp_server)
    path = project.root / "subscribers.yaml"
    path.write_text(path.read_text().replace("regions: [Caribbean]\n", "regions: [Carribean]\n", 1))
    result = project.run("send")
    assert result.returncode == 2
    assert "subscribers.yaml:" in result.stderr
    assert "unknown region 'Carribean' (did you mean 'Caribbean'?)" in result.stderr
    assert smtp_server.handler.received == []


def test_bad_settings_exit_2_with_file_line_and_key(project: Project) -> None:
    project.config.write_text(project.config.read_text() + "delivery_method: smtp\n")
    result = project.run("send")
    assert result.returncode == 2
    assert "digest.yaml:" in result.stderr and "setting 'delivery_method'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_refused_recipient_fails_alone_and_is_retried_next_run(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server)
    smtp_server.handler.rcpt_replies["ana@example.org"] = "550 5.1.1 mailbox unavailable"
    result = project.run("send")
    assert result.returncode == 1
    assert "6 sent" in result.stdout and "1 failed" in result.stdout
    assert "ana@example.org" in result.stderr and "550 5.1.1 mailbox unavailable" in result.stderr
    assert smtp_server.handler.count_for("ana@example.org") == 0
    assert "ana@example.org" not in project.sent_items()

    del smtp_server.handler.rcpt_replies["ana@example.org"]
    again = project.run("send")
    assert again.returncode == 0
    assert smtp_server.handler.count_for("ana@example.org") == 1
    assert len(smtp_server.handler.received) == 7


def test_items_json_lists_tags_and_the_words_behind_them(project: Project) -> None:
    result = project.run("items", "--json")
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert len(items) == 10
    assert {"id", "title", "date", "link", "regions", "topics"} <= set(items[0])
    consular = next(i for i in items if i["title"] == CONSULAR)
    assert consular["date"] == "2020-10-13"
    assert consular["regions"] == ["Central America"]
    assert "Belize" in consular["matches"]["Central America"]
    table = project.run("items")
    assert "region-wide" in table.stdout and "Belize" in table.stdout


def test_check_passes_on_the_shipped_project_and_warns_about_secrets(project: Project) -> None:
    result = project.run("check", env={"DIGEST_TOKEN_SECRET": ""})
    assert result.returncode == 0, result.stderr
    assert "All checks passed." in result.stdout
    assert "DIGEST_TOKEN_SECRET is not set" in result.stderr


def test_check_lists_every_problem(project: Project) -> None:
    (project.root / "subscribers.yaml").write_text(
        "subscribers:\n  - email: bad-address\n  - email: a@example.org\n    topics: [Helth]\n"
    )
    (project.root / "templates" / "subject.txt.j2").write_text("{{ missing_variable }}")
    (project.root / "items" / "broken.rss").write_text("<rss><channel><item><title>x")
    result = project.run("check")
    assert result.returncode == 2
    assert "invalid email address 'bad-address'" in result.stderr
    assert "unknown topic 'Helth' (did you mean 'Health'?)" in result.stderr
    assert "broken.rss: not a readable RSS or Atom feed" in result.stderr
    assert "subject.txt.j2:1: UndefinedError" in result.stderr


def test_preview_writes_four_files_per_subscriber_and_records_nothing(project: Project) -> None:
    out = project.root / "preview"
    result = project.run("preview", "--out", str(out))
    assert result.returncode == 0, result.stderr
    for address in SHIPPED:
        for suffix in (".mjml", ".html", ".txt", ".eml"):
            assert (out / f"{address}{suffix}").stat().st_size > 0
    assert (out / "ana@example.org.mjml").read_text().startswith('<mjml lang="en">')
    assert not project.state.exists()
    assert not project.outbox.exists()


def test_every_command_has_help(project: Project) -> None:
    listing = run_digest("--help", cwd=project.root, process=True)  # the module's entry point
    assert listing.returncode == 0, listing.stderr
    commands = [
        line.split()[0]
        for line in listing.stdout.split("Commands:")[1].splitlines()
        if line.strip()
    ]
    assert {"send", "preview", "items", "check", "history"} <= set(commands)
    for command in commands:
        result = project.run(command, "--help")
        assert result.returncode == 0 and "--config" in result.stdout, command


@pytest.mark.parametrize("command", [["items"], ["send", "--only", "x@example.org"]])
def test_a_run_in_this_process_prints_what_a_process_prints(
    project: Project, command: list[str]
) -> None:
    """The tests run `digest` in process (click's CliRunner) unless they need a process: the
    two give the same exit code, tables (as wide) and messages on the same streams."""
    in_process = project.run(*command)
    in_a_process = project.run(*command, process=True)
    assert in_process.returncode == in_a_process.returncode
    assert in_process.stdout == in_a_process.stdout
    assert in_process.stderr == in_a_process.stderr
    assert in_process.stdout or in_process.stderr


def test_the_period_is_dated_in_each_subscribers_timezone(project: Project) -> None:
    from datetime import UTC, datetime

    from digest import send as sending
    from digest.settings import load_settings

    project.subscribers(
        [
            {"email": "kiribati@example.org", "timezone": "Pacific/Kiritimati"},  # UTC+14
            {"email": "guatemala@example.org"},  # the schedule's America/Guatemala, UTC-6
        ]
    )
    report = sending.send(
        load_settings(project.config), now=datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    )
    assert report.count("sent") == 2
    subjects = {m["To"].addresses[0].addr_spec: m["Subject"] for m in project.maildir_messages()}
    assert subjects["kiribati@example.org"].endswith("(23 Nov 2026)")
    assert subjects["guatemala@example.org"].endswith("(22 Nov 2026)")


def test_an_interrupted_send_is_not_recorded_as_done(project: Project) -> None:

    from digest import send as sending
    from digest.settings import load_settings

    class Interrupting:
        def start(self, total: int) -> None:
            pass

        def advance(self, outcome: sending.Outcome) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sending.send(load_settings(project.config), progress=Interrupting())
    with sqlite3.connect(project.state) as db:
        [(status, note)] = db.execute("SELECT status, note FROM runs").fetchall()
    assert status == "aborted" and note == "interrupted: KeyboardInterrupt"
