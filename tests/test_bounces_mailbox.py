"""Mail sources: Maildir new/ -> cur/ (never deleted, nothing moved on a dry run), mbox,
single files, fingerprints, and the errors for what cannot be read."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from digest.bounces import MailboxError, MaildirSource, fingerprint, open_source
from tests.conftest import DATA

SAMPLE = (DATA / "bounces" / "postfix" / "remote-user-unknown.eml").read_bytes()


def make_maildir(root: Path, count: int) -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    for i in range(count):
        (root / "new" / f"{i}.host").write_bytes(SAMPLE + str(i).encode())
    return root


def test_maildir_moves_done_mail_to_cur(tmp_path: Path) -> None:
    box = make_maildir(tmp_path / "bounces", 3)
    source = open_source(box)
    assert isinstance(source, MaildirSource)
    seen = list(source)
    assert len(seen) == 3
    source.mark_done(seen[0][0])
    assert sorted(p.name for p in (box / "cur").iterdir()) == ["0.host:2,S"]
    assert len(list((box / "new").iterdir())) == 2
    assert len(list(open_source(box))) == 2  # the done one is not read again


def test_dry_run_moves_nothing(tmp_path: Path) -> None:
    box = make_maildir(tmp_path / "bounces", 2)
    source = open_source(box, dry_run=True)
    for identifier, _data in source:
        source.mark_done(identifier)
    assert len(list((box / "new").iterdir())) == 2 and not list((box / "cur").iterdir())


def test_mbox_and_single_file(tmp_path: Path) -> None:
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path)
    box.add(SAMPLE)
    box.add(SAMPLE.replace(b"unknown@remote.test", b"other@remote.test"))
    box.close()
    mails = list(open_source(path))
    assert [m[0] for m in mails] == [f"{path}#1", f"{path}#2"]
    assert b"other@remote.test" in mails[1][1]
    single = tmp_path / "one.eml"
    single.write_bytes(SAMPLE)
    assert list(open_source(single)) == [(str(single), SAMPLE)]


def test_fingerprint_ignores_line_endings() -> None:
    assert fingerprint(SAMPLE) == fingerprint(SAMPLE.replace(b"\n", b"\r\n"))
    assert fingerprint(SAMPLE) != fingerprint(SAMPLE + b"x")


def test_unreadable_sources_say_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MailboxError, match="no such file"):
        open_source(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(MailboxError, match="not a Maildir"):
        open_source(tmp_path / "plain")
    monkeypatch.delenv("BOUNCE_PW", raising=False)
    with pytest.raises(MailboxError, match="BOUNCE_PW"):
        open_source("imaps://bounces@127.0.0.1/INBOX", password_env="BOUNCE_PW")
    with pytest.raises(MailboxError, match="imaps"):
        open_source("imap://bounces@127.0.0.1/INBOX")
