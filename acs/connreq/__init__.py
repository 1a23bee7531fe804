"""Connection requests: asking a CPE to open a CWMP session now (TR-069 3.2.2 over HTTP, Annex G over UDP).

:mod:`~acs.connreq.udp`, :mod:`~acs.connreq.result` and :mod:`~acs.connreq.options` are pure
(the signed UDP datagram; outcomes in words; the limits); :mod:`~acs.connreq.requester` is the
Twisted shell that sends them, within limits, and records what came of them;
:mod:`~acs.connreq.blocking` runs it from synchronous code such as the CLI. Twisted loads only
when a request is made: ``ConnectionRequester`` is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from acs.connreq.options import Options
from acs.connreq.result import Attempt, KickResult

if TYPE_CHECKING:
    from acs.connreq.requester import ConnectionRequester

__all__ = ["Attempt", "ConnectionRequester", "KickResult", "Options"]


def __getattr__(name: str) -> Any:
    if name == "ConnectionRequester":
        from acs.connreq.requester import ConnectionRequester

        return ConnectionRequester
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
