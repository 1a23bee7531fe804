"""Digest nonce counts in the store: a count is taken once, and only above the last one."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from acs.store import nonces


def test_a_nonce_count_is_taken_once_and_only_above_the_last(engine: Engine) -> None:
    with engine.begin() as conn:
        assert nonces.use(conn, "n1", 1, expires=1000)
        assert not nonces.use(conn, "n1", 1, expires=1000)  # the same answer again
        assert nonces.use(conn, "n1", 3, expires=1000)
        assert not nonces.use(conn, "n1", 2, expires=1000)  # lower than the last
        assert nonces.use(conn, "n2", 1, expires=2000)  # another nonce, counted apart
        assert nonces.use(conn, "rfc2069", 0, expires=1000)
        assert not nonces.use(conn, "rfc2069", 0, expires=1000)  # no count: one use


def test_a_count_taken_in_a_transaction_that_rolled_back_is_free_again(engine: Engine) -> None:
    with engine.connect() as conn:
        with conn.begin() as tx:
            assert nonces.use(conn, "n1", 1, expires=1000)
            tx.rollback()  # the message's work failed: its answer was not used
        with conn.begin():
            assert nonces.use(conn, "n1", 1, expires=1000)


def test_expired_nonces_are_purged_after_the_clock_skew_allowed(engine: Engine) -> None:
    with engine.begin() as conn:
        nonces.use(conn, "old", 1, expires=1000)
        nonces.use(conn, "new", 1, expires=5000)
        assert nonces.purge(conn, 1000 + nonces.KEEP) == 0
        assert nonces.purge(conn, 1001 + nonces.KEEP) == 1
        assert not nonces.use(conn, "new", 1, expires=5000)
        assert nonces.use(conn, "old", 1, expires=1000)  # forgotten: stale anyway by then
