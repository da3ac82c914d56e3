"""classify() on real Postfix bounces, written provider formats, flufl.bounce's real-world
corpus (when the test extra installed it) and bad input."""

from __future__ import annotations

import importlib.util
import json
import random
import sys

import pytest
import yaml

from digest.bounces import classify, classify_ses, read_verp
from tests.conftest import DATA, ROOT

_spec = importlib.util.spec_from_file_location(
    "bounce_accuracy", ROOT / "bench" / "bounce_accuracy.py"
)
accuracy = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["bounce_accuracy"] = accuracy  # its dataclasses look their module up
_spec.loader.exec_module(accuracy)  # type: ignore[union-attr]
measure, sample_paths = accuracy.measure, accuracy.sample_paths

BOUNCES = DATA / "bounces"
LABELS = yaml.safe_load((BOUNCES / "labels.yaml").read_text())
POSTFIX_SECRET = b"postfix-test-secret"  # tests/data/bounces/generate/postfix_bounces.py


def labelled(set_name: str) -> list[tuple[str, dict]]:
    return sorted(LABELS[set_name].items())


@pytest.mark.parametrize(("name", "label"), labelled("postfix") + labelled("written"))
def test_each_committed_sample_matches_its_label(name: str, label: dict) -> None:
    folder = BOUNCES / ("postfix" if name in LABELS["postfix"] else "written")
    result = classify((folder / name).read_bytes())
    assert result.kind == label["kind"], result.reason
    got = sorted(((r.address or "").lower(), r.hard) for r in result.recipients)
    want = sorted(((r["address"] or "").lower(), r["hard"]) for r in label["recipients"])
    assert got == want


def test_real_world_accuracy_is_at_least_95_percent() -> None:
    if sample_paths()["flufl"] is None:
        pytest.skip("flufl.bounce 4.0 (the test extra) is not installed")
    flufl = measure()["flufl"]
    assert flufl["mails"] == len(LABELS["flufl"]) > 100
    assert flufl["recipient_found_pct"] >= 95
    assert flufl["hard_soft_agree_pct"] >= 95
    assert flufl["kind_pct"] >= 95


def test_postfix_bounce_carries_what_attributes_it() -> None:
    result = classify((BOUNCES / "postfix" / "remote-user-unknown.eml").read_bytes())
    (failed,) = result.recipients
    assert (failed.address, failed.status, failed.code, failed.hard) == (
        "unknown@remote.test",
        "5.1.1",
        550,
        True,
    )
    assert "User unknown in virtual mailbox table" in failed.reason
    assert "<digest-6.week48@digest.test>" in result.original_message_ids
    verp = [a for a in result.envelope_to if a.startswith("bounces+")]
    assert verp, result.envelope_to
    token = read_verp(
        verp[0],
        "bounces@digest.test",
        POSTFIX_SECRET,
        lambda i: "unknown@remote.test" if i == 6 else None,
    )
    assert token is not None and token.delivery_id == 6


def test_spam_refusal_is_soft_and_user_unknown_hard_with_the_same_code() -> None:
    spam = classify((BOUNCES / "postfix" / "remote-spam-rejected.eml").read_bytes())
    unknown = classify((BOUNCES / "postfix" / "remote-user-unknown.eml").read_bytes())
    assert spam.recipients[0].code == unknown.recipients[0].code == 550
    assert (spam.recipients[0].hard, unknown.recipients[0].hard) == (False, True)


def test_complaint_names_who_complained() -> None:
    result = classify((BOUNCES / "written" / "arf-yahoo-abuse.eml").read_bytes())
    assert (result.kind, result.complaint_recipient, result.feedback_type) == (
        "complaint",
        "martina.flores@yahoo.test",
        "abuse",
    )
    jmrp = classify((BOUNCES / "written" / "jmrp-microsoft.eml").read_bytes())
    assert jmrp.complaint_recipient == "daniela.rios@hotmail.test"


def test_auto_reply_points_at_the_original() -> None:
    result = classify((BOUNCES / "written" / "autoreply-rfc3834.eml").read_bytes())
    assert result.kind == "auto-reply"
    assert result.original_message_ids == ("<digest-122.week48@digest.test>",)


def test_huge_mail_is_read_from_its_start() -> None:
    head = (BOUNCES / "postfix" / "remote-mailbox-full.eml").read_bytes()
    result = classify(head + b"y" * 76 * 100_000)
    assert result.kind == "bounce" and result.recipients[0].status == "5.2.2"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 1000,
        b"\xff\xfe" * 5000,
        b"From: a\n\n--",
        b"Content-Type: multipart/mixed\n\n",
        b"Content-Type: message/delivery-status\n\nFinal-Recipient: ;;;\n",
        b"Content-Type: multipart/report; boundary=x\n\n--x\nContent-Type: message/feedback-report\n\n",
        b"Subject: =?utf-8?B?####?=\nFrom: =?x-unknown?Q?a?= <@>\n\nbody",
    ],
)
def test_bad_input_is_other_with_a_reason(data: bytes) -> None:
    result = classify(data)
    assert result.kind in ("other", "bounce") and result.reason


def test_random_mutations_never_raise() -> None:
    rng = random.Random(18)
    seeds = [p.read_bytes() for p in sorted((BOUNCES / "written").iterdir())[:10]]
    for _ in range(300):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 20)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        classify(bytes(data)).kind  # noqa: B018


def test_ses_notification_inside_sns() -> None:
    bounce = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": "a@example.test",
                    "status": "5.1.1",
                    "action": "failed",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
        },
        "mail": {
            "source": "bounces+abc@digest.test",
            "commonHeaders": {"messageId": "<digest-1.week48@digest.test>"},
        },
    }
    sns = {"Type": "Notification", "Message": json.dumps(bounce)}
    result = classify_ses(json.dumps(sns))
    assert result.kind == "bounce" and result.recipients[0].hard
    assert result.envelope_to == ("bounces+abc@digest.test",)
    assert result.original_message_ids == ("<digest-1.week48@digest.test>",)
    bounce["bounce"].update(bounceType="Transient", bounceSubType="MailboxFull")
    assert not classify_ses(bounce).recipients[0].hard
    complaint = {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": "b@example.test"}],
            "complaintFeedbackType": "abuse",
        },
    }
    assert classify_ses(complaint).complaint_recipient == "b@example.test"
    assert classify_ses("{not json").kind == "other"
