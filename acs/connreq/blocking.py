"""Kick devices from synchronous code (the CLI): a private reactor, run until every kick has an outcome.

A private reactor rather than the global one: the global reactor cannot be
started twice in a process, and the process may be a test runner (or anything
else) that already runs it or will. The requester's code is the same one
``acs serve`` runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.engine import Engine

from acs.connreq.options import Options
from acs.connreq.result import KickResult


def kick(engine: Engine, device_ids: Iterable[str], options: Options | None = None) -> list[KickResult]:
    """Kick each device (within the requester's limits); their results, in the same order."""
    ids = list(device_ids)
    if not ids:
        return []
    # here, not at the top: the CLI imports this module, and most commands kick nothing
    from twisted.internet import defer
    from twisted.internet.selectreactor import SelectReactor
    from twisted.python.threadpool import ThreadPool

    from acs.connreq.requester import ConnectionRequester

    reactor: Any = SelectReactor()
    pool = ThreadPool(minthreads=1, maxthreads=4, name="acs-connreq")
    results: list[KickResult] = []
    failure: list[Any] = []

    def start() -> None:
        requester = ConnectionRequester(reactor, engine, pool, options)
        d = defer.gatherResults([requester.kick(i) for i in ids], consumeErrors=True)
        d.addCallbacks(results.extend, failure.append)
        d.addBoth(lambda _: reactor.stop())

    pool.start()
    try:
        reactor.callWhenRunning(start)
        reactor.run(installSignalHandlers=False)
    finally:
        pool.stop()
        if reactor.waker is not None:  # the self-pipe: close it, this reactor is done
            reactor.removeReader(reactor.waker)
            reactor.waker.connectionLost(None)
    if failure:
        failure[0].raiseException()
    return results
