"""DKIM signing (dkimpy), stable Message-IDs, List-Id and signed unsubscribe links."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import dkim
import pytest

from digest import base32
from digest.compose.links import BadToken, make_legacy_token, make_token, read_link, read_token

from .conftest import Project, SmtpServer


@pytest.fixture
def dkim_key(tmp_path: Path) -> tuple[str, bytes]:
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key.read_text(), base64.b64encode(public)


def test_messages_are_dkim_signed_including_the_unsubscribe_headers(
    project: Project, smtp_server: SmtpServer, dkim_key: tuple[str, bytes]
) -> None:
    private, public = dkim_key
    project.use_smtp(smtp_server)
    project.settings(
        dkim={"selector": "digest2026", "domain": "example.org", "private_key_env": "TEST_DKIM_KEY"}
    )
    result = project.run("send", env={"TEST_DKIM_KEY": private})
    assert result.returncode == 0, result.stderr
    assert len(smtp_server.handler.received) == 7

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"digest2026._domainkey.example.org."
        return b"v=DKIM1; k=rsa; p=" + public

    for received in smtp_server.handler.received:
        assert dkim.verify(received.data, dnsfunc=dns)
        signature = received.message["DKIM-Signature"]
        signed = re.search(r"h=([^;]+)", signature.replace(" ", "").replace("\r\n", "")).group(1)
        assert {"list-unsubscribe", "list-unsubscribe-post", "from", "subject"} <= {
            h.lower() for h in signed.split(":")
        }


def test_dkim_without_its_key_over_smtp_is_an_error_and_nothing_is_sent(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server)
    project.settings(
        dkim={"selector": "s", "domain": "example.org", "private_key_env": "TEST_DKIM_KEY_UNSET"}
    )
    check = project.run("check")
    assert check.returncode == 2
    assert "TEST_DKIM_KEY_UNSET is empty" in check.stderr
    result = project.run("send")
    assert result.returncode == 2
    assert "TEST_DKIM_KEY_UNSET is empty: messages would go out unsigned" in result.stderr
    assert smtp_server.handler.received == []
    assert project.run("send", "--dry-run").returncode == 0  # a dry run sends nothing


def test_dkim_without_its_key_into_a_maildir_warns_and_writes_unsigned(project: Project) -> None:
    project.settings(
        dkim={"selector": "s", "domain": "example.org", "private_key_env": "TEST_DKIM_KEY_UNSET"}
    )
    result = project.run("send")
    assert result.returncode == 0
    assert "TEST_DKIM_KEY_UNSET is empty: messages go out unsigned" in result.stderr
    assert "DKIM-Signature" not in project.maildir_messages()[0]
    check = project.run("check")
    assert check.returncode == 0
    assert "TEST_DKIM_KEY_UNSET" in check.stderr


def test_dkim_domain_not_aligned_with_from_is_a_warning_naming_both(
    project: Project, smtp_server: SmtpServer, dkim_key: tuple[str, bytes]
) -> None:
    project.use_smtp(smtp_server)
    project.settings(
        dkim={"selector": "s", "domain": "mailer.example.net", "private_key_env": "TEST_DKIM_KEY"}
    )
    check = project.run("check", env={"TEST_DKIM_KEY": dkim_key[0]})
    assert check.returncode == 0, check.stderr
    assert "mailer.example.net" in check.stderr and "example.org" in check.stderr
    assert "DMARC" in check.stderr
    project.settings(
        dkim={"selector": "s", "domain": "example.org", "private_key_env": "TEST_DKIM_KEY"}
    )
    aligned = project.run("check", env={"TEST_DKIM_KEY": dkim_key[0]})
    assert "DMARC" not in aligned.stderr


def test_unsubscribe_links_are_signed_per_subscriber(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server)
    assert project.run("send", env={"DIGEST_TOKEN_SECRET": "s3cret"}).returncode == 0
    for received in smtp_server.handler.received:
        link = received.message["List-Unsubscribe"].strip("<>")
        assert link.startswith("https://example.org/unsubscribe?token=")
        token = parse_qs(urlparse(link).query)["token"][0]
        assert read_token(b"s3cret", "unsubscribe", token) == received.rcpt_tos[0]
        assert link in received.message.get_body(("html",)).get_content()
        assert received.message["List-Id"] == "Regional Migration Digest <digest.example.org>"
        assert re.fullmatch(r"<digest\.[0-9a-f]{32}@example\.org>", received.message["Message-ID"])


def test_tokens_cannot_be_forged_or_reused_for_another_purpose() -> None:
    token = make_token(b"k", "unsubscribe", "ana@example.org")
    assert "ana" not in base32.decode(token).decode("latin-1")
    assert token == make_token(b"k", "unsubscribe", "ana@example.org")  # the same each time
    forged = bytearray(base32.decode(token))
    forged[-1] ^= 1  # one bit of the address changed
    with pytest.raises(BadToken):
        read_token(b"k", "unsubscribe", base32.encode(bytes(forged)))
    with pytest.raises(BadToken, match="malformed"):
        read_token(b"k", "unsubscribe", "abc")
    with pytest.raises(BadToken):
        read_token(b"other-secret", "unsubscribe", token)
    with pytest.raises(BadToken):
        read_token(b"k", "preferences", token)
    with pytest.raises(BadToken, match="expired"):
        read_token(b"k", "confirm", make_token(b"k", "confirm", "a@b.org", expires_at=100), now=200)
    assert read_token(b"k", "unsubscribe", token) == "ana@example.org"
    bound = make_token(b"k", "digest", "ana@example.org", extra=b"\x01" * 16)
    assert read_link(b"k", "digest", bound).extra == b"\x01" * 16


# SpamAssassin's __BITCOIN_ID (72_active.cf, Debian's spamassassin 4.0): a word of 30-35
# characters of Bitcoin's alphabet starting with 1 or 3 scores PDS_BTC_ID. Base64url tokens
# (cut into words by "-") gave one to a few subscribers in ten thousand, on every digest.
BITCOIN_ID = re.compile(
    r"\b(?<!=)(?:[13](?:(?:[-_=\s][a-km-zA-HJ-NP-Z1-9]){29,34}|[a-km-zA-HJ-NP-Z1-9]{29,34}))\b"
)


def test_no_token_reads_as_a_bitcoin_address_and_tokens_sent_before_still_work() -> None:
    for n in range(3000):
        secret = n.to_bytes(4, "big")
        for purpose, extra in (("unsubscribe", b""), ("digest", n.to_bytes(16, "big"))):
            token = make_token(secret, purpose, f"reader{n}@example.org", extra=extra)
            assert re.fullmatch(r"[a-z2-7]+", token)
            line = f"Unsubscribe: https://example.org/u/{token} ({token})"
            assert not BITCOIN_ID.search(line), line
    # A link sent in base64url, as opaque tokens first were (the same bytes), still opens.
    sealed = base32.decode(make_token(b"k", "unsubscribe", "ana@example.org"))
    sent_before = base64.urlsafe_b64encode(sealed).decode().rstrip("=")
    assert "-" in sent_before or "_" in sent_before or any(c.isupper() for c in sent_before)
    assert read_token(b"k", "unsubscribe", sent_before) == "ana@example.org"


def test_links_in_the_readable_format_work_until_the_end_of_their_period() -> None:
    legacy = make_legacy_token(b"k", "unsubscribe", "ana@example.org")
    assert read_token(b"k", "unsubscribe", legacy, now=100, legacy_until=200) == "ana@example.org"
    with pytest.raises(BadToken, match="no longer"):
        read_token(b"k", "unsubscribe", legacy, now=300, legacy_until=200)
    with pytest.raises(BadToken, match="no longer"):
        read_token(b"k", "unsubscribe", legacy)  # a state that never sent them
    payload, signature = legacy.split(".")
    other = make_legacy_token(b"k", "unsubscribe", "marlon@example.org").split(".")[0]
    with pytest.raises(BadToken):
        read_token(b"k", "unsubscribe", f"{other}.{signature}", now=1, legacy_until=200)


def test_without_the_environment_secret_one_is_generated_once_and_kept(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server)
    env = {"DIGEST_TOKEN_SECRET": ""}
    # The first real send makes the secret and keeps it; a test send (which records nothing)
    # signs with the kept one, and so does the next real send.
    assert project.run("send", "--only", "marlon.james@example.org", env=env).returncode == 0
    test = project.run("send", "--to", "ed@example.org", "--only", "ana@example.org", env=env)
    assert test.returncode == 0
    assert project.run("send", "--only", "ana@example.org", env=env).returncode == 0
    _, test_copy, first = smtp_server.handler.received
    assert first.message["List-Unsubscribe"] == test_copy.message["List-Unsubscribe"]


def test_dkim_signing_keeps_the_no_dot_lines_promise(dkim_key: tuple[str, bytes]) -> None:
    """Signed bytes of a message with no line starting with "." still say so, so SMTP skips
    dot-stuffing them (and other bytes stay plain bytes, to be dot-stuffed)."""
    import dkim

    from digest.compose.dkim import DkimSigner
    from digest.compose.mime import NoDotLines
    from digest.settings import DkimSettings

    private, public = dkim_key
    signer = DkimSigner(DkimSettings("s1", "example.org"), private.encode())
    plain = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\n\r\n=2Eline\r\n"
    signed = signer.sign(NoDotLines(plain))
    assert isinstance(signed, NoDotLines)
    assert not any(line.startswith(b".") for line in signed.split(b"\r\n"))
    assert dkim.verify(
        bytes(signed), dnsfunc=lambda name, timeout=5: b"v=DKIM1; k=rsa; p=" + public
    )
    assert not isinstance(signer.sign(plain), NoDotLines)
