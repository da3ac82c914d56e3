"""Amazon SNS messages checked before anything is believed: the signature (SignatureVersion 1,
SHA1, or 2, SHA256, RSA PKCS#1 v1.5) over the fields SNS signs, made with the certificate at
SigningCertURL, which must be an https URL on an SNS host of AWS
(`sns.<region>.amazonaws.com`, or `.amazonaws.com.cn`).

A signature proves a message came from SNS, not that it came from OUR topic: anyone can make
a topic of their own and subscribe our URL to it. So the webhook also accepts only the topic
ARNs listed in `bounces.sns_topics`.

`SnsTrust` says where certificates may come from and how they are fetched. The default is
AWS's and the only one `digest serve` uses. Tests make their own key, certificate and a
loopback HTTPS server, and pass `SnsTrust(host_pattern=..., ssl_context=...)` explicitly to
`create_app(settings, sns_trust=...)` (or `make_server`): there is no setting or variable
that relaxes the host check.
"""

from __future__ import annotations

import base64
import binascii
import re
import ssl
import threading
import urllib.request
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..caches import register_mapping

# The host (and no port) of a SigningCertURL or SubscribeURL.
AWS_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?$")
MAX_CERTIFICATE = 64 * 1024
CACHED_CERTIFICATES = 16

_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SIGNED_FIELDS["UnsubscribeConfirmation"] = _SIGNED_FIELDS["SubscriptionConfirmation"]
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}

_certificates: OrderedDict[str, x509.Certificate] = OrderedDict()
_certificates_lock = threading.Lock()
register_mapping("digest.web.sns.certificates", _certificates)


class SnsError(ValueError):
    """A message that is not a genuine SNS message (or cannot be checked now)."""


@dataclass(frozen=True)
class SnsTrust:
    """Which hosts may serve SNS certificates and confirm subscriptions, and how to reach
    them. `host_pattern` is matched against the URL's host[:port]."""

    host_pattern: re.Pattern[str] = AWS_SNS_HOST
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False)
    timeout: float = 10.0

    def check_url(self, url: str, what: str) -> str:
        parts = urlsplit(url)
        if parts.scheme != "https" or not self.host_pattern.match(parts.netloc.lower()):
            raise SnsError(f"{what} {url!r} is not an https URL of an SNS host")
        return url

    def fetch(self, url: str, what: str) -> bytes:
        """GET an https URL this trust allows (a certificate, or the subscription's link)."""
        self.check_url(url, what)
        context = self.ssl_context or ssl.create_default_context()
        try:
            with urllib.request.urlopen(url, timeout=self.timeout, context=context) as reply:
                return bytes(reply.read(MAX_CERTIFICATE))
        except OSError as exc:
            raise SnsError(f"cannot fetch {what} {url}: {exc}") from exc


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """What SNS signs: each signed field present, as "Name\\nvalue\\n", in this order."""
    fields = _SIGNED_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise SnsError(f"unknown SNS message type {message.get('Type')!r}")
    text = ""
    for name in fields:
        value = message.get(name)
        if value is None and name == "Subject":
            continue  # a Notification without a subject signs no Subject line
        if not isinstance(value, str):
            raise SnsError(f"SNS message without {name}")
        text += f"{name}\n{value}\n"
    return text.encode("utf-8")


def certificate(url: str, trust: SnsTrust) -> x509.Certificate:
    """The signing certificate at `url`, fetched once per process (a few are kept)."""
    trust.check_url(url, "SigningCertURL")
    with _certificates_lock:
        if url in _certificates:
            _certificates.move_to_end(url)
            return _certificates[url]
    pem = trust.fetch(url, "SigningCertURL")
    try:
        found = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise SnsError(f"SigningCertURL {url} holds no PEM certificate") from exc
    with _certificates_lock:
        _certificates[url] = found
        while len(_certificates) > CACHED_CERTIFICATES:
            _certificates.popitem(last=False)
    return found


def verify(message: Mapping[str, Any], trust: SnsTrust, now: datetime | None = None) -> None:
    """Raise SnsError unless `message` carries a valid SNS signature."""
    algorithm = _HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise SnsError(f"unknown SignatureVersion {message.get('SignatureVersion')!r}")
    signed = string_to_sign(message)
    try:
        signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SnsError("the Signature is not base64") from exc
    cert = certificate(str(message.get("SigningCertURL") or ""), trust)
    moment = now or datetime.now(UTC)
    if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
        raise SnsError("the signing certificate is expired or not yet valid")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsError("the signing certificate's key is not RSA")
    try:
        key.verify(signature, signed, padding.PKCS1v15(), algorithm())
    except InvalidSignature as exc:
        raise SnsError("the signature does not verify") from exc
