"""A full server costs a process's threads a wait for one of its own open connections, not a failed statement.

On a private server (``tests/support/pgcluster.py``) filled to the last slot: a thread that finds the pool's one
open connection checked out would open a second one and be refused ("too many clients"); the lending pool makes
it wait for the first one instead. With nothing of its own open, the refusal is still raised.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import QueuePool

from app.db.pool import LendingQueuePool

pytestmark = pytest.mark.process  # starts its own PostgreSQL server


def _engine(url: str, poolclass: type[QueuePool]):  # type: ignore[no-untyped-def]
    return create_engine(url, poolclass=poolclass, pool_size=2, max_overflow=0, pool_timeout=10,
                         pool_pre_ping=True)


def _second_checkout_while_full(cluster, poolclass: type[QueuePool]) -> list[object]:  # type: ignore[no-untyped-def]
    """Thread A holds the pool's only open connection; on a full server thread B asks for one. B's outcome."""
    engine = _engine(cluster.url(), poolclass)
    outcome: list[object] = []
    try:
        first = engine.connect()
        first.execute(text("SELECT 1"))
        with cluster.filled() as held:
            assert held
            release = threading.Timer(0.5, first.close)  # A gives its connection back half a second later

            def second() -> None:
                try:
                    with engine.connect() as conn:
                        outcome.append(conn.execute(text("SELECT 42")).scalar())
                except OperationalError as exc:
                    outcome.append(exc)

            release.start()
            worker = threading.Thread(target=second)
            worker.start()
            worker.join(15)
            release.join()
    finally:
        engine.dispose()
    return outcome


def test_a_refused_connection_waits_for_one_of_the_pools_own(pg_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster = pg_cluster(max_connections=10)
    assert _second_checkout_while_full(cluster, LendingQueuePool) == [42]


def test_sqlalchemys_own_pool_fails_there_which_is_what_the_lending_pool_fixes(pg_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster = pg_cluster(max_connections=10)
    outcome = _second_checkout_while_full(cluster, QueuePool)
    assert len(outcome) == 1 and isinstance(outcome[0], OperationalError)
    assert "too many clients" in str(outcome[0])


def test_with_nothing_of_its_own_open_the_refusal_is_raised(pg_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster = pg_cluster(max_connections=10)
    engine = _engine(cluster.url(), LendingQueuePool)
    try:
        with cluster.filled() as held:
            assert held
            with pytest.raises(OperationalError, match="too many clients"):
                engine.connect()
    finally:
        engine.dispose()
