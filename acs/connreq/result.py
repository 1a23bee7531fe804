"""What a connection request came to, in words an operator (or an OSS) can act on. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from acs.store.schema import CONNECTION_REQUEST_OUTCOMES

__all__ = ["CONNECTION_REQUEST_OUTCOMES", "Attempt", "KickResult", "http_outcome"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try: HTTP GET or UDP datagrams (``method`` None: there was nothing to try)."""

    method: str | None
    outcome: str  # one of CONNECTION_REQUEST_OUTCOMES
    detail: str
    requested_at: datetime
    elapsed: float | None = None

    def __post_init__(self) -> None:
        if self.outcome not in CONNECTION_REQUEST_OUTCOMES:
            raise ValueError(
                f"outcome {self.outcome!r} is not one of {', '.join(CONNECTION_REQUEST_OUTCOMES)}"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "outcome": self.outcome,
            "detail": self.detail,
            "requested_at": self.requested_at.isoformat(),
            "elapsed": self.elapsed,
        }


@dataclass(frozen=True, slots=True)
class KickResult:
    """A kick of one device: its attempts in order (HTTP first, then UDP when HTTP could not reach it)."""

    device_id: str
    attempts: tuple[Attempt, ...]

    @property
    def outcome(self) -> str:
        """``sent`` when any attempt got through, else what the first attempt came to."""
        return "sent" if self.sent else self.attempts[0].outcome

    @property
    def sent(self) -> bool:
        return any(a.outcome == "sent" for a in self.attempts)

    @property
    def method(self) -> str | None:
        """How it got through (or what was tried last)."""
        sent = [a for a in self.attempts if a.outcome == "sent"]
        return (sent or list(self.attempts))[-1].method

    def summary(self) -> str:
        """One line, e.g. ``sent by UDP: 3 datagrams to ... (after HTTP timed_out: no answer within 5 s)``."""
        parts = [_words(a) for a in self.attempts]
        if self.sent and len(parts) > 1:
            first, *rest = parts
            return f"{rest[-1]} (after {first})"
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "outcome": self.outcome,
            "method": self.method,
            "summary": self.summary(),
            "attempts": [a.to_json() for a in self.attempts],
        }


def _words(a: Attempt) -> str:
    how = {"http": "HTTP", "udp": "UDP"}.get(a.method or "", "")
    if a.outcome == "sent":
        return f"sent by {how}: {a.detail}"
    return f"{how + ' ' if how else ''}{a.outcome}: {a.detail}"


def http_outcome(status: int, *, answered_challenge: bool) -> tuple[str, str]:
    """The outcome of the CPE's last HTTP answer to the GET; ``answered_challenge``: credentials were sent."""
    if status in (200, 204):
        return "sent", f"HTTP {status}"
    if status in (401, 403):
        if answered_challenge:
            return "refused", (
                f"HTTP {status}: the device refused the ConnectionRequestUsername/Password on record"
            )
        return "refused", (
            f"HTTP {status}, and no ConnectionRequestUsername/Password on record to answer it with "
            "(set them with `acs device credentials --connection-request`, or SetParameterValues)"
        )
    if status == 503:
        return "refused", "HTTP 503: the device is busy (in a session) or limits connection requests"
    return "error", f"unexpected HTTP {status} (a CPE answers 200 or 204)"
