"""Connection requests: asking a CPE to open a CWMP session now (TR-069 3.2.2 over HTTP, Annex G over UDP).

:mod:`~acs.connreq.udp` and :mod:`~acs.connreq.result` are pure (the signed UDP
datagram; outcomes in words); :mod:`~acs.connreq.requester` is the Twisted shell
that sends them, within limits, and records what came of them;
:mod:`~acs.connreq.blocking` runs it from synchronous code such as the CLI.
"""

from acs.connreq.requester import ConnectionRequester, Options
from acs.connreq.result import Attempt, KickResult

__all__ = ["Attempt", "ConnectionRequester", "KickResult", "Options"]
