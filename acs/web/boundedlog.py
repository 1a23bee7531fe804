"""Log lines a stranger can cause, written at a bounded rate.

Every port that answers strangers (CWMP, the profile server, the NBI, TFTP) logs what
went wrong with a request; without a bound, a flood of bad requests becomes a flood of
log lines and fills the disk. One ``BoundedLog`` per service, one *kind* per cause.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

#: log lines of one kind a stranger can cause, at most, per LOG_INTERVAL seconds; the rest are counted
LOG_BURST, LOG_INTERVAL = 5, 10.0


@dataclass
class _Window:
    written: int = 0
    left_out: int = 0
    last: str = ""  # the last line left out
    level: int = logging.INFO


class BoundedLog:
    """Log lines that strangers cause (a forged RRQ, a bad request, an unknown user) at a bounded rate.

    Of each kind, the first LOG_BURST lines of an interval are written at once; the rest
    are counted and the interval ends with one line saying how many there were and the last.
    """

    def __init__(
        self, reactor: Any, logger: logging.Logger, burst: int = LOG_BURST, interval: float = LOG_INTERVAL
    ) -> None:
        self.reactor = reactor
        self.log = logger
        self.burst = burst
        self.interval = interval
        self.windows: dict[str, _Window] = {}
        self.timers: dict[str, Any] = {}

    def __call__(self, kind: str, level: int, message: str, *args: Any) -> None:
        window = self.windows.get(kind)
        if window is None:
            window = self.windows[kind] = _Window()
            self.timers[kind] = self.reactor.callLater(self.interval, self._close, kind)
        if window.written < self.burst:
            window.written += 1
            self.log.log(level, message, *args)
        else:
            window.left_out += 1
            window.last, window.level = message % args, level

    def _close(self, kind: str) -> None:
        window = self.windows.pop(kind)
        del self.timers[kind]
        if window.left_out:
            self.log.log(
                window.level,
                "%s (and %d more like it in the last %g s)",
                window.last,
                window.left_out,
                self.interval,
            )

    def stop(self) -> None:
        for kind in list(self.timers):
            self.timers[kind].cancel()
            self._close(kind)
