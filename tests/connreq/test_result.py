"""Outcomes in words: what an operator reads after ``--now`` and what the NBI returns."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from acs.connreq.result import Attempt, KickResult, http_outcome

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "answered", "outcome", "words"),
    [
        (200, True, "sent", "HTTP 200"),
        (204, False, "sent", "HTTP 204"),
        (401, True, "refused", "refused the ConnectionRequestUsername/Password on record"),
        (401, False, "refused", "no ConnectionRequestUsername/Password on record"),
        (503, True, "refused", "busy (in a session) or limits connection requests"),
        (404, True, "error", "unexpected HTTP 404 (a CPE answers 200 or 204)"),
    ],
)
def test_http_statuses(status, answered, outcome, words):
    got, detail = http_outcome(status, answered_challenge=answered)
    assert got == outcome
    assert words in detail


def test_a_kick_that_got_through_by_udp_after_http_says_both():
    result = KickResult(
        "D",
        (
            Attempt("http", "timed_out", "no answer within 5 s", AT, 5.0),
            Attempt("udp", "sent", "3 datagrams to 203.0.113.7:49152", AT, 0.75),
        ),
    )

    assert (result.outcome, result.method, result.sent) == ("sent", "udp", True)
    assert result.summary() == (
        "sent by UDP: 3 datagrams to 203.0.113.7:49152 (after HTTP timed_out: no answer within 5 s)"
    )
    assert result.to_json()["attempts"][1] == {
        "method": "udp",
        "outcome": "sent",
        "detail": "3 datagrams to 203.0.113.7:49152",
        "requested_at": "2026-11-30T12:00:00+00:00",
        "elapsed": 0.75,
    }


def test_a_kick_that_failed_both_ways_is_what_the_first_attempt_came_to():
    result = KickResult(
        "D",
        (
            Attempt("http", "unreachable", "connection refused", AT),
            Attempt("udp", "error", "the port must be 1-65535", AT),
        ),
    )

    assert (result.outcome, result.sent) == ("unreachable", False)
    assert result.summary() == ("HTTP unreachable: connection refused; UDP error: the port must be 1-65535")


def test_an_outcome_outside_the_schemas_list_is_refused():
    with pytest.raises(
        ValueError, match="outcome 'lost' is not one of sent, refused, unreachable, timed_out, error"
    ):
        Attempt("http", "lost", "", AT)
