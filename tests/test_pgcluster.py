"""The private-cluster test helper (``tests/support/pgcluster.py``): start, restart, fill, on a real server."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.slow


def test_a_private_cluster_restarts_and_fills(pg_cluster) -> None:
    cluster = pg_cluster(max_connections=10)
    url = cluster.create_database(migrate=False)
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(cluster.conninfo(database), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1)")

    before = psycopg.connect(cluster.conninfo(database), autocommit=True)
    cluster.restart()
    with pytest.raises(psycopg.OperationalError):
        before.execute("SELECT 1")  # the restart dropped every connection
    cluster.wait_ready()
    with psycopg.connect(cluster.conninfo(database)) as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]  # same data, same port

    with cluster.filled() as held:
        assert len(held) == 10
        with pytest.raises(psycopg.OperationalError, match="too many clients|reserved"):
            psycopg.connect(cluster.conninfo(), connect_timeout=5)
    with psycopg.connect(cluster.conninfo(), connect_timeout=5) as conn:  # released
        assert conn.execute("SELECT 1").fetchone() == (1,)
