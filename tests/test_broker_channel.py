"""The transport's channel in process (real PostgreSQL, several kombu connections): upserted queue rows under
simultaneous declares, transport options that work, requeue in place with the redelivered flag, and the
visibility deadline of an unacked message."""

from __future__ import annotations

import threading

import pytest
from kombu import Connection, Exchange, Queue

from tests.support.broker import query


@pytest.fixture
def broker_url(app) -> str:
    return app.extensions["celery"].conf.broker_url


def test_simultaneous_declares_of_one_queue_do_not_race(broker_url: str, database_url: str) -> None:
    start = threading.Barrier(12)
    errors: list[BaseException] = []

    def declare() -> None:
        try:
            with Connection(broker_url) as conn:
                channel = conn.channel()
                start.wait(timeout=30)
                Queue("race-q", Exchange("race-x", type="direct"), routing_key="race")(channel).declare()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=declare) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert query(database_url, "SELECT count(*) FROM kombu_queue WHERE name = 'race-q'") == [(1,)]
    assert query(database_url, "SELECT count(*) FROM kombu_binding WHERE queue = 'race-q'") == [(1,)]


def test_transport_options_are_honoured(broker_url: str, database_url: str) -> None:
    options = {"polling_interval": 0.05, "visibility_timeout": 600, "listen": False}
    queue = Queue("options-q", Exchange("options-x", type="direct"), routing_key="options")
    received = []
    with Connection(broker_url, transport_options=options) as conn:
        assert conn.transport.polling_interval == 0.05 and conn.transport.visibility_timeout == 600
        with conn.Consumer(queue, callbacks=[lambda body, message: received.append(message)], accept=["json"]):
            conn.Producer().publish({"n": 1}, exchange=queue.exchange, routing_key="options",
                                    declare=[queue], serializer="json")
            conn.drain_events(timeout=10)
            assert [m.payload for m in received] == [{"n": 1}]
            (remaining,) = query(database_url, "SELECT extract(epoch FROM deadline - now()) FROM kombu_message")[0]
            assert 500 < remaining <= 600  # the transport's visibility timeout, not kombu's or a default
            received[0].ack()
    assert query(database_url, "SELECT count(*) FROM kombu_message") == [(0,)]


def test_requeue_keeps_the_message_in_place_and_marks_it_redelivered(broker_url: str, database_url: str) -> None:
    queue = Queue("requeue-q", Exchange("requeue-x", type="direct"), routing_key="requeue")
    with Connection(broker_url) as conn:
        channel = conn.channel()
        bound = queue(channel)
        bound.declare()
        conn.Producer(channel).publish({"n": 1}, exchange=queue.exchange, routing_key="requeue", serializer="json")
        (message_id,) = query(database_url, "SELECT id FROM kombu_message")[0]

        first = bound.get()
        assert first.delivery_info["redelivered"] is False
        first.requeue()
        assert query(database_url, "SELECT id, visible FROM kombu_message") == [(message_id, True)]

        second = bound.get()
        assert second.payload == {"n": 1} and second.delivery_info["redelivered"] is True
        first.channel.basic_ack(first.delivery_tag)  # a stale tag (first delivery) must not ack the second
        assert query(database_url, "SELECT id, visible FROM kombu_message") == [(message_id, False)]
        second.ack()
    assert query(database_url, "SELECT count(*) FROM kombu_message") == [(0,)]
