"""Group commit: the store work of many CWMP messages in one transaction.

Why: a periodic session is two short transactions (the Inform, the empty POST), and
on a busy server what they cost is mostly per transaction, not per row: the hand-off
to a database thread and back to the reactor, SQLAlchemy's connection checkout and
commit, and the commit itself (SQLite appends the pages it changed to its WAL, with
its file locks; PostgreSQL flushes its WAL). So the messages that wait while the
store is busy are run together, in the order they came, in one transaction on one
thread, and all of them are answered after its commit: nothing is acknowledged
before it is durable. An idle server still runs a message alone, at once: batches
form only under load, and grow with it.

A message whose work raises (a stale cookie, a deadlock, a bug) rolls the whole batch
back; each of its messages is then run again in a transaction of its own, so one bad
message never costs another its answer. Work must therefore do nothing but database
work on the connection it is given until it returns.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorThreads

log = logging.getLogger(__name__)

#: messages per transaction, at most: bounds what one commit (and one message's wait) holds
MAX_BATCH = 64

OnResult = Callable[[bool, Any], None]
Work = Callable[..., Any]
Job = tuple[OnResult, Work, tuple[Any, ...]]


class GroupCommit:
    """Runs ``work(conn, *args)`` on ``pool``, batched into shared transactions.

    ``in_flight`` batches run at once, at most. One per process by default: SQLite has one
    writer anyway, and on PostgreSQL more batches at once meant smaller ones and the store's
    threads contending with the reactor for the GIL (two workers, periodic sessions: 876/s
    with one batch in flight per worker, 692/s with two, 608/s with four; see
    ``docs/performance.md``). Everything but ``_drain`` and ``run`` happens on the reactor
    thread, which keeps the queue's bookkeeping free of locks.
    """

    def __init__(
        self,
        engine: Engine,
        pool: ThreadPool,
        reactor: IReactorThreads,
        *,
        max_batch: int = MAX_BATCH,
        in_flight: int = 1,
    ) -> None:
        self.engine = engine
        self.pool = pool
        self.reactor = reactor
        self.max_batch = max_batch
        self.max_in_flight = in_flight
        self._queue: deque[Job] = deque()
        self._in_flight = 0

    def call(self, on_result: OnResult, work: Work, *args: Any) -> None:
        """Run ``work(conn, *args)`` in a transaction off the reactor; then, on the reactor, call
        ``on_result(ok, result)``, ``result`` being a Failure when not ``ok``. Nothing is
        answered before its transaction is committed."""
        self._queue.append((on_result, work, args))
        self._schedule()

    def _schedule(self) -> None:
        if self._queue and self._in_flight < self.max_in_flight:
            self._in_flight += 1
            self.pool.callInThread(self._drain)

    def _drain(self) -> None:
        """On a pool thread: take what waits (``deque.popleft`` is atomic), run it, hand it back."""
        batch: list[Job] = []
        try:
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.popleft())
                except IndexError:  # another drain took the rest
                    break
            results = self.run(batch)
        except BaseException:  # not expected (``run`` catches what work raises): answer every message
            results = [(False, Failure())] * len(batch)
            raise
        finally:
            self.reactor.callFromThread(self._deliver, batch, results)

    def run(self, batch: list[Job]) -> list[tuple[bool, Any]]:
        """``batch`` in one transaction; if anything raises, each job again in one of its own."""
        if not batch:
            return []
        try:
            with self.engine.begin() as conn:
                return [(True, work(conn, *args)) for _, work, args in batch]
        except Exception:
            if len(batch) == 1:
                return [(False, Failure())]
        log.debug("a batch of %d messages failed: running each alone", len(batch))
        return [self.run([job])[0] for job in batch]

    def _deliver(self, batch: list[Job], results: list[tuple[bool, Any]]) -> None:
        self._in_flight -= 1
        for (on_result, _, _), (ok, result) in zip(batch, results, strict=True):
            try:
                on_result(ok, result)
            except Exception:
                log.exception("answering a CWMP message failed")
        self._schedule()
