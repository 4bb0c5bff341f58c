"""The PostgreSQL broker transport with real ``celery worker`` subprocesses: exactly-once delivery while workers
live, delete on ack, and redelivery of a killed worker's unacked message after the visibility timeout."""

from __future__ import annotations

import pytest

from app import task_names
from tests.support.broker import executions, messages_left, query, start_workers
from tests.support.processes import ProcessGroup, wait_for


def test_every_message_is_delivered_exactly_once_and_acked_rows_are_gone(
        app, database_url: str, processes: ProcessGroup) -> None:
    start_workers(processes, database_url, ["once-a", "once-b", "once-c"], concurrency=2)
    celery = app.extensions["celery"]
    total = 120
    for i in range(total):
        celery.send_task(task_names.DIAG_RECORD_EXECUTION, args=[f"once-{i:04d}"], ignore_result=True)

    wait_for(lambda: len(executions(database_url, "finish", "once-")) >= total, 120, message="all tasks run")
    wait_for(lambda: messages_left(database_url) == 0, 30, message="acked messages deleted")

    starts = executions(database_url, "start", "once-")
    tags = [value["tag"] for value in starts]
    assert sorted(tags) == [f"once-{i:04d}" for i in range(total)]  # each exactly once
    assert len({value["worker"] for value in starts}) >= 2  # the consumers really competed
    assert query(database_url, "SELECT count(*) FROM kombu_message")[0][0] == 0


def test_a_live_workers_long_task_is_not_redelivered_after_the_visibility_timeout(
        app, database_url: str, processes: ProcessGroup) -> None:
    start_workers(processes, database_url, ["live-a", "live-b"])
    celery = app.extensions["celery"]
    celery.send_task(task_names.DIAG_RECORD_EXECUTION, args=["live-1", 8.0], ignore_result=True)  # 8 s > 3 s

    wait_for(lambda: executions(database_url, "finish", "live-"), 60, message="long task finished")
    assert len(executions(database_url, "start", "live-")) == 1
    wait_for(lambda: messages_left(database_url) == 0, 20, message="acked message deleted")


def test_a_killed_workers_unacked_message_runs_on_another_worker(
        app, database_url: str, processes: ProcessGroup) -> None:
    (doomed,) = start_workers(processes, database_url, ["doomed"])
    celery = app.extensions["celery"]
    celery.send_task(task_names.DIAG_RECORD_EXECUTION, args=["crash-1", 4.0], ignore_result=True)
    wait_for(lambda: executions(database_url, "start", "crash-"), 60, message="task started on the doomed worker")

    ProcessGroup.kill_tree(doomed)  # kill -9 of the worker and its pool, holding the unacked message
    doomed.wait(timeout=10)
    unacked = query(database_url, "SELECT visible, deliveries FROM kombu_message")
    assert unacked == [(False, 1)]

    start_workers(processes, database_url, ["rescuer"])
    wait_for(lambda: executions(database_url, "finish", "crash-"), 60, message="task finished elsewhere")

    starts = executions(database_url, "start", "crash-")
    assert [s["worker"].split("@")[0] for s in starts] == ["doomed", "rescuer"]
    assert [f["worker"].split("@")[0] for f in executions(database_url, "finish", "crash-")] == ["rescuer"]
    wait_for(lambda: messages_left(database_url) == 0, 20, message="acked message deleted")


@pytest.mark.parametrize("exchange_type", ["topic", "fanout"])
def test_routing_across_processes_uses_persisted_bindings(app, database_url: str, exchange_type: str) -> None:
    """A queue bound in one connection receives what another connection publishes to its exchange."""
    from kombu import Connection, Exchange, Queue

    url = app.extensions["celery"].conf.broker_url
    exchange = Exchange(f"probe-{exchange_type}", type=exchange_type, durable=False)
    queue = Queue(f"probe-{exchange_type}-q", exchange, routing_key="probe.#", durable=False)
    with Connection(url) as consumer_side, Connection(url) as publisher_side:
        queue(consumer_side.default_channel).declare()
        producer = publisher_side.Producer()
        producer.publish({"n": 1}, exchange=exchange, routing_key="probe.one", serializer="json")
        producer.publish({"n": 2}, exchange=exchange, routing_key="other.two", serializer="json")
        received = []
        while (message := queue(consumer_side.default_channel).get(no_ack=True)) is not None:
            received.append(message.payload["n"])
    assert received == ([1] if exchange_type == "topic" else [1, 2])
