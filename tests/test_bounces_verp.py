"""VERP envelope senders: round trip, case folding, forgery, the 64-octet limit."""

from __future__ import annotations

import pytest

from digest.bounces import BadVerpToken, read_verp, verp_address

SECRET = b"s3cret"


def lookup(delivery_id: int) -> str | None:
    return {7: "ana@example.org", 2**40: "ben@example.org"}.get(delivery_id)


@pytest.mark.parametrize(
    ("subscriber", "delivery_id"), [("ana@example.org", 7), ("ben@example.org", 2**40)]
)
def test_round_trip_and_lowercased_by_an_mta(subscriber: str, delivery_id: int) -> None:
    address = verp_address("bounces@digest.test", subscriber, delivery_id, SECRET)
    local = address.split("@")[0]
    assert local.startswith("bounces+") and local == local.lower() and len(local) <= 64
    for form in (address, address.upper(), f"<{address}>"):
        token = read_verp(form, "bounces@digest.test", SECRET, lookup)
        assert token is not None and (token.delivery_id, token.subscriber) == (
            delivery_id,
            subscriber,
        )


def test_not_ours_is_none() -> None:
    assert read_verp("someone@digest.test", "bounces@digest.test", SECRET, lookup) is None
    assert read_verp("bounces+abc@other.test", "bounces@digest.test", SECRET, lookup) is None
    assert read_verp("not an address", "bounces@digest.test", SECRET, lookup) is None


def test_forged_or_foreign_tokens_raise() -> None:
    good = verp_address("bounces@digest.test", "ana@example.org", 7, SECRET)
    with pytest.raises(BadVerpToken, match="does not verify"):
        read_verp(good, "bounces@digest.test", b"other secret", lookup)
    with pytest.raises(BadVerpToken, match="does not verify"):  # same id, another subscriber
        read_verp(good, "bounces@digest.test", SECRET, lambda i: "eve@example.org")
    with pytest.raises(BadVerpToken, match="unknown delivery"):
        read_verp(
            verp_address("bounces@digest.test", "x@y.test", 99, SECRET),
            "bounces@digest.test",
            SECRET,
            lookup,
        )
    with pytest.raises(BadVerpToken):
        read_verp("bounces+1!@digest.test", "bounces@digest.test", SECRET, lookup)
    with pytest.raises(BadVerpToken):
        read_verp("bounces+aa@digest.test", "bounces@digest.test", SECRET, lookup)


def test_local_part_limit() -> None:
    with pytest.raises(ValueError, match="64 octets"):
        verp_address("a" * 40 + "@digest.test", "ana@example.org", 2**60, SECRET)
    with pytest.raises(ValueError):
        verp_address("no-at-sign", "ana@example.org", 1, SECRET)
