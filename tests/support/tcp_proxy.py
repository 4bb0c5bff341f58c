"""A real TCP proxy in front of PostgreSQL that a test can take down and bring back (an outage or a restart)."""

from __future__ import annotations

import logging
import socket
import threading

from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target`` ((host, port), or a Unix socket path). ``down()`` drops every
    connection and refuses new ones until ``up()``; the port stays the same, as a restarted server's would."""

    def __init__(self, target: tuple[str, int] | str) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def up(self) -> TcpProxy:
        """Start accepting and forwarding connections."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def down(self) -> None:
        """Close the listener and every forwarded connection (clients see refused / dropped connections)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread, so the port is free at once
            except OSError:
                pass
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = self._connect_target()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _connect_target(self) -> socket.socket:
        if isinstance(self.target, str):
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(self.target)
            return server
        return socket.create_connection(self.target)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass


def proxy_for(database_url: str) -> tuple[TcpProxy, str]:
    """A proxy (not started) in front of the server of ``database_url``, and the URL that goes through it."""
    url = make_url(database_url)
    port = url.port or 5432
    if url.host:
        target: tuple[str, int] | str = (url.host, port)
    else:  # a Unix socket directory in ?host=
        target = f"{url.query['host']}/.s.PGSQL.{port}"
    proxy = TcpProxy(target)
    query = {k: v for k, v in url.query.items() if k != "host"}
    return proxy, url.set(host="127.0.0.1", port=proxy.port, query=query).render_as_string(hide_password=False)
