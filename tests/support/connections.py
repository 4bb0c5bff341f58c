"""Which process holds which PostgreSQL connection: ``pg_stat_activity`` rows mapped to client processes.

Our application engine names its connections ``litscreen:<pid>`` (``application_name``); every other client
(Celery's result backend, the broker transport) is mapped through its TCP client port to the local process that
owns the socket. Used by the connection-budget test and for the figures in the report.
"""

from __future__ import annotations

from collections import Counter

import psutil

from tests.support.engine import query


def app_connections_by_pid(database_url: str) -> Counter[int]:
    """Connections of our application engines on the test database, per client process id."""
    rows = query(database_url, "SELECT application_name FROM pg_stat_activity WHERE datname = current_database() "
                               "AND application_name LIKE 'litscreen:%%'")
    return Counter(int(name.split(":")[1]) for (name,) in rows)


def all_connections_by_pid(database_url: str, pids: list[int]) -> Counter[int]:
    """Every connection to the test database held by one of ``pids`` (TCP clients only), per process id."""
    owner: dict[int, int] = {}
    for pid in pids:
        try:
            for conn in psutil.Process(pid).net_connections(kind="tcp"):
                if conn.laddr:
                    owner[conn.laddr.port] = pid
        except psutil.Error:
            continue
    rows = query(database_url, "SELECT client_port FROM pg_stat_activity WHERE datname = current_database() "
                               "AND client_port IS NOT NULL AND pid <> pg_backend_pid()")
    return Counter(owner[port] for (port,) in rows if port in owner)


def worker_tree(worker_pid: int) -> tuple[int, list[int]]:
    """(main process id, pool child ids) of a ``celery worker``."""
    return worker_pid, [child.pid for child in psutil.Process(worker_pid).children(recursive=True)]
