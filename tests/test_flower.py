"""Flower on a PostgreSQL-only stack: its HTTP API lists running workers and tasks that ran, behind basic
auth; after Flower dies its event queue and bindings expire and are removed."""

from __future__ import annotations

import sys

import httpx

from app import task_names
from app.processes import free_port
from tests.support.broker import BROKER_ENV, query, start_workers
from tests.support.processes import ProcessGroup, subprocess_env, wait_for

AUTH = ("admin", "s3cret-flower")


def test_flower_shows_workers_and_tasks_and_its_queue_expires_after_it_stops(
        app, database_url: str, processes: ProcessGroup) -> None:
    start_workers(processes, database_url, ["flower-a", "flower-b"])
    port = free_port()
    env = subprocess_env(database_url, **BROKER_ENV, FLOWER_BASIC_AUTH=f"{AUTH[0]}:{AUTH[1]}")
    flower = processes.start([sys.executable, "-m", "celery", "-A", "tasks", "flower", "--address=127.0.0.1",
                              f"--port={port}"], env, "flower")
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/healthcheck", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, 60, message="flower answers")
    wait_for(lambda: query(database_url, "SELECT 1 FROM kombu_binding WHERE exchange = 'celeryev'"), 30,
             message="flower's event queue bound")
    assert httpx.get(f"{base}/api/workers", timeout=10).status_code == 401

    celery = app.extensions["celery"]
    sent = [celery.send_task(task_names.PING, args=[i]) for i in range(3)]
    with app.app_context():
        assert [result.get(timeout=60)["value"] for result in sent] == [1, 2, 3]

    def workers() -> set[str]:
        response = httpx.get(f"{base}/api/workers", params={"refresh": 1}, auth=AUTH, timeout=30)
        return {name.split("@")[0] for name in response.json()} if response.status_code == 200 else set()

    assert wait_for(lambda: workers() >= {"flower-a", "flower-b"}, 60, interval=1, message="both workers listed")

    def tasks() -> dict:
        response = httpx.get(f"{base}/api/tasks", auth=AUTH, timeout=10)
        return response.json() if response.status_code == 200 else {}

    wait_for(lambda: {r.id for r in sent} <= set(tasks()), 30, message="tasks listed")
    listed = tasks()
    assert {listed[r.id]["state"] for r in sent} == {"SUCCESS"}
    assert {listed[r.id]["name"] for r in sent} == {task_names.PING}

    ProcessGroup.kill_tree(flower)  # a dead consumer: no goodbye, its queue must expire
    flower.wait(timeout=10)

    def flower_leftovers() -> int:
        return query(database_url, "SELECT (SELECT count(*) FROM kombu_queue WHERE name LIKE 'celeryev.%%') + "
                                   "(SELECT count(*) FROM kombu_binding WHERE exchange = 'celeryev')")[0][0]

    wait_for(lambda: flower_leftovers() == 0, 30, message="flower's queue and bindings removed")
    assert query(database_url, "SELECT count(*) FROM kombu_queue WHERE name = 'celery'")[0][0] == 1
