"""A publish-only process (a prefork pool child, a web worker) sends its broker statements on a connection
borrowed from its application pool, so it never holds more than ``DB_POOL_SIZE`` connections.

In process, on the test database: this process plays a pool child whose application pool has ONE connection. A
message published inside a transaction that holds that connection is sent once the transaction has ended (the
connection back in the pool), on that same connection — no second one, and none named ``:broker``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from app import task_names
from app.db import connections
from app.db.connections import name_app_connections
from app.db.pool import LendingQueuePool, lender_for, offer_connections
from app.extensions import ENGINE_KEY
from app.services.engine import CeleryPublisher, TaskMessage, after_commit
from tasks.broker.connection import SharedConnection, libpq_conninfo
from tests.support.engine import query, scalar


def ping_messages(database_url: str) -> int:
    return scalar(database_url, "SELECT count(*) FROM kombu_message WHERE payload LIKE %s", "%litscreen.ping%")


def broker_connections_of_this_process(database_url: str) -> list[str]:
    return [name for (name,) in query(database_url, "SELECT application_name FROM pg_stat_activity "
                                                    "WHERE application_name LIKE %s",
                                      f"litscreen-pool-child:{os.getpid()}:broker%")]


@pytest.fixture
def pool_of_one(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """This process as a pool child whose application engine has a pool of one connection (3 s timeout)."""
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=LendingQueuePool, pool_size=1,
                           max_overflow=0, pool_timeout=3, pool_pre_ping=True)
    name_app_connections(engine)
    monkeypatch.setitem(connections._state, "role", "pool-child")
    offer_connections(engine)
    try:
        yield engine
    finally:
        offer_connections(app.extensions[ENGINE_KEY])  # the session's app lends again
        engine.dispose()


def test_a_publish_inside_a_transaction_waits_for_its_end_and_reuses_its_connection(
        app: Flask, database_url: str, pool_of_one: Engine) -> None:
    publisher = CeleryPublisher(app.extensions["celery"])
    checked_out_when_sent: list[int] = []
    with Session(pool_of_one) as session:
        session.execute(text("SELECT 1"))  # the pool's only connection is now this transaction's
        publisher.publish(session, TaskMessage(task_names.PING, (1,)))
        after_commit(session, lambda: checked_out_when_sent.append(pool_of_one.pool.checkedout()))
        assert ping_messages(database_url) == 0
        session.commit()  # with a second connection needed, the send would wait 3 s and fail (logged, not sent)

    assert ping_messages(database_url) == 1
    assert checked_out_when_sent == [0]  # the transaction's connection was back in the pool
    assert pool_of_one.pool.checkedout() == 0
    assert broker_connections_of_this_process(database_url) == []
    with pool_of_one.connect() as conn:  # the borrowed connection came back as SQLAlchemy expects it
        driver = conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection) and driver.autocommit is False


def test_the_broker_borrows_only_in_a_publish_only_process(app: Flask, pool_of_one: Engine,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    conninfo = libpq_conninfo(app.config["SQLALCHEMY_DATABASE_URI"])
    assert lender_for(conninfo) is pool_of_one
    assert SharedConnection(conninfo).lender() is pool_of_one
    monkeypatch.setitem(connections._state, "role", "worker")  # a consuming process keeps its own connection
    assert SharedConnection(conninfo).lender() is None
    monkeypatch.setitem(connections._state, "role", "pool-child")
    other_database = conninfo.rsplit("/", 1)[0] + "/some_other_database"
    assert SharedConnection(other_database).lender() is None  # never a connection to another database


def test_a_borrowed_connection_that_the_server_refuses_raises_the_drivers_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusing server is waited for (``reconnect_wait``), then reported as the unborrowed path reports it."""
    url = "postgresql+psycopg://nobody@127.0.0.1:1/nothing"
    engine = create_engine(url, poolclass=LendingQueuePool, pool_size=1, max_overflow=0,
                           connect_args={"connect_timeout": 1})
    monkeypatch.setitem(connections._state, "role", "pool-child")
    offer_connections(engine)
    shared = SharedConnection(libpq_conninfo(url), reconnect_wait=0.3)
    assert shared.lender() is engine
    with pytest.raises(psycopg.OperationalError):
        shared.execute("SELECT 1")
    assert engine.pool.checkedout() == 0
