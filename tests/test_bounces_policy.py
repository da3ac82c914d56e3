"""The bounce policy: hard suppresses, soft counts per delivery within the window."""

from __future__ import annotations

from datetime import datetime, timedelta

from digest.bounces import BounceEvent, decide, event_kind

NOW = datetime(2026, 12, 3, 9, 0)


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


def test_hard_bounce_suppresses_with_a_reason() -> None:
    decision = decide([BounceEvent("hard", NOW, 1, "5.1.1")], NOW)
    assert (decision.action, decision.reason) == ("suppressed", "hard bounce 5.1.1 on 2026-12-03")


def test_soft_bounces_count_once_per_delivery() -> None:
    same = [BounceEvent("soft", days_ago(i / 10), 5, "4.2.2") for i in range(3)]
    assert decide(same, NOW).action == "counted" and decide(same, NOW).soft_count == 1
    three = [BounceEvent("soft", days_ago(d), d, "4.2.2") for d in (20, 10, 0)]
    decision = decide(three, NOW)
    assert decision.action == "suppressed" and decision.soft_count == 3
    assert decision.reason == "3 soft bounces within 30 days, last 4.2.2 on 2026-12-03"


def test_soft_bounces_outside_the_window_do_not_count() -> None:
    events = [BounceEvent("soft", days_ago(d), d) for d in (45, 31, 0)]
    assert decide(events, NOW).action == "counted"
    assert decide(events, NOW, soft_limit=2, soft_window=timedelta(days=60)).action == "suppressed"


def test_complaint_unsubscribes_and_auto_reply_changes_nothing() -> None:
    assert decide([BounceEvent("complaint", NOW)], NOW).action == "unsubscribed"
    assert decide([BounceEvent("auto-reply", NOW)], NOW).action == "none"
    assert decide([], NOW).action == "none"
    assert event_kind("bounce", True) == "hard" and event_kind("bounce", False) == "soft"
    assert event_kind("other", False) == "other"
