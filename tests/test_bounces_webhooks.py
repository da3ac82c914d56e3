"""Bounce webhooks of the real `digest serve` (waitress on loopback): Amazon SES notifications
over SNS, signed with a key and certificate made here and served by a loopback HTTPS server
(the host check relaxed only through the explicit `SnsTrust` seam), and the generic signed
JSON POST; and a suppressed reader who subscribes again through the web, confirming their
address by email."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.server
import ipaddress
import json
import re
import sqlite3
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from digest.web import SnsTrust
from digest.web.sns import SnsError

from .conftest import Project, SmtpServer
from .test_web import SECRET, Client, WebServer, start_server, token

TOPIC = "arn:aws:sns:us-east-1:123456789012:digest-bounces"
ANA = "ana@example.org"
HOOK_SECRET = "generic-hook-secret"


# -- a certificate authority, a signing key and a loopback HTTPS server -------------------------
def _certificate(key: rsa.RSAPrivateKey, name: str, days: int = 30) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


@dataclass
class FakeSns:
    """The signing key, and an HTTPS server on 127.0.0.1 serving its certificate and taking
    subscription confirmations, trusted through `trust` only."""

    key: rsa.RSAPrivateKey
    pem: bytes
    base: str
    trust: SnsTrust
    confirmed: list[str] = field(default_factory=list)

    @property
    def cert_url(self) -> str:
        return self.base + "/SimpleNotificationService-test.pem"

    def sign(self, message: dict[str, str], version: str = "1") -> dict[str, str]:
        """Sign as SNS does: the signed fields as "Name\\nvalue\\n" in alphabetical order."""
        names = (
            ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
            if message["Type"] == "Notification"
            else ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        )
        text = "".join(f"{n}\n{message[n]}\n" for n in names if n in message)
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(text.encode(), padding.PKCS1v15(), digest)
        return {
            **message,
            "SignatureVersion": version,
            "Signature": base64.b64encode(signature).decode(),
            "SigningCertURL": self.cert_url,
        }


@pytest.fixture(scope="module")
def fake_sns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSns]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _certificate(key, "127.0.0.1")
    pem = cert.public_bytes(serialization.Encoding.PEM)
    folder = tmp_path_factory.mktemp("sns")
    (folder / "cert.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    confirmed: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path.endswith(".pem"):
                body = pem
            else:
                confirmed.append(self.path)
                body = b"<ConfirmSubscriptionResponse/>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    client_context = ssl.create_default_context(cafile=str(folder / "cert.pem"))
    trust = SnsTrust(host_pattern=re.compile(rf"^127\.0\.0\.1:{port}$"), ssl_context=client_context)
    try:
        yield FakeSns(key, pem, f"https://127.0.0.1:{port}", trust, confirmed)
    finally:
        server.shutdown()
        server.server_close()


# -- digest serve with the webhooks on ------------------------------------------------------------
@pytest.fixture
def hooked(
    project: Project, fake_sns: FakeSns, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WebServer]:
    project.run("send", env={"DIGEST_TOKEN_SECRET": SECRET}, check=True)  # deliveries to bounce
    project.settings(
        bounces={"sns_topics": [TOPIC], "webhook_secret_env": "DIGEST_BOUNCE_HOOK_SECRET"}
    )
    monkeypatch.setenv("DIGEST_BOUNCE_HOOK_SECRET", HOOK_SECRET)
    server = start_server(
        project,
        posts_per_minute=1000,
        requests_per_minute=1000,
        waitress_options={"sns_trust": fake_sns.trust},
    )
    try:
        yield server
    finally:
        server.stop()


def post(server: WebServer, path: str, body: bytes, **headers: str) -> tuple[int, str]:
    reply = Client(server).request("POST", server.url(path), body, headers)
    return reply.status, reply.text


def ses_bounce(recipient: str, bounce_type: str = "Permanent", sub_type: str = "General") -> str:
    return json.dumps(
        {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": bounce_type,
                "bounceSubType": sub_type,
                "bouncedRecipients": [
                    {
                        "emailAddress": recipient,
                        "action": "failed",
                        "status": "5.1.1",
                        "diagnosticCode": f"smtp; 550 5.1.1 <{recipient}>: user unknown",
                    }
                ],
                "timestamp": "2026-12-03T10:00:00.000Z",
            },
            "mail": {"source": "digest@example.org", "destination": [recipient]},
        }
    )


def notification(message: str, message_id: str = "11111111-aaaa", topic: str = TOPIC) -> dict:
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic,
        "Message": message,
        "Timestamp": "2026-12-03T10:00:01.000Z",
    }


def rows(project: Project, query: str) -> list[tuple]:
    with sqlite3.connect(project.state) as db:
        return db.execute(query).fetchall()


# -- SES over SNS -----------------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_ses_bounce_suppresses_once(
    project: Project, hooked: WebServer, fake_sns: FakeSns, version: str
) -> None:
    body = json.dumps(fake_sns.sign(notification(ses_bounce(ANA)), version)).encode()
    status, text = post(hooked, "/webhooks/ses", body, **{"x-amz-sns-message-type": "Notification"})
    assert status == 200, text
    [result] = json.loads(text)["results"]
    assert (result["kind"], result["subscriber"], result["action"]) == (
        "bounce",
        ANA,
        "suppressed",
    )
    assert result["recipients"][0]["hard"] is True
    again = json.loads(post(hooked, "/webhooks/ses", body)[1])["results"]
    assert again[0]["duplicate"] is True
    assert rows(project, "SELECT email FROM suppressions") == [(ANA,)]
    assert rows(project, "SELECT COUNT(*) FROM bounce_events") == [(1,)]


def test_a_ses_complaint_unsubscribes(
    project: Project, hooked: WebServer, fake_sns: FakeSns
) -> None:
    complaint = json.dumps(
        {
            "notificationType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": ANA}],
                "complaintFeedbackType": "abuse",
            },
            "mail": {"source": "digest@example.org"},
        }
    )
    body = json.dumps(fake_sns.sign(notification(complaint, "c-1"))).encode()
    status, text = post(hooked, "/webhooks/ses", body)
    assert status == 200
    assert json.loads(text)["results"][0]["action"] == "unsubscribed"
    assert rows(project, "SELECT unsubscribed_via FROM web_subscribers") == [("complaint",)]


def test_forged_and_foreign_notifications_change_nothing(
    project: Project, hooked: WebServer, fake_sns: FakeSns
) -> None:
    signed = fake_sns.sign(notification(ses_bounce(ANA)))
    tampered = {**signed, "Message": ses_bounce("marlon.james@example.org")}
    other_host = {**signed, "SigningCertURL": "https://127.0.0.2:1/cert.pem"}
    plain_http = {**signed, "SigningCertURL": fake_sns.cert_url.replace("https:", "http:")}
    foreign = fake_sns.sign(notification(ses_bounce(ANA), topic=TOPIC + "-theirs"))
    unsigned = {k: v for k, v in signed.items() if k != "Signature"}
    for message, wanted in (
        (tampered, "does not verify"),
        (other_host, "is not an https URL of an SNS host"),
        (plain_http, "is not an https URL of an SNS host"),
        (foreign, "is not in bounces.sns_topics"),
        (unsigned, "does not verify"),
    ):
        status, text = post(hooked, "/webhooks/ses", json.dumps(message).encode())
        assert status == 403 and wanted in text, (status, text)
    assert post(hooked, "/webhooks/ses", b"{not json")[0] == 400
    assert rows(project, "SELECT COUNT(*) FROM bounce_mails") == [(0,)]


def test_a_subscription_is_confirmed_only_when_signed(hooked: WebServer, fake_sns: FakeSns) -> None:
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "s-1",
        "Token": "tok",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic.",
        "SubscribeURL": fake_sns.base + "/?Action=ConfirmSubscription&Token=tok",
        "Timestamp": "2026-12-03T10:00:00.000Z",
    }
    before = len(fake_sns.confirmed)
    forged = {**fake_sns.sign(confirmation), "Token": "other"}
    assert post(hooked, "/webhooks/ses", json.dumps(forged).encode())[0] == 403
    assert len(fake_sns.confirmed) == before
    status, text = post(hooked, "/webhooks/ses", json.dumps(fake_sns.sign(confirmation)).encode())
    assert (status, text.strip()) == (200, "subscription confirmed")
    assert fake_sns.confirmed[before:] == ["/?Action=ConfirmSubscription&Token=tok"]


def test_aws_hosts_only_by_default() -> None:
    trust = SnsTrust()
    good = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem"
    assert trust.check_url(good, "SigningCertURL") == good
    assert trust.check_url(good.replace(".com/", ".com.cn/"), "x")
    for bad in (
        good.replace("https:", "http:"),
        "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
        "https://sns.us-east-1.amazonaws.com:8443/x.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
        "https://s3.amazonaws.com/x.pem",
    ):
        with pytest.raises(SnsError):
            trust.check_url(bad, "SigningCertURL")


# -- the generic signed JSON POST ---------------------------------------------------------------
def _signed(body: bytes, secret: str = HOOK_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Digest-Signature": f"sha256={digest}", "Content-Type": "application/json"}


def test_the_generic_webhook_takes_signed_events_only(project: Project, hooked: WebServer) -> None:
    events = [
        {
            "id": "e1",
            "type": "bounce",
            "recipient": ANA,
            "status": "5.1.1",
            "reason": "no such user",
        },
        {
            "id": "e2",
            "type": "bounce",
            "recipient": "marlon.james@example.org",
            "code": 452,
            "reason": "mailbox full",
        },
        {"id": "e3", "type": "complaint", "recipient": "stranger@elsewhere.test"},
    ]
    body = json.dumps(events).encode()
    assert post(hooked, "/webhooks/bounce", body)[0] == 401
    assert post(hooked, "/webhooks/bounce", body, **_signed(body, "wrong"))[0] == 401
    status, text = post(hooked, "/webhooks/bounce", body, **_signed(body))
    assert status == 200, text
    results = json.loads(text)["results"]
    assert [(r["subscriber"], r["action"]) for r in results] == [
        (ANA, "suppressed"),
        ("marlon.james@example.org", "counted"),
        (None, "none"),
    ]
    again = json.loads(post(hooked, "/webhooks/bounce", body, **_signed(body))[1])["results"]
    assert [r["duplicate"] for r in again] == [True, True, True]
    history = json.loads(project.run("history", "--bounces", "--json", check=True).stdout)
    assert {h["subscriber"]: (h["hard"], h["soft"]) for h in history} == {
        ANA: (1, 0),
        "marlon.james@example.org": (0, 1),
    }


def test_webhooks_are_off_unless_configured(project: Project) -> None:
    server = start_server(project)
    try:
        assert post(server, "/webhooks/ses", b"{}")[0] == 404
        assert post(server, "/webhooks/bounce", b"{}", **_signed(b"{}"))[0] == 404
    finally:
        server.stop()


# -- a suppressed reader subscribes again ------------------------------------------------------------
def test_a_suppressed_reader_confirms_their_address_to_come_back(
    project: Project, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    from .bounce_mail import bounce_mail, deliveries, drop

    project.use_smtp(smtp_server)
    project.run("send", env={"DIGEST_TOKEN_SECRET": SECRET}, check=True)
    drop(
        project.root / "bounces", "1", bounce_mail("postfix/remote-user-unknown.eml", recipient=ANA)
    )
    assert deliveries(project.state)[ANA]
    project.run("bounces", env={"DIGEST_TOKEN_SECRET": SECRET}, check=True)
    server = start_server(project, posts_per_minute=1000, requests_per_minute=1000)
    try:
        client = Client(server)
        page = client.get(
            server.url("/preferences", token=token("preferences", ANA, time.time() + 600))
        )
        assert "our mail to it bounced" in page.text
        reply = client.submit(page, 0, action="resubscribe")
        assert reply.status == 200 and "Check your inbox" in reply.text
        listed = json.loads(project.run("subscribers", "--all", "--json", check=True).stdout)
        assert next(s for s in listed if s["email"] == ANA)["status"] == "suppressed"
        message = smtp_server.handler.messages_for(ANA)[-1]
        link = re.search(r"(http://\S+/confirm\?token=\S+)", message.get_content()).group(1)
        confirmed = client.submit(client.get(link))
        assert confirmed.status == 303 and "done=confirmed" in (confirmed.location or "")
        listed = json.loads(project.run("subscribers", "--json", check=True).stdout)
        assert next(s for s in listed if s["email"] == ANA)["status"] == "active"
        journal = (project.state.parent / "state.suppressions.txt").read_text()
        assert f"\tunsuppress\t{ANA}\tconfirm-page\n" in journal
    finally:
        server.stop()
